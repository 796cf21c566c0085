/** Tessera's library API. */
export { loadModel, generate, verify, jobParams, type Model, type LoadOptions, type GenerateOptions, type GenerateResult } from './runtime/model.js'
export { type Receipt, type ReceiptV1, receiptDigestV1, tokensRoot, executionId } from './trace/receipt.js'
export { type Claim, type Verdict } from './trace/job.js'
export { BaseError } from './errors.js'
