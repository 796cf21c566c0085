/** Chat templates (./chatTemplate.ts) with real models' template strings on the synthetic tokenizers that carry their special tokens. */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createTokenizer, synthTokenizerMetadata } from '../../engine/tokenizer/index.js'
import type { GatewayModel } from './backend.js'
import { chatPrompt, fallbackTranscript, prepareChatTemplate } from './chatTemplate.js'
import { GatewayError } from './openai.js'

// Meta-Llama-3-8B-Instruct's tokenizer.chat_template
const LLAMA3 =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
// Qwen2-Instruct's (chatml with a default system message)
const CHATML =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
// Mistral-7B-Instruct-v0.1's: refuses a system message with raise_exception
const MISTRAL =
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"

function model(kind: 'spm' | 'bpe', pre: 'llama-bpe' | 'qwen2' | undefined, chatTemplate?: string): GatewayModel {
  const tokenizer = createTokenizer(synthTokenizerMetadata({ kind, pre, vocabSize: 1024 }))
  return { id: 'm@0000000000000000', name: 'm', root: `0x${'00'.repeat(32)}`, ownedBy: 'tessera', created: 0, contextLength: 512, tokenizer, chatTemplate }
}
const msgs = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hello there' },
]

describe('chat templates', () => {
  test('llama-3: one BOS, header and end-of-turn tokens as special tokens, the assistant header last', () => {
    const m = model('bpe', 'llama-bpe', LLAMA3)
    const f = prepareChatTemplate(m)
    assert.equal(f.kind, 'template')
    const { text, tokens } = chatPrompt(m, f, msgs)
    const tok = m.tokenizer
    assert.equal(text, '<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n')
    const id = (s: string) => tok.encode(s, { parseSpecial: true, addBos: false })
    assert.equal(id('<|eot_id|>').length, 1)
    assert.equal(tokens[0], tok.bos)
    assert.equal(tokens.filter((t) => t === tok.bos).length, 1, 'exactly one BOS')
    assert.equal(tokens.filter((t) => t === id('<|eot_id|>')[0]).length, 2)
    assert.equal(tokens.filter((t) => t === id('<|start_header_id|>')[0]).length, 3)
    assert.equal(tok.decode(tokens, { unparseSpecial: true }), `<|begin_of_text|>${text}`)
  })

  test('chatml: im_start/im_end tokens, the default system message when none is given', () => {
    const m = model('bpe', 'qwen2', CHATML)
    const f = prepareChatTemplate(m)
    const { text, tokens } = chatPrompt(m, f, [{ role: 'user', content: 'Hi' }])
    assert.equal(text, '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n')
    const imStart = m.tokenizer.encode('<|im_start|>', { parseSpecial: true })
    assert.equal(imStart.length, 1)
    assert.equal(tokens[0], imStart[0], 'no BOS: qwen2 adds none')
    assert.equal(tokens.filter((t) => t === imStart[0]).length, 3)
  })

  test('a model without a template uses the role: content transcript, as plain text', () => {
    const m = model('spm', undefined)
    const f = prepareChatTemplate(m)
    assert.deepEqual(f, { kind: 'fallback' })
    const { text, tokens } = chatPrompt(m, f, msgs)
    assert.equal(text, 'system: Be brief.\nuser: Hello there\nassistant:')
    assert.equal(text, fallbackTranscript(msgs))
    assert.deepEqual(tokens, m.tokenizer.encode(text))
  })

  test('a template that raises on these messages is a 400 naming messages; the model still serves others', () => {
    const m = model('spm', undefined, MISTRAL)
    const f = prepareChatTemplate(m)
    assert.equal(f.kind, 'template', 'the test render has no system message')
    assert.throws(
      () => chatPrompt(m, f, msgs),
      (e) => e instanceof GatewayError && e.status === 400 && e.param === 'messages' && e.code === 'chat_template_error' && /roles must alternate/.test(e.message),
    )
    const { text } = chatPrompt(m, f, [{ role: 'user', content: 'Hi' }])
    assert.equal(text, '[INST] Hi [/INST]', 'the BOS text goes: the tokenizer adds BOS itself')
  })

  test('a template that does not parse or render falls back with a one-line warning', () => {
    for (const bad of ['{% for m in messages %}{{ m.content }', '{{ messages[0].content.nope() }}']) {
      const f = prepareChatTemplate(model('bpe', 'llama-bpe', bad))
      assert.equal(f.kind, 'fallback')
      assert.ok(f.kind === 'fallback' && f.warning && !f.warning.includes('\n'), `one line: ${f.kind === 'fallback' && f.warning}`)
    }
    assert.equal(prepareChatTemplate(model('bpe', 'llama-bpe', 'broken {{'), LLAMA3).kind, 'template', 'an override replaces the model template')
  })

  test('user text with special-token text is parsed as the template text is (as llama.cpp does): documented', () => {
    const m = model('bpe', 'qwen2', CHATML)
    const { tokens } = chatPrompt(m, prepareChatTemplate(m), [{ role: 'user', content: '<|im_end|>' }])
    const imEnd = m.tokenizer.encode('<|im_end|>', { parseSpecial: true })[0]
    assert.equal(tokens.filter((t) => t === imEnd).length, 3)
  })
})
