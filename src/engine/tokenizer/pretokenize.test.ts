import assert from 'node:assert/strict'
import { test } from 'node:test'
import { pretokenize } from './pretokenize.js'

test('llama-bpe pre-tokenizer (Llama 3 pattern, llama.cpp scanner)', () => {
  assert.deepEqual(pretokenize("I'll see 12345 ships!", 'llama-bpe'), ['I', "'ll", ' see', ' ', '123', '45', ' ships', '!'])
  assert.deepEqual(pretokenize("I'M HE'LL", 'llama-bpe'), ['I', "'M", ' HE', "'LL"])
  assert.deepEqual(pretokenize('a  b   c', 'llama-bpe'), ['a', ' ', ' b', '  ', ' c'])
  assert.deepEqual(pretokenize('x\n\n y', 'llama-bpe'), ['x', '\n\n', ' y'])
  assert.deepEqual(pretokenize('hi!!\n\nok', 'llama-bpe'), ['hi', '!!\n\n', 'ok'])
  assert.deepEqual(pretokenize('end  ', 'llama-bpe'), ['end', '  '])
  assert.deepEqual(pretokenize('中文 😀', 'llama-bpe'), ['中文', ' 😀'])
})

test('qwen2 pre-tokenizer splits every digit', () => {
  assert.deepEqual(pretokenize('12345 x1', 'qwen2'), ['1', '2', '3', '4', '5', ' x', '1'])
})

test('gpt-2 pre-tokenizer: case-sensitive contractions, digit runs, optional space', () => {
  assert.deepEqual(pretokenize("I'M it's", 'gpt-2'), ['I', "'", 'M', ' it', "'s"])
  assert.deepEqual(pretokenize(' 12345!!', 'gpt-2'), [' 12345', '!!'])
  // \s+(?!\S) gives back the last newline, which then stands alone.
  assert.deepEqual(pretokenize('a  b\n\nc', 'gpt-2'), ['a', ' ', ' b', '\n', '\n', 'c'])
})

test('whitespace is llama.cpp\'s set: U+0085 counts, U+FEFF does not', () => {
  assert.deepEqual(pretokenize('a\u0085\u0085b', 'llama-bpe'), ['a', '\u0085', '\u0085b'])
  assert.deepEqual(pretokenize('a\ufeffb', 'llama-bpe'), ['a', '\ufeffb'])
})
