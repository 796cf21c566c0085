/**
 * Streaming detokenization: byte-fallback and byte-level tokens can end in the middle of a UTF-8
 * character (an emoji is often four byte tokens), so text is released only up to the last
 * complete character and the rest waits for the next token.
 */
import type { Tokenizer } from './tokenizer.js'

/**
 * Incremental decoder over a token stream. `push` returns the new complete text (possibly '');
 * `flush` returns what is left, with U+FFFD for an unfinished character.
 *
 * @example
 * const d = new TokenTextDecoder(tok)
 * let text = ''
 * for (const id of ids) text += d.push(id)
 * text += d.flush()
 */
export class TokenTextDecoder {
  private readonly utf8 = new TextDecoder('utf-8', { ignoreBOM: true })

  constructor(
    private readonly tokenizer: Pick<Tokenizer, 'decodeToken'>,
    private readonly opts: { special?: boolean } = {},
  ) {}

  /** Add one token; returns the text that became complete. */
  push(id: number): string {
    return this.utf8.decode(this.tokenizer.decodeToken(id, this.opts.special ?? false), { stream: true })
  }

  /** End of stream: returns the buffered rest (an incomplete character becomes U+FFFD). */
  flush(): string {
    return this.utf8.decode()
  }
}
