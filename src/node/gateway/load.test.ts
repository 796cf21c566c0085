/**
 * Load on the gateway (local backend, the real engine on a tiny synthesized model): 64 concurrent
 * streaming requests, read as raw SSE bytes, each complete and its own (every event carries the
 * stream's own id, the deltas joined are the engine's answer for that seed: no token lost,
 * duplicated or taken from another stream), while bad requests (invalid JSON, an unknown model, a
 * negative max_tokens, a 10 MB body) get clean OpenAI-shaped errors and clients that disconnect
 * mid-stream have their jobs stopped. Then API keys (401), per-key rate limits (429 with
 * Retry-After) and a prompt over the context (400 with the token counts).
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { privateKeyToAccount } from 'viem/accounts'
import { devAccount } from '../../chain/evm/edr.js'
import { devnetDomain } from '../../cli/commands/signedReceipt.js'
import { encodeGguf } from '../../engine/gguf/write.js'
import { synthModel } from '../../engine/model/synth.js'
import { writeGgufFile } from '../../runtime/ggufFile.js'
import { generate, loadModel, type Model } from '../../runtime/model.js'
import { type GatewayBackend, localBackend } from './backend.js'
import { type Gateway, rateLimiter, startGateway } from './server.js'

const CHATML =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

let dir: string
let model: Model
let backend: GatewayBackend
let gw: Gateway
/** Jobs the backend ran, with how they ended. */
const runs: { signal: AbortSignal; done?: boolean; error?: unknown }[] = []

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-gw-load-'))
  const path = join(dir, 'm.gguf')
  writeGgufFile(path, encodeGguf(synthModel({ preset: 'tiny-qwen2', type: 'q8_0', seed: 4, chatTemplate: CHATML })))
  model = await loadModel(path)
  const local = localBackend([{ model, name: 'm' }], { account: privateKeyToAccount(devAccount(1).privateKey), ...devnetDomain() })
  backend = {
    models: local.models,
    async run(req, onText) {
      const rec: (typeof runs)[number] = { signal: req.signal }
      runs.push(rec)
      try {
        const r = await local.run(req, onText)
        rec.done = true
        return r
      } catch (e) {
        rec.error = e
        throw e
      }
    },
  }
  gw = await startGateway({ backend, maxConcurrent: 96 })
})
after(async () => {
  await gw?.close()
  model?.close()
  rmSync(dir, { recursive: true, force: true })
})

type Event = { id?: string; choices?: { delta?: { content?: string; role?: string }; finish_reason?: string | null }[]; usage?: { completion_tokens: number }; tessera?: { output_tokens: number[]; prompt_tokens: number[] } }

/** POSTs a streaming chat request; resolves with every SSE event (raw text split on blank lines). */
function rawStream(body: unknown): Promise<{ status: number; events: string[] }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (d: string) => (text += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, events: text.split('\n\n').filter(Boolean) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
}

/** Starts a stream and disconnects after its first content event. */
function disconnectMidStream(body: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (d: string) => {
        text += d
        if (/"content":"[^"]/.test(text)) {
          req.destroy()
          resolve()
        }
      })
      res.on('error', () => {})
    })
    req.on('error', (e) => (req.destroyed ? undefined : reject(e)))
    req.end(JSON.stringify(body))
  })
}

const messages = (i: number) => [{ role: 'user', content: `Story number ${i}: the harbour at dawn.` }]

describe('gateway under load', () => {
  test('64 concurrent streams are each complete and their own, while bad requests fail cleanly and disconnects stop their jobs', async () => {
    const N = 64
    const started = runs.length
    const streams = Array.from({ length: N }, (_, i) => rawStream({ model: 'm', messages: messages(i), max_tokens: 12, seed: 1000 + i, temperature: 0.8, stream: true, stream_options: { include_usage: true } }))
    const post = (body: string | Buffer) => fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error: { message: string; type: string; param: string | null; code: string | null } } }))
    const bad = Promise.all([
      post('{"model": "m", "messages": ['),
      post(JSON.stringify({ model: 'no-such-model', messages: messages(0) })),
      post(JSON.stringify({ model: 'm', messages: messages(0), max_tokens: -5 })),
      post(Buffer.alloc(10 * 1024 * 1024, 0x20)),
    ])
    const gone = Promise.all(Array.from({ length: 4 }, (_, i) => disconnectMidStream({ model: 'm', messages: messages(i), max_tokens: 400, seed: 7 + i, stream: true })))
    const [results, errors] = await Promise.all([Promise.all(streams), bad, gone])

    assert.deepEqual(errors.map((e) => e.status), [400, 404, 400, 413])
    assert.deepEqual(errors.map((e) => e.body.error.code), ['invalid_json', 'model_not_found', errors[2].body.error.code, 'request_too_large'])
    assert.equal(errors[2].body.error.param, 'max_tokens')
    for (const e of errors) assert.deepEqual(Object.keys(e.body.error).sort(), ['code', 'message', 'param', 'type'])

    const ids = new Set<string>()
    results.forEach((r, i) => {
      assert.equal(r.status, 200, `stream ${i}`)
      assert.equal(r.events.at(-1), 'data: [DONE]', `stream ${i} ends with [DONE]`)
      const evs = r.events.slice(0, -1).map((e) => {
        assert.match(e, /^data: \{/, `stream ${i}: one data line per event`)
        return JSON.parse(e.slice('data: '.length)) as Event
      })
      const id = evs[0].id!
      assert.ok(evs.every((e) => e.id === id), `stream ${i}: every event is its own (no interleaving)`)
      assert.ok(!ids.has(id), 'ids are unique')
      ids.add(id)
      assert.equal(evs[0].choices![0].delta!.role, 'assistant')
      const finish = evs.filter((e) => e.choices?.[0]?.finish_reason)
      assert.equal(finish.length, 1, `stream ${i}: one finish chunk`)
      const t = finish[0].tessera!
      const text = evs.map((e) => e.choices?.[0]?.delta?.content ?? '').join('')
      const direct = generate(model, { prompt: t.prompt_tokens, seed: BigInt(1000 + i), ...({ temperature: 0.8, topP: 1, maxTokens: 12 } as const) })
      assert.equal(text, direct.text, `stream ${i}: the engine's answer, no token lost or repeated`)
      assert.deepEqual(t.output_tokens, direct.outputTokens)
      assert.equal(evs.at(-1)!.usage!.completion_tokens, direct.outputTokens.length, 'the usage chunk counts every token')
    })

    // the disconnected clients' jobs were stopped, not run to their 400 tokens
    const deadline = Date.now() + 10_000
    const mine = () => runs.slice(started).filter((r) => r.signal.aborted)
    while (mine().length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    assert.equal(mine().length, 4, 'each disconnect aborted its job')
    assert.ok(mine().every((r) => !r.done))
    const h = (await (await fetch(`${gw.url}/health`)).json()) as { active: number }
    assert.equal(h.active, 0, 'nothing left running')
  })
})

describe('gateway keys, rate limits, context', () => {
  test('API keys: 401 in OpenAI shape without a key or with a wrong one; /health open; per-key rate limit 429 with Retry-After', async () => {
    const keyed = await startGateway({ backend, apiKeys: ['sk-test-one-1234', 'sk-test-two-5678'], ratePerMinute: 2 })
    try {
      const call = (key?: string) =>
        fetch(`${keyed.url}/v1/completions`, {
          method: 'POST', headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
          body: JSON.stringify({ model: 'm', prompt: 'The harbour', max_tokens: 2, seed: 1 }),
        })
      for (const key of [undefined, 'sk-wrong-key-0000', 'sk-test-one-1234x']) {
        const r = await call(key)
        assert.equal(r.status, 401)
        const b = (await r.json()) as { error: { type: string; code: string; param: null; message: string } }
        assert.deepEqual({ type: b.error.type, code: b.error.code, param: b.error.param }, { type: 'invalid_request_error', code: 'invalid_api_key', param: null })
      }
      assert.equal((await fetch(`${keyed.url}/v1/models`)).status, 401, 'every API route needs the key')
      assert.equal((await fetch(`${keyed.url}/v1/models`, { headers: { authorization: 'Bearer sk-test-two-5678' } })).status, 200)
      assert.equal((await fetch(`${keyed.url}/health`)).status, 200)
      assert.equal((await call('sk-test-one-1234')).status, 200)
      assert.equal((await call('sk-test-one-1234')).status, 200)
      const limited = await call('sk-test-one-1234')
      assert.equal(limited.status, 429)
      assert.ok(Number(limited.headers.get('retry-after')) >= 1)
      assert.equal(((await limited.json()) as { error: { code: string } }).error.code, 'rate_limit_exceeded')
      assert.equal((await call('sk-test-two-5678')).status, 200, 'another key has its own budget')
    } finally {
      await keyed.close()
    }
  })

  test('the rate limiter refills over the minute', () => {
    let t = 0
    const l = rateLimiter(6, () => t)
    for (let i = 0; i < 6; i++) assert.equal(l.take('a'), 0)
    assert.equal(l.take('a'), 10, 'one more in 10 s')
    t += 10_000
    assert.equal(l.take('a'), 0)
    assert.equal(l.take('b'), 0)
  })

  test('a prompt over the context is a 400 naming the token counts', async () => {
    const ctx = backend.models()[0].contextLength
    const r = await fetch(`${gw.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ model: 'm', prompt: Array.from({ length: ctx + 5 }, () => 3) }) })
    assert.equal(r.status, 400)
    const b = (await r.json()) as { error: { message: string; code: string; param: string } }
    assert.equal(b.error.code, 'context_length_exceeded')
    assert.equal(b.error.param, 'prompt')
    assert.match(b.error.message, new RegExp(`maximum context length is ${ctx} tokens; the request has ${ctx + 5} prompt tokens`))
    const r2 = await fetch(`${gw.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ model: 'm', prompt: [1, 2, 3], max_tokens: ctx }) })
    const b2 = (await r2.json()) as { error: { message: string; param: string } }
    assert.equal(r2.status, 400)
    assert.equal(b2.error.param, 'max_tokens')
    assert.match(b2.error.message, new RegExp(`3 prompt tokens plus ${ctx} completion tokens`))
  })
})
