/**
 * Errors of the data layer: a manifest that breaks a rule, documents that are not the ones a
 * manifest commits to, and a corpus package that is not installed. Each names the field, the
 * document or the package at fault in one line (docs/DATA.md).
 */
import { BaseError } from '../errors.js'

/** A dataset manifest (or the metadata it is built from) breaks a rule; `field` names where. */
export class InvalidManifestError extends BaseError {
  override name = 'InvalidManifestError'
  readonly field: string
  constructor(field: string, problem: string) {
    super(`dataset manifest: ${field} ${problem}`, { docs: 'docs/DATA.md' })
    this.field = field
  }
}

/** Documents that are not the ones a manifest commits to; `index` and `document` name the first that differs. */
export class DatasetMismatchError extends BaseError {
  override name = 'DatasetMismatchError'
  readonly index: number
  readonly document: string
  constructor(index: number, document: string, problem: string) {
    super(`dataset document ${index} (${JSON.stringify(document)}) ${problem}`, { docs: 'docs/DATA.md' })
    this.index = index
    this.document = document
  }
}

/** A corpus package from the registry is not installed. */
export class CorpusMissingError extends BaseError {
  override name = 'CorpusMissingError'
  readonly packageName: string
  constructor(packageName: string, cause?: unknown) {
    super(`corpus ${packageName} is not installed`, { details: `run: npm install ${packageName}`, docs: 'docs/DATA.md', cause })
    this.packageName = packageName
  }
}
