/**
 * The job file's format tag (docs/TRACE.md "Job file"); a file without one is read as this layout.
 * A module of its own with no imports: `tessera verify` checks the tag before loading viem.
 */
export const JOB_FILE_FORMAT = 'tessera-job/1'
