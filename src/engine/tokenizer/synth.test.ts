import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { GgufArrayItem, GgufValue } from '../gguf/types.js'
import { synthTokenizerMetadata, TokenType } from './synth.js'
import { createTokenizer } from './tokenizer.js'
import { BYTE_TO_UNICODE } from './unicode.js'

const arr = <T extends GgufArrayItem>(md: Record<string, GgufValue>, key: string): readonly T[] => {
  const v = md[key]
  assert.ok(v.type === 'array', key)
  return v.value as readonly T[]
}

const KINDS = [{ kind: 'spm' }, { kind: 'bpe', pre: 'llama-bpe' }, { kind: 'bpe', pre: 'qwen2' }, { kind: 'bpe', pre: 'gpt-2' }] as const

test('exactly vocabSize unique tokens, typed arrays of that length', () => {
  for (const k of KINDS) for (const vocabSize of [300, 1000, 5000]) {
    const md = synthTokenizerMetadata({ ...k, vocabSize })
    const tokens = arr<string>(md, 'tokenizer.ggml.tokens')
    assert.equal(tokens.length, vocabSize)
    assert.equal(new Set(tokens).size, vocabSize)
    assert.equal(md['tokenizer.ggml.tokens'].type === 'array' && md['tokenizer.ggml.tokens'].itemType, 'string')
    assert.equal(md['tokenizer.ggml.token_type'].type === 'array' && md['tokenizer.ggml.token_type'].itemType, 'int32')
    assert.equal(arr<number>(md, 'tokenizer.ggml.token_type').length, vocabSize)
    assert.equal(md['tokenizer.ggml.bos_token_id'].type, 'uint32')
  }
})

test('spm layout: specials, 256 byte-fallback tokens, pieces by descending f32 score', () => {
  const md = synthTokenizerMetadata({ kind: 'spm', vocabSize: 2000 })
  const tokens = arr<string>(md, 'tokenizer.ggml.tokens')
  const types = arr<number>(md, 'tokenizer.ggml.token_type')
  const scores = arr<number>(md, 'tokenizer.ggml.scores')
  assert.equal(md['tokenizer.ggml.model'].value, 'llama')
  assert.equal(md['tokenizer.ggml.scores'].type === 'array' && md['tokenizer.ggml.scores'].itemType, 'float32')
  assert.deepEqual(tokens.slice(0, 3), ['<unk>', '<s>', '</s>'])
  assert.deepEqual(types.slice(0, 3), [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL])
  assert.equal(tokens[3], '<0x00>')
  assert.equal(tokens[3 + 0x0a], '<0x0A>')
  assert.equal(tokens[258], '<0xFF>')
  assert.ok(types.slice(3, 259).every((t) => t === TokenType.BYTE))
  assert.ok(types.slice(259).every((t) => t === TokenType.NORMAL))
  for (let i = 260; i < tokens.length; i++) assert.ok(scores[i] < scores[i - 1], `score order at ${i}`)
  assert.ok(tokens.includes('▁the'))
})

test('bpe layout: 256 byte symbols, every merge joins two tokens into a token, control specials last', () => {
  for (const pre of ['llama-bpe', 'qwen2'] as const) {
    const md = synthTokenizerMetadata({ kind: 'bpe', pre, vocabSize: 3000 })
    const tokens = arr<string>(md, 'tokenizer.ggml.tokens')
    const types = arr<number>(md, 'tokenizer.ggml.token_type')
    const set = new Set(tokens)
    for (const ch of BYTE_TO_UNICODE) assert.ok(set.has(ch))
    for (const m of arr<string>(md, 'tokenizer.ggml.merges')) {
      const [a, b, extra] = m.split(' ')
      assert.equal(extra, undefined)
      assert.ok(set.has(a) && set.has(b) && set.has(a + b), m)
    }
    const specials = pre === 'llama-bpe' ? ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'] : ['<|endoftext|>', '<|im_start|>', '<|im_end|>']
    assert.deepEqual(tokens.slice(-specials.length), specials)
    assert.ok(types.slice(-specials.length).every((t) => t === TokenType.CONTROL))
    assert.ok(types.slice(0, -specials.length).every((t) => t === TokenType.NORMAL))
    assert.equal(md['tokenizer.ggml.pre'].value, pre)
    assert.equal(md['tokenizer.ggml.add_bos_token'].value, pre === 'llama-bpe')
  }
})

test('deterministic; the seed changes only the filler tokens', () => {
  const a = synthTokenizerMetadata({ kind: 'bpe', pre: 'qwen2', vocabSize: 4000, seed: 1 })
  assert.deepEqual(synthTokenizerMetadata({ kind: 'bpe', pre: 'qwen2', vocabSize: 4000, seed: 1 }), a)
  const b = synthTokenizerMetadata({ kind: 'bpe', pre: 'qwen2', vocabSize: 4000, seed: 2 })
  const ta = arr<string>(a, 'tokenizer.ggml.tokens')
  const tb = arr<string>(b, 'tokenizer.ggml.tokens')
  assert.deepEqual(ta.slice(0, 600), tb.slice(0, 600)) // bytes and learned merges
  assert.notDeepEqual(ta, tb)
})

test('almost every token is reachable: encoding its own text gives just that token', () => {
  for (const k of KINDS.slice(0, 3)) {
    const tok = createTokenizer(synthTokenizerMetadata({ ...k, vocabSize: 4096 }))
    let reachable = 0
    let total = 0
    for (let id = 0; id < tok.vocabSize; id++) {
      const text = tok.tokenText(id)
      if (text.startsWith('<') && text.endsWith('>')) continue // specials and byte tokens
      // SPM pieces that start a word are reached from text with a leading space (the ▁ prefix).
      if (k.kind === 'spm' && !text.startsWith('▁')) continue
      const plain = new TextDecoder().decode(tok.decodeToken(id))
      const ids = tok.encode(k.kind === 'spm' ? plain.slice(1) : plain, { addBos: false })
      total++
      if (ids.length === 1 && ids[0] === id) reachable++
    }
    assert.ok(reachable / total > 0.9, `${k.kind} ${'pre' in k ? k.pre : ''}: ${reachable}/${total}`)
  }
})

test('49,152 tokens from the built-in text in well under 3 s', () => {
  for (const k of KINDS.slice(0, 3)) {
    const t0 = performance.now()
    const md = synthTokenizerMetadata({ ...k, vocabSize: 49152 })
    const ms = performance.now() - t0
    assert.equal(arr<string>(md, 'tokenizer.ggml.tokens').length, 49152)
    // Measured ~0.4-0.9 s on one idle core; the bound leaves room for a loaded CI machine.
    assert.ok(ms < 6000, `${k.kind}: ${ms.toFixed(0)} ms`)
  }
})

test('invalid options are named errors', () => {
  assert.throws(() => synthTokenizerMetadata({ kind: 'spm', vocabSize: 100 }), { name: 'InvalidParameterError' })
  assert.throws(() => synthTokenizerMetadata({ kind: 'bpe', vocabSize: 258 }), { name: 'InvalidParameterError' })
  assert.throws(() => synthTokenizerMetadata({ kind: 'wordpiece' as 'spm', vocabSize: 1000 }), { name: 'InvalidParameterError' })
  assert.throws(() => synthTokenizerMetadata({ kind: 'bpe', pre: 'falcon' as 'qwen2', vocabSize: 1000 }), { name: 'InvalidParameterError' })
  assert.throws(() => synthTokenizerMetadata({ kind: 'spm', vocabSize: 1000, seed: 0.5 }), { name: 'InvalidParameterError' })
})
