/**
 * Tokenizer errors: metadata that cannot describe a tokenizer llama.cpp would load, and token ids
 * outside the vocabulary.
 */
import { BaseError, type BaseErrorOptions } from '../../errors.js'

/** `tokenizer.ggml.*` metadata is missing, mistyped or inconsistent (names the key). */
export class TokenizerMetadataError extends BaseError {
  override name = 'TokenizerMetadataError'
  constructor(message: string, options: BaseErrorOptions = {}) {
    super(message, { docs: 'docs/TOKENIZER.md', ...options })
  }
}

/** A tokenizer model or pre-tokenizer that Tessera does not implement. */
export class UnsupportedTokenizerError extends BaseError {
  override name = 'UnsupportedTokenizerError'
  constructor(what: string, value: string, supported: readonly string[]) {
    super(`unsupported ${what} ${JSON.stringify(value)}`, {
      details: `supported: ${supported.join(', ')}`,
      docs: 'docs/TOKENIZER.md',
    })
  }
}

/** A token id outside [0, vocabSize). */
export class TokenIdOutOfRangeError extends BaseError {
  override name = 'TokenIdOutOfRangeError'
  constructor(id: number, vocabSize: number) {
    super(`token id ${id} out of range`, { details: `vocabulary has ${vocabSize} tokens`, docs: 'docs/TOKENIZER.md' })
  }
}
