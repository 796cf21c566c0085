import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createTokenizer } from './tokenizer.js'
import { spmVocab } from '../../../test/support/testVocab.js'

// Ids: 0 <unk>, 1 <s>, 2 </s>, 3..258 bytes, then the pieces in order from 259.
const PIECES: [string, number][] = [['▁', -10], ['a', -11], ['b', -12], ['c', -13], ['ab', -1], ['bc', -2], ['▁ab', -3], ['abc', -4], ['▁a', -5], ['aa', -0.5]]
const id = (p: string) => 259 + PIECES.findIndex(([q]) => q === p)
const tok = createTokenizer(spmVocab(PIECES))

test('spm merges the highest-scoring pair first', () => {
  // ▁ a b c: ab (-1) beats bc (-2) and ▁a (-5); then ▁ab (-3) beats abc (-4); ▁abc is no token.
  assert.deepEqual(tok.encode('abc', { addBos: false }), [id('▁ab'), id('c')])
  assert.deepEqual(tok.encode('abc'), [1, id('▁ab'), id('c')])
})

test('spm breaks score ties by the leftmost pair', () => {
  // ▁ a a a: both `aa` pairs score -0.5 (above ▁a); the left one merges, the right one is then stale.
  assert.deepEqual(tok.encode('aaa', { addBos: false }), [id('▁'), id('aa'), id('a')])
})

test('spm falls back to byte tokens, or <unk> without them', () => {
  // é = C3 A9 is no piece: its bytes are <0xC3> <0xA9> (ids 3 + byte).
  assert.deepEqual(tok.encode('é', { addBos: false }), [id('▁'), 3 + 0xc3, 3 + 0xa9])
  const noBytes = createTokenizer(spmVocab([['▁', -1], ['a', -2]], false))
  // Ids 3 ▁, 4 a; each byte of é becomes <unk> (llama.cpp itself would throw here).
  assert.deepEqual(noBytes.encode('aé', { addBos: false }), [3, 4, 0, 0])
})

test('spm escapes spaces and prefixes one at the start and after each special token', () => {
  assert.deepEqual(tok.encode('ab ab', { addBos: false }), [id('▁ab'), id('▁ab')])
  // <s> parsed: the text after it gets its own ▁ prefix.
  assert.deepEqual(tok.encode('<s>ab', { addBos: false, parseSpecial: true }), [1, id('▁ab')])
  // Not parsed: `<`, `s`, `>` are plain text and fall back to bytes.
  assert.deepEqual(tok.encode('<s>', { addBos: false }), [id('▁'), 3 + 0x3c, 3 + 0x73, 3 + 0x3e])
})

test('spm decoding: ▁ becomes a space, the first token loses one leading space, bytes are raw', () => {
  assert.equal(tok.decode([id('▁ab'), id('c')]), 'abc')
  // llama.cpp: a kept BOS renders as nothing but uses up the strip, so the space stays.
  assert.equal(tok.decode([1, id('▁ab'), id('c')]), ' abc')
  assert.equal(tok.decode([1, id('▁ab')], { unparseSpecial: true }), '<s> ab')
  assert.equal(tok.decode([1, id('▁ab')], { removeSpecial: true }), ' ab')
  assert.equal(tok.decode([id('▁'), 3 + 0xc3, 3 + 0xa9]), 'é')
  assert.deepEqual([...tok.decodeToken(3 + 0xff)], [0xff])
  assert.deepEqual([...tok.decodeToken(1)], [])
  assert.deepEqual([...tok.decodeToken(1, true)], [...Buffer.from('<s>')])
})

test('spm tokenizer reports its special ids and rejects out-of-range ids', () => {
  assert.equal(tok.bos, 1)
  assert.equal(tok.eos, 2)
  assert.equal(tok.addBos, true)
  assert.deepEqual([...tok.eogTokens], [2])
  assert.throws(() => tok.decode([tok.vocabSize]), { name: 'TokenIdOutOfRangeError' })
  assert.throws(() => tok.decodeToken(-1), { name: 'TokenIdOutOfRangeError' })
})
