/**
 * Tokenizers (SentencePiece and byte-level BPE, agreeing with llama.cpp) and synthetic tokenizer
 * vocabularies. See docs/TOKENIZER.md.
 */
export { createTokenizer, type DecodeOptions, type EncodeOptions, type Tokenizer } from './tokenizer.js'
export { TokenTextDecoder } from './textDecoder.js'
export { synthTokenizerMetadata, TokenType, BUILTIN_TEXT, type SynthTokenizerOptions } from './synth.js'
export { pretokenize, type PreTokenizer } from './pretokenize.js'
export { TokenizerMetadataError, UnsupportedTokenizerError, TokenIdOutOfRangeError } from './errors.js'
export type { TokenizerMetadata } from './vocab.js'
