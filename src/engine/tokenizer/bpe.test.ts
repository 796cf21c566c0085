import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createTokenizer } from './tokenizer.js'
import { bpeVocab } from '../../../test/support/testVocab.js'

const EXTRA = ['he', 'the', 'Ġthe', 'Ġt', 'Ġtea']
const MERGES = ['h e', 't he', 'Ġ the', 'Ġ t']
const SPECIALS = ['<|begin_of_text|>', '<|end_of_text|>']
const llama3 = createTokenizer(bpeVocab('llama-bpe', EXTRA, MERGES, SPECIALS))
const qwen2 = createTokenizer(bpeVocab('qwen2', EXTRA, MERGES, SPECIALS))
const id = (t: string): number => [...Array(llama3.vocabSize).keys()].find((i) => llama3.tokenText(i) === t)!

test('bpe applies merges by rank inside each pre-tokenized word', () => {
  // Ġ t h e: `h e` (rank 0) first, then `t he` (1), then `Ġ the` (2); `Ġ t` (3) is stale by then.
  assert.deepEqual(qwen2.encode(' the'), [id('Ġthe')])
  assert.deepEqual(qwen2.encode('the the'), [id('the'), id('Ġthe')])
  // Byte-level: every byte has a token, so nothing is lost; 'é' is C3 A9 -> 'Ã', '©'.
  assert.deepEqual(qwen2.encode('é'), [id('Ã'), id('©')])
})

test('llama-bpe takes a word that is a token whole (ignore_merges); qwen2 merges it', () => {
  assert.deepEqual(llama3.encode(' tea', { addBos: false }), [id('Ġtea')])
  assert.deepEqual(qwen2.encode(' tea'), [id('Ġt'), id('e'), id('a')])
})

test('bpe add_bos defaults: llama-bpe adds BOS, qwen2 does not', () => {
  assert.equal(llama3.addBos, true)
  assert.deepEqual(llama3.encode('the'), [llama3.bos, id('the')])
  assert.equal(qwen2.addBos, false)
  assert.deepEqual(qwen2.encode('the', { addEos: true }), [id('the'), qwen2.eos])
})

test('bpe parses control tokens only when asked', () => {
  const eot = id('<|end_of_text|>')
  assert.deepEqual(qwen2.encode('the<|end_of_text|>the', { parseSpecial: true }), [id('the'), eot, id('the')])
  assert.ok(!qwen2.encode('the<|end_of_text|>the').includes(eot))
  assert.ok(llama3.eogTokens.has(eot))
})

test('bpe decoding: byte map inverted; llama-bpe cleans spaces before punctuation, qwen2 does not', () => {
  const text = "Hi , there . it ' s"
  assert.equal(llama3.decode(llama3.encode(text, { addBos: false })), "Hi, there. it's")
  assert.equal(qwen2.decode(qwen2.encode(text)), text)
  assert.equal(qwen2.decode(qwen2.encode('héllo 😀')), 'héllo 😀')
  assert.equal(llama3.decode([llama3.bos, id('the')]), 'the')
  assert.equal(llama3.decode([llama3.bos, id('the')], { unparseSpecial: true }), '<|begin_of_text|>the')
})

test('unsupported tokenizers are named errors', () => {
  assert.throws(() => createTokenizer(bpeVocab('falcon', [], [], [])), { name: 'UnsupportedTokenizerError' })
  const md = bpeVocab('qwen2', [], [], [])
  delete md['tokenizer.ggml.merges']
  assert.throws(() => createTokenizer(md), { name: 'TokenizerMetadataError' })
})
