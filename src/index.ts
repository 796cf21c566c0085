/** Tessera's library API. */
export { loadModel, generate, generateAsync, verify, verifyAsync, jobParams, type Model, type LoadOptions, type GenerateOptions, type GenerateResult, type VerifyOptions } from './runtime/model.js'
export { type Receipt, type ReceiptV1, receiptDigestV1, tokensRoot, executionId } from './trace/receipt.js'
export type { Claim, Verdict } from './trace/job.js'
export { BaseError, FileNotFoundError, InvalidParameterError } from './errors.js'
