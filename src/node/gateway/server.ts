/**
 * The gateway: an OpenAI-compatible HTTP API (node:http, 127.0.0.1 by default) in front of a
 * `GatewayBackend` (./backend.ts). Routes: `GET /v1/models`, `GET /v1/models/{id}`,
 * `POST /v1/chat/completions`, `POST /v1/completions` (streamed as OpenAI streams, ./sse.ts, or
 * not), `GET /v1/receipts/{id}` (the job file of a recent job, for `tessera verify`) and
 * `GET /health`. docs/GATEWAY.md is the user's reference.
 *
 * Every answer carries its receipt: a `tessera` object in the JSON (in the chunk with
 * `finish_reason` when streamed) and, when not streamed, the headers `x-tessera-receipt-digest`,
 * `x-tessera-provider` and `x-tessera-job`. Errors are OpenAI's `{error: {message, type, param,
 * code}}` with the status that fits; before the first streamed token an error is an HTTP error,
 * after it an error event in the stream. A client that disconnects aborts its job; so does
 * `requestTimeoutMs`. At `maxConcurrent` jobs running, a further request gets a 429 at once.
 *
 * With `apiKeys`, every route but `GET /health` needs `Authorization: Bearer KEY` (401 in OpenAI's
 * shape otherwise); with `ratePerMinute`, each key (each client address when there are no keys)
 * may start that many completions a minute (a token bucket: 429 with `Retry-After` beyond).
 * `GET /v1/receipts/{id}` returns the job file with an `audit` object when `auditStatus` is given
 * (the network gateway reads it from the chain's Audits events), and finds older jobs through
 * `findReceipt` (the node's store).
 *
 * @example
 *   const gw = await startGateway({ backend: localBackend([{ model }], signer) })
 *   const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused' })
 *   await gw.close()
 */
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { ARITH_VERSION, ENGINE_VERSION } from '../../engine/version.js'
import { BaseError, InvalidParameterError } from '../../errors.js'
import { jobParams } from '../../runtime/model.js'
import type { JobFile } from '../transcript.js'
import { type GatewayBackend, type GatewayModel, type GatewayResult, UnknownModelError } from './backend.js'
import { type ChatFormat, chatPrompt, prepareChatTemplate } from './chatTemplate.js'
import { type ChatRequest, type CompletionRequest, GatewayError, parseChatRequest, parseCompletionRequest } from './openai.js'
import { type SseStream, startSse } from './sse.js'

export type GatewayOptions = {
  backend: GatewayBackend
  /** Default 127.0.0.1: the gateway has no authentication of its own. */
  host?: string
  /** Default 0: a free port (the returned `url` names it). */
  port?: number
  /** Jobs running at once; beyond, 429 (default 16). */
  maxConcurrent?: number
  /** Largest request body; beyond, 413 (default 1 MiB). */
  maxBodyBytes?: number
  /** A job running longer is aborted: 504, or an error event once streaming (default 300 s). */
  requestTimeoutMs?: number
  /** Chat templates that replace a model's own, by model id (`--chat-template`). */
  chatTemplates?: Record<string, string>
  /** Job files kept for `GET /v1/receipts/{id}` (the most recent; default 1000). */
  receiptsKept?: number
  /** Bearer keys a client must present (none: no authentication). */
  apiKeys?: readonly string[]
  /** Completions each key (or client address, without keys) may start per minute (none: no limit). */
  ratePerMinute?: number
  /** A job file the gateway no longer holds in memory (the node's store), by job id. */
  findReceipt?(jobId: string): Promise<JobFile | undefined>
  /** The audit status of a job (drawn? by whom? verdict), added as `audit` to `GET /v1/receipts/{id}`. */
  auditStatus?(jobId: string, file: JobFile): Promise<unknown>
}

export type Gateway = {
  url: string
  /** One line per model whose chat template failed its test render (it uses the fallback). */
  warnings: string[]
  close(): Promise<void>
}

const FINGERPRINT = `${ENGINE_VERSION}+${ARITH_VERSION}`

/** Why a job was aborted: the client went away, or the gateway's time limit. */
class ClientGoneError extends BaseError {
  override name = 'ClientGoneError'
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers })
  res.end(text)
}

function sendError(res: ServerResponse, e: GatewayError): void {
  if (res.headersSent || res.destroyed) return
  json(res, e.status, e.body(), e.status === 413 ? { connection: 'close' } : {})
}

/** The body, at most `max` bytes (413 beyond, announced or sent). */
function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const tooBig = () => new GatewayError(413, `the request body exceeds ${max} bytes`, { code: 'request_too_large' })
  const announced = Number(req.headers['content-length'])
  if (announced > max) return Promise.reject(tooBig())
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    let size = 0
    const onData = (b: Buffer) => {
      size += b.length
      if (size > max) {
        req.off('data', onData)
        req.resume() // discard the rest while the 413 goes out
        reject(tooBig())
      } else parts.push(b)
    }
    req.on('data', onData)
    req.on('end', () => resolve(Buffer.concat(parts)))
    req.on('error', reject)
  })
}

/** A fresh seed for a request that gave none: 48 random bits, so it round-trips as a JSON number. */
function freshSeed(): bigint {
  return BigInt(`0x${randomBytes(6).toString('hex')}`)
}

const finishReason = (r: GatewayResult['stopReason']) => (r === 'length' ? 'length' : 'stop')

const keyHash = (k: string) => createHash('sha256').update(k).digest('hex')

/**
 * Per-caller token buckets: `perMinute` requests a minute, refilled continuously, a burst of up to
 * `perMinute`. `take` returns 0 when a request may go, else the seconds until one may.
 */
export function rateLimiter(perMinute: number, now: () => number = Date.now): { take(caller: string): number } {
  const buckets = new Map<string, { tokens: number; at: number }>()
  const perMs = perMinute / 60_000
  return {
    take(caller) {
      const t = now()
      const b = buckets.get(caller) ?? { tokens: perMinute, at: t }
      b.tokens = Math.min(perMinute, b.tokens + (t - b.at) * perMs)
      b.at = t
      buckets.set(caller, b)
      if (buckets.size > 10_000) for (const [k, v] of buckets) if (v.tokens >= perMinute && k !== caller) buckets.delete(k)
      if (b.tokens >= 1) {
        b.tokens -= 1
        return 0
      }
      return Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000))
    },
  }
}

/**
 * Starts the gateway; resolves once it listens.
 */
export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const { backend } = opts
  const host = opts.host ?? '127.0.0.1'
  const maxConcurrent = opts.maxConcurrent ?? 16
  const maxBody = opts.maxBodyBytes ?? 1 << 20
  const timeoutMs = opts.requestTimeoutMs ?? 300_000
  const receiptsKept = opts.receiptsKept ?? 1000
  const formats = new Map<string, ChatFormat>()
  const warnings: string[] = []
  for (const m of backend.models()) {
    const f = prepareChatTemplate(m, opts.chatTemplates?.[m.id])
    if (f.kind === 'fallback' && f.warning) warnings.push(f.warning)
    formats.set(m.id, f)
  }
  const receipts = new Map<string, JobFile>()
  const jobs = new Set<AbortController>()
  let active = 0
  const keys = new Set((opts.apiKeys ?? []).map(keyHash))
  if (opts.ratePerMinute !== undefined && !(opts.ratePerMinute > 0)) throw new InvalidParameterError('ratePerMinute', opts.ratePerMinute, 'a positive number of requests a minute')
  const limiter = opts.ratePerMinute ? rateLimiter(opts.ratePerMinute) : undefined

  /** The caller (its key's hash, or its address without keys); 401 for a missing or unknown key. */
  function callerOf(req: IncomingMessage): string {
    if (keys.size === 0) return req.socket.remoteAddress ?? '?'
    const auth = req.headers.authorization ?? ''
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth)
    if (!m) throw new GatewayError(401, 'no API key given: send the header "Authorization: Bearer YOUR_KEY"', { code: 'invalid_api_key' })
    const h = keyHash(m[1])
    if (!keys.has(h)) throw new GatewayError(401, 'incorrect API key provided', { code: 'invalid_api_key' })
    return h
  }

  function findModel(name: string): GatewayModel {
    const all = backend.models()
    const hex = name.toLowerCase().replace(/^0x/, '')
    const byName = all.filter((m) => m.name === name)
    const m = all.find((x) => x.id === name) ?? all.find((x) => x.root.slice(2) === hex) ?? (byName.length === 1 ? byName[0] : undefined)
    if (!m) throw new GatewayError(404, `the model ${JSON.stringify(name)} does not exist here (GET /v1/models lists them)`, { param: 'model', code: 'model_not_found' })
    return m
  }

  const modelObject = (m: GatewayModel) => ({
    id: m.id, object: 'model', created: m.created, owned_by: m.ownedBy,
    tessera: { name: m.name, root: m.root, context_length: m.contextLength, chat_format: formats.get(m.id)?.kind ?? 'fallback' },
  })

  async function complete(req: IncomingMessage, res: ServerResponse, kind: 'chat' | 'completion', caller: string): Promise<void> {
    const wait = limiter?.take(caller) ?? 0
    if (wait > 0) {
      res.setHeader('retry-after', String(wait))
      throw new GatewayError(429, `rate limit reached: ${opts.ratePerMinute} requests a minute for this key; retry in ${wait} s`, { type: 'rate_limit_error', code: 'rate_limit_exceeded' })
    }
    const raw = await readBody(req, maxBody)
    let body: unknown
    try {
      body = JSON.parse(raw.toString('utf8'))
    } catch {
      throw new GatewayError(400, 'the request body is not valid JSON', { code: 'invalid_json' })
    }
    const r: ChatRequest | CompletionRequest = kind === 'chat' ? parseChatRequest(body) : parseCompletionRequest(body)
    const model = findModel(r.model)
    let promptTokens: number[]
    if (r.kind === 'chat') promptTokens = chatPrompt(model, formats.get(model.id) ?? { kind: 'fallback' }, r.messages).tokens
    else if (typeof r.prompt === 'string') promptTokens = model.tokenizer.encode(r.prompt, { parseSpecial: true })
    else {
      promptTokens = r.prompt
      const bad = promptTokens.find((t) => t >= model.tokenizer.vocabSize)
      if (bad !== undefined) throw new GatewayError(400, `token id ${bad} is not below the vocabulary size ${model.tokenizer.vocabSize}`, { param: 'prompt' })
    }
    const ctx = model.contextLength
    if (promptTokens.length === 0) throw new GatewayError(400, 'the prompt is empty (no tokens)', { param: kind === 'chat' ? 'messages' : 'prompt' })
    const promptTooLong = promptTokens.length > ctx - 1
    if (promptTooLong || (r.maxTokens !== undefined && promptTokens.length + r.maxTokens > ctx)) {
      const asked = r.maxTokens === undefined ? '' : ` plus ${r.maxTokens} completion tokens`
      throw new GatewayError(400, `this model's maximum context length is ${ctx} tokens; the request has ${promptTokens.length} prompt tokens${asked}`, {
        param: promptTooLong ? (kind === 'chat' ? 'messages' : 'prompt') : 'max_tokens', code: 'context_length_exceeded',
      })
    }
    const s = r.sampling
    const params = jobParams({
      temperature: s.temperature ?? 1, topP: s.topP ?? 1, topK: s.topK, minP: s.minP, repeatPenalty: s.repeatPenalty, repeatLastN: s.repeatLastN,
      maxTokens: r.maxTokens ?? ctx - promptTokens.length, stop: r.stop,
    })
    const seed = r.seed ?? freshSeed()

    if (active >= maxConcurrent) throw new GatewayError(429, `the gateway is at capacity (${maxConcurrent} jobs running); retry shortly`, { type: 'rate_limit_error', code: 'rate_limit_exceeded' })
    active++
    const ctl = new AbortController()
    jobs.add(ctl)
    const timer = setTimeout(() => ctl.abort(new GatewayError(504, `the job ran past the gateway's limit of ${timeoutMs} ms`, { code: 'timeout' })), timeoutMs)
    res.on('close', () => {
      if (!res.writableFinished) ctl.abort(new ClientGoneError('the client closed the connection'))
    })
    try {
      await answer(res, kind, r, model, promptTokens, params, seed, ctl.signal)
    } finally {
      clearTimeout(timer)
      jobs.delete(ctl)
      active--
    }
  }

  async function answer(
    res: ServerResponse, kind: 'chat' | 'completion', r: ChatRequest | CompletionRequest, model: GatewayModel, promptTokens: number[],
    params: ReturnType<typeof jobParams>, seed: bigint, signal: AbortSignal,
  ): Promise<void> {
    const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomBytes(12).toString('hex')}`
    const created = Math.floor(Date.now() / 1000)
    const object = kind === 'chat' ? 'chat.completion' : 'text_completion'
    const head = { id, object: r.stream && kind === 'chat' ? 'chat.completion.chunk' : object, created, model: model.id, system_fingerprint: FINGERPRINT }
    const usageNull = r.stream && r.includeUsage ? { usage: null } : {}
    const choice = (delta: Record<string, unknown> | string, finish: string | null) =>
      kind === 'chat' ? { index: 0, delta, logprobs: null, finish_reason: finish } : { text: delta, index: 0, logprobs: null, finish_reason: finish }

    let sse: SseStream | undefined
    const open = (): SseStream => {
      if (sse) return sse
      sse = startSse(res)
      if (kind === 'chat') sse.send({ ...head, choices: [choice({ role: 'assistant', content: '' }, null)], ...usageNull })
      return sse
    }
    const onText = r.stream ? (d: string) => open().send({ ...head, choices: [choice(kind === 'chat' ? { content: d } : d, null)], ...usageNull }) : () => {}

    let result: GatewayResult
    try {
      result = await backend.run({ model, promptTokens, params, seed, signal }, onText)
    } catch (e) {
      if (signal.aborted && signal.reason instanceof ClientGoneError) return
      const err = toGatewayError(signal.aborted ? signal.reason : e)
      if (sse) sse.fail(err.body())
      else throw err
      return
    }
    const b = result.bundle
    const jobId = b.requestDigest
    if (jobId && b.jobFile) {
      receipts.set(jobId, b.jobFile)
      for (const k of receipts.keys()) {
        if (receipts.size <= receiptsKept) break
        receipts.delete(k)
      }
    }
    const tessera = {
      job_id: jobId ?? null,
      seed: seed.toString(),
      provider: b.provider ?? null,
      request_digest: b.requestDigest ?? null,
      receipt_digest: b.receiptDigest ?? null,
      signature: b.receiptSignature ?? null,
      receipt: b.receipt,
      signed: b.jobFile?.signed ?? null,
      prompt_tokens: promptTokens,
      output_tokens: result.outputTokens,
      receipt_url: jobId && b.jobFile ? `/v1/receipts/${jobId}` : null,
    }
    const usage = { prompt_tokens: result.usage.promptTokens, completion_tokens: result.usage.completionTokens, total_tokens: result.usage.promptTokens + result.usage.completionTokens }
    const finish = finishReason(result.stopReason)
    if (r.stream) {
      const s = open()
      s.send({ ...head, choices: [choice(kind === 'chat' ? {} : '', finish)], ...usageNull, tessera })
      if (r.includeUsage) s.send({ ...head, choices: [], usage })
      s.done()
      return
    }
    const headers: Record<string, string> = {}
    if (b.receiptDigest) headers['x-tessera-receipt-digest'] = b.receiptDigest
    if (b.provider) headers['x-tessera-provider'] = b.provider
    if (jobId) headers['x-tessera-job'] = jobId
    const choices =
      kind === 'chat'
        ? [{ index: 0, message: { role: 'assistant', content: result.text, refusal: null }, logprobs: null, finish_reason: finish }]
        : [{ text: result.text, index: 0, logprobs: null, finish_reason: finish }]
    json(res, 200, { ...head, choices, usage, tessera }, headers)
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]
    const method = req.method ?? 'GET'
    const route = (allowed: string) => {
      if (method === allowed) return true
      res.setHeader('allow', allowed)
      throw new GatewayError(405, `${method} is not allowed on ${path} (use ${allowed})`, { code: 'method_not_allowed' })
    }
    if (path === '/health' && route('GET')) return json(res, 200, { status: 'ok', models: backend.models().length, active, max_concurrent: maxConcurrent })
    const caller = callerOf(req)
    if (path === '/v1/chat/completions' && route('POST')) return complete(req, res, 'chat', caller)
    if (path === '/v1/completions' && route('POST')) return complete(req, res, 'completion', caller)
    if (path === '/v1/models' && route('GET')) return json(res, 200, { object: 'list', data: backend.models().map(modelObject) })
    if (path.startsWith('/v1/models/') && route('GET')) return json(res, 200, modelObject(findModel(decodeURIComponent(path.slice('/v1/models/'.length)))))
    if (path.startsWith('/v1/receipts/') && route('GET')) {
      const id = decodeURIComponent(path.slice('/v1/receipts/'.length)).toLowerCase()
      const file = receipts.get(id) ?? (/^0x[0-9a-f]{64}$/.test(id) ? await opts.findReceipt?.(id) : undefined)
      if (!file) throw new GatewayError(404, `no job ${JSON.stringify(id.slice(0, 80))} here (this gateway keeps its last ${receiptsKept} job files)`, { code: 'receipt_not_found' })
      if (!opts.auditStatus) return json(res, 200, file)
      let audit: unknown
      try {
        audit = await opts.auditStatus(id, file)
      } catch (e) {
        audit = { error: e instanceof BaseError ? e.shortMessage : e instanceof Error ? e.message.split('\n')[0] : String(e) }
      }
      return json(res, 200, { ...file, audit })
    }
    throw new GatewayError(404, `unknown route ${method} ${path}`, { code: 'unknown_url' })
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      const err = toGatewayError(e)
      sendError(res, err)
      // an oversized body is not read to its end: close the connection once the 413 is out
      if (err.status === 413) res.once('finish', () => setTimeout(() => req.socket.destroy(), 1000).unref())
    })
  })
  server.headersTimeout = 30_000
  server.requestTimeout = 60_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, host, () => resolve())
  })
  const addr = server.address() as AddressInfo
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`
  return {
    url,
    warnings,
    close: async () => {
      for (const c of jobs) c.abort(new ClientGoneError('the gateway is closing'))
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
    },
  }
}

/** Any failure as an OpenAI error: ours as they are, a bad engine parameter a 400, a model the backend lost a 404, the rest a 502 naming the backend's one line. */
function toGatewayError(e: unknown): GatewayError {
  if (e instanceof GatewayError) return e
  if (e instanceof UnknownModelError) return new GatewayError(404, e.shortMessage, { param: 'model', code: 'model_not_found', cause: e })
  if (e instanceof InvalidParameterError) return new GatewayError(400, e.shortMessage + (e.details ? `: ${e.details}` : ''), { param: e.param, cause: e })
  const line = e instanceof BaseError ? e.shortMessage : e instanceof Error ? e.message.split('\n')[0] : String(e)
  return new GatewayError(502, `the backend failed: ${line}`, { type: 'server_error', code: 'backend_error', cause: e })
}
