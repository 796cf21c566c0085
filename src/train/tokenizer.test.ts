/**
 * A run's tokenizer: learned from the training texts only, exactly vocabSize tokens with BOS/EOS
 * last, the same bytes for the same input, word counts weighted like the batches (an oversampled
 * small source shapes the vocabulary), and token streams of BOS + text + EOS per document.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BUILTIN_TEXT } from '../engine/tokenizer/index.js'
import { BOS_TEXT, EOS_TEXT, runTokenizer, tokenizerRoot, tokenStream, trainRunTokenizer } from './tokenizer.js'

const small = 'Call me Ishmael. Ishmael went to sea; Ishmael saw the whale. '.repeat(3)

test('exactly vocabSize tokens, specials last, deterministic, round-trips text', () => {
  const md = trainRunTokenizer([{ texts: [BUILTIN_TEXT], weight: 1 }], { vocabSize: 400 })
  const tok = runTokenizer(md)
  assert.equal(tok.vocabSize, 400)
  assert.equal(tok.tokenText(398), BOS_TEXT)
  assert.equal(tok.tokenText(399), EOS_TEXT)
  assert.equal(tok.bos, 398)
  assert.equal(tok.eos, 399)
  const again = trainRunTokenizer([{ texts: [BUILTIN_TEXT], weight: 1 }], { vocabSize: 400 })
  assert.deepEqual(tokenizerRoot(again), tokenizerRoot(md))
  const text = 'The harbour was quiet, 1842 boats; naïve café — ok?'
  assert.equal(tok.decode(tok.encode(text, { addBos: false })), text)
  assert.equal(tok.encode(' the', { addBos: false }).length, 1, 'the commonest word is one token')
})

test('word counts are weighted by the sources\' sampling weights', () => {
  // `small` is 1/16 of the bytes: at equal weights it counts as much as the big text.
  const has = (big: number) => runTokenizer(trainRunTokenizer([{ texts: [BUILTIN_TEXT], weight: big }, { texts: [small], weight: 1 }], { vocabSize: 300 })).encode(' Ishmael', { addBos: false }).length === 1
  assert.equal(has(1), true, 'sampled as often as the big text, its words become tokens')
  assert.equal(has(50), false, 'sampled 1 in 51, it hardly counts')
})

test('token streams: BOS + text + EOS per document', () => {
  const tok = runTokenizer(trainRunTokenizer([{ texts: [BUILTIN_TEXT], weight: 1 }], { vocabSize: 320 }))
  const s = tokenStream(tok, ['The sea.', 'A boat.'])
  const a = tok.encode('The sea.', { addBos: false })
  const b = tok.encode('A boat.', { addBos: false })
  assert.deepEqual(Array.from(s), [tok.bos, ...a, tok.eos, tok.bos, ...b, tok.eos])
})

test('a vocabulary larger than the text can fill is refused, naming the field', () => {
  assert.throws(() => trainRunTokenizer([{ texts: ['ab ab ab'], weight: 1 }], { vocabSize: 400 }), (e: Error) => e.name === 'InvalidParameterError' && /tokenizer\.vocabSize 400/.test(e.message))
  assert.throws(() => trainRunTokenizer([{ texts: ['ab'], weight: 1 }], { vocabSize: 258 }), /tokenizer\.vocabSize 258/)
})
