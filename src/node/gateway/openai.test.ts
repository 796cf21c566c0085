/** Request checks (./openai.ts): what is accepted at its neutral value, and each refusal naming its field. */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { GatewayError, parseChatRequest, parseCompletionRequest } from './openai.js'

const chat = { model: 'm', messages: [{ role: 'user', content: 'hi' }] }
const refuses = (f: () => unknown, param: string | null, code?: string) =>
  assert.throws(f, (e) => e instanceof GatewayError && e.status === 400 && e.param === param && (code === undefined || e.code === code))

describe('OpenAI request checks', () => {
  test('a minimal chat request, and the neutral values of parameters the engine cannot vary', () => {
    const r = parseChatRequest({
      ...chat, n: 1, frequency_penalty: 0, presence_penalty: 0, logit_bias: {}, logprobs: false, tools: [], tool_choice: 'none',
      response_format: { type: 'text' }, user: 'u', store: false, top_p: null, seed: null,
    })
    assert.deepEqual(r, { kind: 'chat', model: 'm', stream: false, includeUsage: false, maxTokens: undefined, seed: undefined, stop: [], sampling: r.sampling, messages: chat.messages })
    assert.deepEqual(Object.values(r.sampling), [undefined, undefined, undefined, undefined, undefined, undefined])
  })

  test('content parts join; names pass; stop as string or list; max_completion_tokens; seed as bigint', () => {
    const r = parseChatRequest({
      model: 'm', messages: [{ role: 'user', name: 'ann', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }],
      stop: 'x', max_completion_tokens: 5, seed: 2 ** 40, stream: true, stream_options: { include_usage: true }, top_k: 0, min_p: 0, repeat_penalty: 1.1,
    })
    assert.deepEqual(r.messages, [{ role: 'user', name: 'ann', content: 'ab' }])
    assert.deepEqual(r.stop, ['x'])
    assert.equal(r.maxTokens, 5)
    assert.equal(r.seed, 2n ** 40n)
    assert.equal(r.includeUsage, true)
    assert.deepEqual(r.sampling, { temperature: undefined, topP: undefined, topK: 0, minP: 0, repeatPenalty: 1.1, repeatLastN: undefined })
  })

  test('each bad field is a 400 naming it', () => {
    refuses(() => parseChatRequest([]), null, 'invalid_json')
    refuses(() => parseChatRequest({ messages: chat.messages }), 'model')
    refuses(() => parseChatRequest({ ...chat, n: 2 }), 'n', 'unsupported_parameter')
    refuses(() => parseChatRequest({ ...chat, temperature: -0.1 }), 'temperature')
    refuses(() => parseChatRequest({ ...chat, temperature: '1' }), 'temperature')
    refuses(() => parseChatRequest({ ...chat, top_p: 0 }), 'top_p')
    refuses(() => parseChatRequest({ ...chat, max_tokens: 0 }), 'max_tokens')
    refuses(() => parseChatRequest({ ...chat, max_tokens: 1.5 }), 'max_tokens')
    refuses(() => parseChatRequest({ ...chat, max_tokens: 4, max_completion_tokens: 5 }), 'max_tokens')
    refuses(() => parseChatRequest({ ...chat, seed: -1 }), 'seed')
    refuses(() => parseChatRequest({ ...chat, seed: 2 ** 60 }), 'seed')
    refuses(() => parseChatRequest({ ...chat, stop: [''] }), 'stop')
    refuses(() => parseChatRequest({ ...chat, stop: 3 }), 'stop')
    refuses(() => parseChatRequest({ ...chat, stream_options: { include_usage: true } }), 'stream_options')
    refuses(() => parseChatRequest({ ...chat, stream: true, stream_options: { other: 1 } }), 'stream_options.other', 'unknown_parameter')
    refuses(() => parseChatRequest({ ...chat, presence_penalty: 0.5 }), 'presence_penalty', 'unsupported_parameter')
    refuses(() => parseChatRequest({ ...chat, response_format: { type: 'json_object' } }), 'response_format', 'unsupported_parameter')
    refuses(() => parseChatRequest({ ...chat, min_p: 1 }), 'min_p')
    refuses(() => parseChatRequest({ ...chat, messages: [{ role: 'tool', content: 'x' }] }), 'messages[0].role')
    refuses(() => parseChatRequest({ ...chat, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] }), 'messages[0].content[0]', 'unsupported_content')
    refuses(() => parseChatRequest({ ...chat, messages: [{ role: 'assistant', content: null, tool_calls: [] }] }), 'messages[0].tool_calls', 'unsupported_parameter')
    refuses(() => parseChatRequest({ ...chat, echo: false }), 'echo', 'unknown_parameter')
  })

  test('completions: a text, a list of one text, token ids; several prompts and echo refused', () => {
    assert.equal(parseCompletionRequest({ model: 'm', prompt: 'a' }).prompt, 'a')
    assert.equal(parseCompletionRequest({ model: 'm', prompt: ['a'] }).prompt, 'a')
    assert.deepEqual(parseCompletionRequest({ model: 'm', prompt: [1, 2, 3], echo: false, best_of: 1, logprobs: null }).prompt, [1, 2, 3])
    refuses(() => parseCompletionRequest({ model: 'm', prompt: ['a', 'b'] }), 'prompt', 'unsupported_parameter')
    refuses(() => parseCompletionRequest({ model: 'm', prompt: [[1], [2]] }), 'prompt', 'unsupported_parameter')
    refuses(() => parseCompletionRequest({ model: 'm', prompt: [1, -2] }), 'prompt')
    refuses(() => parseCompletionRequest({ model: 'm' }), 'prompt')
    refuses(() => parseCompletionRequest({ model: 'm', prompt: 'a', echo: true }), 'echo', 'unsupported_parameter')
    refuses(() => parseCompletionRequest({ model: 'm', prompt: 'a', logprobs: 2 }), 'logprobs', 'unsupported_parameter')
  })
})
