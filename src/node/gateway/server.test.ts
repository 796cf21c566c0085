/**
 * The gateway against the official `openai` client, on 127.0.0.1, over the real engine with tiny
 * synthesized models: a llama-3 template model (tiny-bpe), a chatml one (tiny-qwen2) and one
 * without a template (tiny, SPM: the fallback transcript). Each answer's receipt is checked the
 * way `tessera verify` checks it (signature against the signed request, then teacher-forced replay).
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import OpenAI, { APIError } from 'openai'
import { privateKeyToAccount } from 'viem/accounts'
import { cli } from '../../../test/support/cli.js'
import { devAccount } from '../../chain/evm/edr.js'
import { readJobFile } from '../../cli/commands/run.js'
import { checkSignature, devnetDomain } from '../../cli/commands/signedReceipt.js'
import { encodeGguf } from '../../engine/gguf/write.js'
import { synthModel } from '../../engine/model/synth.js'
import { writeGgufFile } from '../../runtime/ggufFile.js'
import { generate, loadModel, type Model, verify } from '../../runtime/model.js'
import type { Receipt } from '../../trace/receipt.js'
import type { SignedReceipt } from '../transcript.js'
import { type GatewayBackend, localBackend } from './backend.js'
import { type Gateway, startGateway } from './server.js'
import { problemsText } from '../../trace/job.js'

const LLAMA3 =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
const CHATML =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

type Tessera = {
  job_id: string; seed: string; provider: string; request_digest: string; receipt_digest: string; signature: string
  receipt: Receipt; signed: SignedReceipt; prompt_tokens: number[]; output_tokens: number[]; receipt_url: string
}
const tesseraOf = (x: unknown) => (x as { tessera: Tessera }).tessera

let dir: string
let models: Model[]
let backend: GatewayBackend
let gw: Gateway
let openai: OpenAI
const signer = { account: privateKeyToAccount(devAccount(1).privateKey), ...devnetDomain() }
/** Every job the backend ran: its signal, how many text pieces it gave, and how it ended. */
const runs: { signal: AbortSignal; pieces: number; error?: unknown; done?: boolean }[] = []

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-gateway-'))
  const files = [
    { preset: 'tiny-bpe', name: 'llama3', chatTemplate: LLAMA3 },
    { preset: 'tiny-qwen2', name: 'chatml', chatTemplate: CHATML },
    { preset: 'tiny', name: 'plain', chatTemplate: undefined },
  ]
  models = []
  for (const f of files) {
    const path = join(dir, `${f.name}.gguf`)
    writeGgufFile(path, encodeGguf(synthModel({ preset: f.preset, type: 'q8_0', seed: 3, chatTemplate: f.chatTemplate })))
    models.push(await loadModel(path))
  }
  const local = localBackend(
    files.map((f, i) => ({ model: models[i], name: f.name })),
    signer,
  )
  // the real backend, observed: each job's signal and outcome
  backend = {
    models: local.models,
    async run(req, onText) {
      const rec: (typeof runs)[number] = { signal: req.signal, pieces: 0 }
      runs.push(rec)
      try {
        const r = await local.run(req, (d) => {
          rec.pieces++
          onText(d)
        })
        rec.done = true
        return r
      } catch (e) {
        rec.error = e
        throw e
      }
    },
  }
  gw = await startGateway({ backend, maxBodyBytes: 64 * 1024 })
  openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'x', maxRetries: 0 })
})

after(async () => {
  await gw?.close()
  for (const m of models ?? []) m.close()
  rmSync(dir, { recursive: true, force: true })
})

const idOf = (name: string) => backend.models().find((m) => m.name === name)!.id
const hello = [{ role: 'system' as const, content: 'You are terse.' }, { role: 'user' as const, content: 'Tell me about the harbour.' }]

async function streamChat(body: Omit<OpenAI.ChatCompletionCreateParamsStreaming, 'stream'>) {
  const chunks: OpenAI.ChatCompletionChunk[] = []
  for await (const c of await openai.chat.completions.create({ ...body, stream: true })) chunks.push(c)
  return { chunks, text: chunks.map((c) => c.choices[0]?.delta.content ?? '').join('') }
}

/** `tessera verify`'s checks on a response's receipt: the signature against the signed request, then replay. */
async function verifyTessera(t: Tessera, text: string, model: Model) {
  const sig = await checkSignature(t.receipt, t.signed)
  const verdict = verify(model, { receipt: t.receipt, promptTokens: t.prompt_tokens, outputTokens: t.output_tokens, text })
  return { sig, verdict }
}

describe('gateway with the openai client', () => {
  test('GET /v1/models lists every model with its root, and the template each uses', async () => {
    const list = await openai.models.list()
    assert.deepEqual(list.data.map((m) => m.id).sort(), backend.models().map((m) => m.id).sort())
    for (const m of list.data) {
      assert.equal(m.object, 'model')
      assert.equal(m.owned_by, 'tessera')
      assert.match(m.id, /^[a-z0-9]+@[0-9a-f]{16}$/)
    }
    const byName = Object.fromEntries(list.data.map((m) => [m.id.split('@')[0], (m as unknown as { tessera: { chat_format: string; root: string } }).tessera]))
    assert.equal(byName.llama3.chat_format, 'template')
    assert.equal(byName.chatml.chat_format, 'template')
    assert.equal(byName.plain.chat_format, 'fallback')
    assert.deepEqual(gw.warnings, [])
    assert.equal((await openai.models.retrieve('llama3')).id, idOf('llama3'), 'a unique name resolves to its id')
  })

  test('chat: the streamed deltas joined equal the non-streamed text at the same seed; the receipt verifies', async () => {
    for (const name of ['llama3', 'chatml', 'plain']) {
      const body = { model: idOf(name), messages: hello, max_tokens: 24, seed: 7, temperature: 0.9 }
      const res = await openai.chat.completions.create(body).withResponse()
      const full = res.data
      const text = full.choices[0].message.content ?? ''
      assert.ok(full.usage!.completion_tokens >= 1)
      const s = await streamChat(body)
      assert.equal(s.text, text, `${name}: streamed text`)
      assert.equal(s.chunks[0].choices[0].delta.role, 'assistant', 'the first chunk carries the role')
      const last = s.chunks.at(-1)!
      assert.equal(last.choices[0].finish_reason, full.choices[0].finish_reason)
      assert.deepEqual(last.choices[0].delta, {}, 'finish_reason on its own chunk')
      assert.ok(s.chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null))
      const t = tesseraOf(full)
      assert.deepEqual(tesseraOf(last).receipt, t.receipt, 'the stream carries the same receipt in its last chunk')
      assert.equal(t.seed, '7')
      assert.equal(res.response.headers.get('x-tessera-receipt-digest'), t.receipt_digest)
      assert.equal(res.response.headers.get('x-tessera-provider'), signer.account.address)
      const model = models[['llama3', 'chatml', 'plain'].indexOf(name)]
      const { sig, verdict } = await verifyTessera(t, text, model)
      assert.deepEqual(sig, { ok: true, signer: signer.account.address }, `${name}: receipt signature`)
      assert.ok(verdict.valid, `${name}: replay: ${problemsText(verdict)}`)
      assert.equal(full.usage!.prompt_tokens, t.prompt_tokens.length)
      assert.equal(full.usage!.completion_tokens, t.output_tokens.length)
      assert.equal(full.usage!.total_tokens, t.prompt_tokens.length + t.output_tokens.length)
    }
  })

  test("the receipt's job file (GET /v1/receipts/{id}) passes `tessera verify`; tampered ones do not", async () => {
    const full = await openai.chat.completions.create({ model: 'llama3', messages: hello, max_tokens: 12, seed: 11 })
    const t = tesseraOf(full)
    const res = await fetch(gw.url + t.receipt_url)
    assert.equal(res.status, 200)
    const path = join(dir, 'job.json')
    writeFileSync(path, await res.text())
    const job = readJobFile(path)
    assert.equal(job.text, full.choices[0].message.content)
    assert.ok(job.traceLeaves, 'the job file carries the trace leaves')
    const buf = Buffer.from(job.traceLeaves!, 'base64')
    const leaves = Array.from({ length: buf.length / 32 }, (_, i) => new Uint8Array(buf.subarray(32 * i, 32 * i + 32)))
    assert.ok((await checkSignature(job.receipt, job.signed)).ok)
    assert.ok(verify(models[0], { receipt: job.receipt, promptTokens: job.promptTokens, outputTokens: job.tokens, leaves, text: job.text }).valid)
    const checked = await cli('verify', '-m', join(dir, 'llama3.gguf'), '--receipt', path)
    assert.equal(checked.code, 0, checked.out + checked.err)
    assert.match(checked.out, new RegExp(`^valid: receipt v2 signed by ${signer.account.address}`))
    // attacker: another answer under the same receipt, a receipt signed by someone else
    const other = [...t.output_tokens]
    other[0] = (other[0] + 1) % 1000
    assert.equal(verify(models[0], { receipt: t.receipt, promptTokens: t.prompt_tokens, outputTokens: other }).valid, false)
    const forged = { ...t.signed, signature: await privateKeyToAccount(devAccount(2).privateKey).signMessage({ message: 'x' }) }
    assert.equal((await checkSignature(t.receipt, forged)).ok, false)
    const moreTokens = { ...t.receipt, nOutput: t.receipt.nOutput + 1 }
    assert.equal((await checkSignature(moreTokens, t.signed)).ok, false)
    assert.equal((await fetch(`${gw.url}/v1/receipts/0x${'00'.repeat(32)}`)).status, 404)
  })

  test('stop (a string and a list) ends the answer before the stop text; max_tokens bounds it', async () => {
    const base = { model: 'llama3', messages: hello, seed: 5, temperature: 0.9 }
    const free = await openai.chat.completions.create({ ...base, max_tokens: 40 })
    const text = free.choices[0].message.content ?? ''
    assert.ok(text.length >= 8, `an answer to cut: ${JSON.stringify(text)}`)
    const stop = text.slice(4, 7)
    const want = text.slice(0, text.indexOf(stop))
    const one = await openai.chat.completions.create({ ...base, max_tokens: 40, stop })
    assert.equal(one.choices[0].message.content, want)
    assert.equal(one.choices[0].finish_reason, 'stop')
    const list = await streamChat({ ...base, max_tokens: 40, stop: ['\u0000never', stop] })
    assert.equal(list.text, want)
    assert.equal(list.chunks.at(-1)!.choices[0].finish_reason, 'stop')
    const short = await openai.chat.completions.create({ ...base, max_tokens: 3 })
    assert.equal(short.usage!.completion_tokens, 3)
    assert.equal(short.choices[0].finish_reason, 'length')
    const mct = await openai.chat.completions.create({ ...base, max_completion_tokens: 3 })
    assert.equal(mct.choices[0].message.content, short.choices[0].message.content)
  })

  test('stream_options.include_usage adds a usage chunk (choices []) before [DONE]; other chunks carry usage null', async () => {
    const s = await streamChat({ model: 'chatml', messages: hello, max_tokens: 6, seed: 2, stream_options: { include_usage: true } })
    const last = s.chunks.at(-1)!
    assert.deepEqual(last.choices, [])
    assert.equal(last.usage!.completion_tokens, 6)
    assert.equal(last.usage!.total_tokens, last.usage!.prompt_tokens + 6)
    assert.ok(s.chunks.slice(0, -1).every((c) => c.usage === null))
    const plain = await streamChat({ model: 'chatml', messages: hello, max_tokens: 6, seed: 2 })
    assert.ok(plain.chunks.every((c) => !('usage' in c)), 'no usage without include_usage')
  })

  test('seed: the same seed gives the same answer; without one a fresh seed is reported and reproduces it', async () => {
    const body = { model: 'plain', messages: hello, max_tokens: 16, temperature: 1.2 }
    const a = await openai.chat.completions.create({ ...body, seed: 99 })
    const b = await openai.chat.completions.create({ ...body, seed: 99 })
    assert.equal(a.choices[0].message.content, b.choices[0].message.content)
    const fresh = await openai.chat.completions.create(body)
    const seed = Number(tesseraOf(fresh).seed)
    assert.ok(Number.isSafeInteger(seed))
    const again = await openai.chat.completions.create({ ...body, seed })
    assert.equal(again.choices[0].message.content, fresh.choices[0].message.content)
    const other = await openai.chat.completions.create(body)
    assert.notEqual(tesseraOf(other).seed, tesseraOf(fresh).seed)
  })

  test('completions: text prompt and token ids, streamed and not, with the receipt', async () => {
    const body = { model: 'plain', prompt: 'The harbour was', max_tokens: 10, seed: 4 }
    const full = await openai.completions.create(body)
    assert.equal(full.object, 'text_completion')
    const chunks: OpenAI.Completion[] = []
    for await (const c of await openai.completions.create({ ...body, stream: true, stream_options: { include_usage: true } })) chunks.push(c)
    assert.equal(chunks.map((c) => c.choices[0]?.text ?? '').join(''), full.choices[0].text)
    assert.deepEqual(chunks.at(-1)!.usage, full.usage)
    const t = tesseraOf(full)
    const ids = await openai.completions.create({ ...body, prompt: t.prompt_tokens })
    assert.equal(ids.choices[0].text, full.choices[0].text)
    const { sig, verdict } = await verifyTessera(t, full.choices[0].text, models[2])
    assert.ok(sig.ok && verdict.valid)
  })

  test('concurrent streams each get their own answer, equal to the one alone', async () => {
    const seeds = [21, 22, 23, 24]
    const alone = []
    for (const seed of seeds) alone.push((await openai.chat.completions.create({ model: 'llama3', messages: hello, max_tokens: 12, seed })).choices[0].message.content)
    const together = await Promise.all(seeds.map((seed) => streamChat({ model: 'llama3', messages: hello, max_tokens: 12, seed })))
    assert.deepEqual(together.map((s) => s.text), alone)
  })
})

describe('gateway errors', () => {
  const isApiError = (e: unknown, status: number, param?: string | null) => {
    assert.ok(e instanceof APIError, `an APIError, got ${e}`)
    assert.equal(e.status, status)
    if (param !== undefined) assert.equal(e.param, param)
    assert.equal(typeof (e.error as { message?: unknown }).message, 'string')
    return true
  }

  test('bad requests get OpenAI-shaped errors naming the field, and the server keeps serving', async () => {
    const ok = { model: 'llama3', messages: hello, max_tokens: 2, seed: 1 }
    await assert.rejects(openai.chat.completions.create({ ...ok, n: 2 }), (e) => isApiError(e, 400, 'n'))
    await assert.rejects(openai.chat.completions.create({ ...ok, model: 'nope' }), (e) => isApiError(e, 404, 'model') && (e as APIError).code === 'model_not_found')
    await assert.rejects(openai.chat.completions.create({ ...ok, temperature: 3 }), (e) => isApiError(e, 400, 'temperature'))
    await assert.rejects(openai.chat.completions.create({ ...ok, max_tokens: -1 }), (e) => isApiError(e, 400, 'max_tokens'))
    await assert.rejects(openai.chat.completions.create({ ...ok, logprobs: true }), (e) => isApiError(e, 400, 'logprobs'))
    await assert.rejects(openai.chat.completions.create({ ...ok, tools: [{ type: 'function', function: { name: 'f' } }] }), (e) => isApiError(e, 400, 'tools'))
    await assert.rejects(openai.chat.completions.create({ ...ok, stop: ['a', 'b', 'c', 'd', 'e'] }), (e) => isApiError(e, 400, 'stop'))
    await assert.rejects(openai.chat.completions.create({ ...ok, bogus: 1 } as never), (e) => isApiError(e, 400, 'bogus'))
    await assert.rejects(openai.chat.completions.create({ ...ok, messages: [] }), (e) => isApiError(e, 400, 'messages'))
    await assert.rejects(openai.chat.completions.create({ ...ok, max_tokens: 600 }), (e) => isApiError(e, 400, 'max_tokens') && /512 tokens/.test((e as Error).message))
    await assert.rejects(openai.chat.completions.create({ ...ok, messages: [{ role: 'user', content: 'word '.repeat(600) }] }), (e) => isApiError(e, 400, 'messages') && (e as APIError).code === 'context_length_exceeded')
    await assert.rejects(openai.completions.create({ model: 'plain', prompt: ['a', 'b'] }), (e) => isApiError(e, 400, 'prompt'))
    await assert.rejects(openai.chat.completions.create({ ...ok, messages: [{ role: 'user', content: 'x'.repeat(70 * 1024) }] }), (e) => isApiError(e, 413))
    const raw = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": "llama3", ' })
    assert.equal(raw.status, 400)
    const body = (await raw.json()) as { error: { message: string; type: string; param: unknown; code: unknown } }
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type'])
    assert.equal(body.error.type, 'invalid_request_error')
    assert.equal((await fetch(`${gw.url}/v1/chat/completions`)).status, 405)
    assert.equal((await fetch(`${gw.url}/v1/embeddings`, { method: 'POST', body: '{}' })).status, 404)
    assert.equal((await fetch(`${gw.url}/health`)).status, 200)
    const still = await openai.chat.completions.create(ok)
    assert.equal(still.choices[0].finish_reason === 'length' || still.choices[0].finish_reason === 'stop', true, 'still serving')
  })

  test('a client that aborts mid-stream stops the backend job', async () => {
    const before = runs.length
    const ctl = new AbortController()
    const stream = await openai.chat.completions.create({ model: 'llama3', messages: hello, max_tokens: 400, seed: 3, stream: true }, { signal: ctl.signal })
    let seen = 0
    // the client ends its iteration quietly on its own abort
    for await (const _ of stream) if (++seen === 3) ctl.abort()
    assert.equal(seen, 3)
    const rec = runs[before]
    const until = Date.now() + 10_000
    while (rec.error === undefined && !rec.done && Date.now() < until) await new Promise((r) => setTimeout(r, 10))
    assert.ok(rec.signal.aborted, 'the job was aborted')
    assert.equal((rec.error as Error)?.name, 'ClientGoneError')
    assert.ok(rec.pieces < 100, `the job stopped early (${rec.pieces} pieces of up to 400)`)
    assert.equal((await openai.chat.completions.create({ model: 'llama3', messages: hello, max_tokens: 2 })).choices.length, 1)
  })

  test('at capacity a further request gets 429 at once; a chat template that fails falls back with a warning', async () => {
    const small = await startGateway({ backend, maxConcurrent: 1, chatTemplates: { [idOf('chatml')]: '{% for m in messages %}{{ m.content' } })
    try {
      assert.equal(small.warnings.length, 1)
      assert.match(small.warnings[0], /chatml@[0-9a-f]{16}: the chat template does not render/)
      const client = new OpenAI({ baseURL: `${small.url}/v1`, apiKey: 'x', maxRetries: 0 })
      const ctl = new AbortController()
      const long = await client.chat.completions.create({ model: 'llama3', messages: hello, max_tokens: 400, stream: true }, { signal: ctl.signal })
      const it = long[Symbol.asyncIterator]()
      await it.next() // the job holds the one slot
      await assert.rejects(client.chat.completions.create({ model: 'llama3', messages: hello, max_tokens: 2 }), (e) => isApiError(e, 429))
      ctl.abort()
      await it.next().catch(() => {})
    } finally {
      await small.close()
    }
  })
})

describe('gateway SSE bytes', () => {
  test('the event stream is exactly data: {json}\\n\\n events and data: [DONE]\\n\\n', async () => {
    const body = JSON.stringify({ model: 'llama3', messages: hello, max_tokens: 5, seed: 8, stream: true, stream_options: { include_usage: true } })
    const { status, headers, raw } = await new Promise<{ status: number; headers: Record<string, unknown>; raw: string }>((resolve, reject) => {
      const u = new URL(`${gw.url}/v1/chat/completions`)
      const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        let raw = ''
        res.setEncoding('utf8').on('data', (d: string) => (raw += d))
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, raw }))
      })
      req.on('error', reject)
      req.end(body)
    })
    assert.equal(status, 200)
    assert.match(String(headers['content-type']), /^text\/event-stream/)
    assert.ok(raw.endsWith('data: [DONE]\n\n'))
    const events = raw.split('\n\n')
    assert.equal(events.pop(), '', 'every event ends with a blank line')
    assert.equal(events.pop(), 'data: [DONE]')
    for (const e of events) assert.match(e, /^data: \{.*\}$/, 'one data line of JSON per event, nothing else')
    const chunks = events.map((e) => JSON.parse(e.slice('data: '.length)))
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id && typeof c.created === 'number'))
    assert.deepEqual(chunks[0].choices, [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }])
    const fin = chunks.at(-2)
    assert.equal(fin.choices[0].finish_reason, 'length')
    assert.ok(fin.tessera?.receipt, 'the finish chunk carries the receipt')
    assert.deepEqual(chunks.at(-1).choices, [])
    assert.equal(chunks.at(-1).usage.completion_tokens, 5)
  })
})

describe('gateway failures and load', () => {
  const failing = (when: 'before' | 'during'): GatewayBackend => ({
    models: () => backend.models(),
    run: (req, onText) => {
      if (when === 'before') return Promise.reject(new Error('provider unreachable\nsecond line'))
      let pieces = 0
      return backend.run(req, (d) => {
        if (++pieces === 3) throw new Error('provider died')
        onText(d)
      })
    },
  })

  test('a backend failing before the first token is a 502; after it, an error event the client raises', async () => {
    const before = await startGateway({ backend: failing('before') })
    const during = await startGateway({ backend: failing('during') })
    try {
      const a = new OpenAI({ baseURL: `${before.url}/v1`, apiKey: 'x', maxRetries: 0 })
      await assert.rejects(a.chat.completions.create({ model: 'llama3', messages: hello, max_tokens: 8, stream: true }), (e) => {
        assert.ok(e instanceof APIError && e.status === 502 && e.code === 'backend_error')
        assert.equal(e.error && (e.error as { message: string }).message, 'the backend failed: provider unreachable', 'one line')
        return true
      })
      const b = new OpenAI({ baseURL: `${during.url}/v1`, apiKey: 'x', maxRetries: 0 })
      const seen: string[] = []
      await assert.rejects(
        async () => {
          for await (const c of await b.chat.completions.create({ model: 'llama3', messages: hello, max_tokens: 30, seed: 1, stream: true })) seen.push(c.choices[0]?.delta.content ?? '')
        },
        (e) => e instanceof APIError && /provider died/.test(e.message),
      )
      assert.equal(seen.length, 3, 'the role chunk and two pieces arrived before the error')
    } finally {
      await before.close()
      await during.close()
    }
  })

  test('a job past requestTimeoutMs is aborted: 504', async () => {
    const slow = await startGateway({ backend, requestTimeoutMs: 1 })
    try {
      const c = new OpenAI({ baseURL: `${slow.url}/v1`, apiKey: 'x', maxRetries: 0 })
      await assert.rejects(c.chat.completions.create({ model: 'llama3', messages: hello, max_tokens: 400 }), (e) => e instanceof APIError && e.status === 504)
      assert.ok(runs.at(-1)!.signal.aborted)
    } finally {
      await slow.close()
    }
  })

  test("32 concurrent streams, with bad requests among them (a 10 MB body too): each stream is the engine's own answer for its seed", async () => {
    const bad = [
      fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: '{nope' }),
      fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'nope', messages: hello }) }),
      fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'llama3', messages: hello, max_tokens: -1 }) }),
      fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: 'x'.repeat(10 * 1024 * 1024) }),
    ]
    const streams = Array.from({ length: 32 }, (_, i) => streamChat({ model: i % 2 ? 'llama3' : 'chatml', messages: hello, max_tokens: 8, seed: 100 + i, stream_options: { include_usage: true } }))
    const [done, errs] = await Promise.all([Promise.all(streams), Promise.all(bad)])
    assert.deepEqual(errs.map((r) => r.status), [400, 404, 400, 413])
    done.forEach((s, i) => {
      const fin = s.chunks.at(-2)!
      const t = tesseraOf(fin)
      const direct = generate(models[i % 2 ? 0 : 1], { prompt: t.prompt_tokens, seed: BigInt(100 + i), ...t.receipt.params })
      assert.equal(s.text, direct.text, `stream ${i}`)
      assert.deepEqual(t.output_tokens, direct.outputTokens)
      assert.equal(s.chunks.at(-1)!.usage!.completion_tokens, direct.outputTokens.length)
    })
  })
})
