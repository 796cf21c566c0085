import assert from 'node:assert/strict'
import { test } from 'node:test'
import { synthTokenizerMetadata } from './synth.js'
import { TokenTextDecoder } from './textDecoder.js'
import { createTokenizer } from './tokenizer.js'

const tok = createTokenizer(synthTokenizerMetadata({ kind: 'spm', vocabSize: 1000 }))
const byteId = (b: number) => 3 + b

test('multi-byte characters split across byte tokens are released only when complete', () => {
  const d = new TokenTextDecoder(tok)
  // 😀 = F0 9F 98 80, four byte-fallback tokens.
  assert.equal(d.push(byteId(0xf0)), '')
  assert.equal(d.push(byteId(0x9f)), '')
  assert.equal(d.push(byteId(0x98)), '')
  assert.equal(d.push(byteId(0x80)), '😀')
  assert.equal(d.flush(), '')
})

test('streamed text equals the whole decode and never holds a replacement character', () => {
  const text = 'Sea 😀 and 中文, naïve café ½ — done'
  for (const t of [tok, createTokenizer(synthTokenizerMetadata({ kind: 'bpe', pre: 'qwen2', vocabSize: 1000 }))]) {
    const ids = t.encode(text, { addBos: false })
    const d = new TokenTextDecoder(t)
    let streamed = ''
    for (const id of ids) {
      const part = d.push(id)
      assert.ok(!part.includes('\uFFFD'))
      streamed += part
    }
    streamed += d.flush()
    assert.equal(streamed.trimStart(), text)
    assert.equal(streamed, Buffer.concat(ids.map((i) => t.decodeToken(i))).toString('utf8'))
  }
})

test('an unfinished character at the end becomes U+FFFD on flush', () => {
  const d = new TokenTextDecoder(tok)
  assert.equal(d.push(byteId(0xe4)), '')
  assert.equal(d.push(byteId(0xb8)), '')
  assert.equal(d.flush(), '\uFFFD')
})
