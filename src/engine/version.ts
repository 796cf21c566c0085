/**
 * Version strings that change the bits: any change to docs/ARITHMETIC.md is a new ARITH_VERSION,
 * which changes every execution id and receipt.
 */
export const ARITH_VERSION = 'tessera-arith/1'
export const ENGINE_VERSION = 'tessera/0.1.0'
