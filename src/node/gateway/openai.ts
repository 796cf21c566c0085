/**
 * The OpenAI API's request and error shapes as the gateway accepts them
 * (https://platform.openai.com/docs/api-reference/chat, /completions): `parseChatRequest` and
 * `parseCompletionRequest` check an untrusted JSON body field by field and return what the job
 * needs, or throw a `GatewayError` naming the first bad field. Nothing is silently ignored: a
 * parameter the gateway cannot honour (tools, logprobs, n > 1, a non-zero penalty, ...) is a 400
 * naming it, and a field it does not know is too. docs/GATEWAY.md lists what is supported.
 */
import { BaseError } from '../../errors.js'

/** One HTTP error in OpenAI's shape: `{error: {message, type, param, code}}` with `status`. */
export class GatewayError extends BaseError {
  override name = 'GatewayError'
  readonly status: number
  readonly type: string
  readonly param: string | null
  readonly code: string | null
  constructor(status: number, message: string, o: { type?: string; param?: string | null; code?: string | null; cause?: unknown } = {}) {
    super(message, { cause: o.cause, docs: 'docs/GATEWAY.md' })
    this.status = status
    this.type = o.type ?? (status >= 500 ? 'server_error' : 'invalid_request_error')
    this.param = o.param ?? null
    this.code = o.code ?? null
  }
  /** The JSON body OpenAI's clients parse. */
  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.shortMessage, type: this.type, param: this.param, code: this.code } }
  }
}

/** A 400 naming the parameter. */
export function badParam(param: string, message: string, code: string | null = 'invalid_value'): GatewayError {
  return new GatewayError(400, message, { param, code })
}

export type ChatMessage = { role: string; content: string; name?: string }

/** The sampling knobs a request may set; absent ones take the gateway's defaults (docs/GATEWAY.md). */
export type RequestSampling = { temperature?: number; topP?: number; topK?: number; minP?: number; repeatPenalty?: number; repeatLastN?: number }

type Common = {
  model: string
  stream: boolean
  includeUsage: boolean
  /** max_completion_tokens or max_tokens; absent: the rest of the context. */
  maxTokens?: number
  /** Absent: the gateway draws a fresh seed and reports it. */
  seed?: bigint
  stop: string[]
  sampling: RequestSampling
}
export type ChatRequest = Common & { kind: 'chat'; messages: ChatMessage[] }
/** `prompt` is a text, or token ids given directly. */
export type CompletionRequest = Common & { kind: 'completion'; prompt: string | number[] }

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const ROLES = new Set(['system', 'developer', 'user', 'assistant'])
/** OpenAI allows up to 4 stop sequences. */
const MAX_STOP = 4

/**
 * Fields both endpoints accept, with a check. A check returns nothing when the value is fine
 * (`null` always is: absent). Parameters that would change the answer and that the engine cannot
 * honour accept only their neutral value.
 */
type Check = (v: unknown, name: string) => void
const neutral = (ok: (v: unknown) => boolean, what: string): Check => (v, name) => {
  if (!ok(v)) throw badParam(name, `${name} is not supported by this gateway (only ${what}); see docs/GATEWAY.md`, 'unsupported_parameter')
}
const anyString: Check = (v, name) => {
  if (typeof v !== 'string') throw badParam(name, `${name} must be a string`)
}
const anyObject: Check = (v, name) => {
  if (!isObj(v)) throw badParam(name, `${name} must be an object`)
}
const IGNORABLE: Record<string, Check> = {
  user: anyString,
  metadata: anyObject,
  frequency_penalty: neutral((v) => v === 0, '0'),
  presence_penalty: neutral((v) => v === 0, '0'),
  logit_bias: neutral((v) => isObj(v) && Object.keys(v).length === 0, 'an empty map'),
  n: neutral((v) => v === 1, 'n = 1: one choice per request'),
}
const CHAT_ONLY: Record<string, Check> = {
  logprobs: neutral((v) => v === false, 'false'),
  top_logprobs: neutral(() => false, 'absent'),
  tools: neutral((v) => Array.isArray(v) && v.length === 0, 'an empty list'),
  tool_choice: neutral((v) => v === 'none', '"none"'),
  parallel_tool_calls: neutral((v) => typeof v === 'boolean', 'a boolean, without tools'),
  functions: neutral(() => false, 'absent'),
  function_call: neutral((v) => v === 'none', '"none"'),
  response_format: neutral((v) => isObj(v) && v.type === 'text' && Object.keys(v).length === 1, '{"type": "text"}'),
  store: neutral((v) => v === false, 'false'),
  modalities: neutral((v) => Array.isArray(v) && v.length === 1 && v[0] === 'text', '["text"]'),
}
const COMPLETION_ONLY: Record<string, Check> = {
  logprobs: neutral((v) => v === 0, '0 or null'),
  echo: neutral((v) => v === false, 'false'),
  best_of: neutral((v) => v === 1, '1'),
  suffix: neutral(() => false, 'null'),
}
const HANDLED = new Set([
  'model', 'stream', 'stream_options', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'seed', 'stop',
  'top_k', 'min_p', 'repeat_penalty', 'repeat_last_n',
])

function num(b: Record<string, unknown>, name: string, lo: number, hi: number, o: { integer?: boolean; openLo?: boolean } = {}): number | undefined {
  const v = b[name]
  if (v === undefined || v === null) return undefined
  const inRange = typeof v === 'number' && Number.isFinite(v) && (o.openLo ? v > lo : v >= lo) && v <= hi && (!o.integer || Number.isInteger(v))
  if (!inRange) {
    const what = o.integer ? 'an integer' : 'a number'
    throw badParam(name, `${name} must be ${what} in ${o.openLo ? '(' : '['}${lo}, ${hi === Number.MAX_SAFE_INTEGER ? 'inf)' : `${hi}]`}, got ${JSON.stringify(v)?.slice(0, 40)}`)
  }
  return v
}

function parseCommon(b: unknown, only: Record<string, Check>): Common & { body: Record<string, unknown> } {
  if (!isObj(b)) throw new GatewayError(400, 'the request body must be a JSON object', { code: 'invalid_json' })
  for (const [k, v] of Object.entries(b)) {
    if (HANDLED.has(k) || k === 'messages' || k === 'prompt') continue
    const check = only[k] ?? IGNORABLE[k]
    if (!check) throw badParam(k, `unrecognized request argument supplied: ${k}`, 'unknown_parameter')
    if (v !== null && v !== undefined) check(v, k)
  }
  if (typeof b.model !== 'string' || b.model === '') throw badParam('model', 'you must provide a model parameter', 'missing_required_parameter')
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== 'boolean') throw badParam('stream', 'stream must be a boolean')
  const stream = b.stream === true
  let includeUsage = false
  const so = b.stream_options
  if (so !== undefined && so !== null) {
    if (!stream) throw badParam('stream_options', 'stream_options is only allowed when stream is true')
    if (!isObj(so)) throw badParam('stream_options', 'stream_options must be an object')
    for (const k of Object.keys(so)) if (k !== 'include_usage') throw badParam(`stream_options.${k}`, `unrecognized stream option: ${k}`, 'unknown_parameter')
    if (so.include_usage !== undefined && so.include_usage !== null && typeof so.include_usage !== 'boolean') throw badParam('stream_options.include_usage', 'stream_options.include_usage must be a boolean')
    includeUsage = so.include_usage === true
  }
  const mt = num(b, 'max_tokens', 1, Number.MAX_SAFE_INTEGER, { integer: true })
  const mct = num(b, 'max_completion_tokens', 1, Number.MAX_SAFE_INTEGER, { integer: true })
  if (mt !== undefined && mct !== undefined && mt !== mct) throw badParam('max_tokens', 'max_tokens and max_completion_tokens differ: give one of them')
  const seed = num(b, 'seed', 0, Number.MAX_SAFE_INTEGER, { integer: true })
  let stop: string[] = []
  if (typeof b.stop === 'string') stop = [b.stop]
  else if (Array.isArray(b.stop)) stop = b.stop as string[]
  else if (b.stop !== undefined && b.stop !== null) throw badParam('stop', 'stop must be a string or a list of strings')
  if (stop.length > MAX_STOP) throw badParam('stop', `stop takes at most ${MAX_STOP} sequences, got ${stop.length}`)
  if (!stop.every((s) => typeof s === 'string' && s.length > 0 && s.length <= 256)) throw badParam('stop', 'each stop sequence must be a non-empty string of at most 256 characters')
  const sampling: RequestSampling = {
    temperature: num(b, 'temperature', 0, 2),
    topP: num(b, 'top_p', 0, 1, { openLo: true }),
    topK: num(b, 'top_k', 0, 1 << 20, { integer: true }),
    minP: num(b, 'min_p', 0, 1),
    repeatPenalty: num(b, 'repeat_penalty', 0, 100, { openLo: true }),
    repeatLastN: num(b, 'repeat_last_n', 0, 1 << 20, { integer: true }),
  }
  if (sampling.minP === 1) throw badParam('min_p', 'min_p must be below 1')
  return { body: b, model: b.model, stream, includeUsage, maxTokens: mct ?? mt, seed: seed === undefined ? undefined : BigInt(seed), stop, sampling }
}

function messageContent(v: unknown, at: string): string {
  if (typeof v === 'string') return v
  if (Array.isArray(v)) {
    return v
      .map((p, i) => {
        if (!isObj(p) || p.type !== 'text' || typeof p.text !== 'string') throw badParam(`${at}[${i}]`, `${at}[${i}]: only text parts are supported`, 'unsupported_content')
        return p.text
      })
      .join('')
  }
  throw badParam(at, `${at} must be a string or a list of text parts`)
}

/** Checks a `POST /v1/chat/completions` body. */
export function parseChatRequest(body: unknown): ChatRequest {
  const c = parseCommon(body, CHAT_ONLY)
  const raw = c.body.messages
  if (!Array.isArray(raw) || raw.length === 0) throw badParam('messages', 'messages must be a non-empty list', 'missing_required_parameter')
  const messages = raw.map((m, i): ChatMessage => {
    const at = `messages[${i}]`
    if (!isObj(m)) throw badParam(at, `${at} must be an object`)
    for (const k of Object.keys(m)) {
      if (k !== 'role' && k !== 'content' && k !== 'name') throw badParam(`${at}.${k}`, `${at}.${k} is not supported by this gateway`, 'unsupported_parameter')
    }
    if (typeof m.role !== 'string' || !ROLES.has(m.role)) throw badParam(`${at}.role`, `${at}.role must be one of ${[...ROLES].join(', ')}`)
    if (m.name !== undefined && typeof m.name !== 'string') throw badParam(`${at}.name`, `${at}.name must be a string`)
    return { role: m.role, content: messageContent(m.content, `${at}.content`), ...(typeof m.name === 'string' ? { name: m.name } : {}) }
  })
  const { body: _b, ...rest } = c
  return { ...rest, kind: 'chat', messages }
}

/** Checks a `POST /v1/completions` body: `prompt` is a text, a list of one text, or a list of token ids. */
export function parseCompletionRequest(body: unknown): CompletionRequest {
  const c = parseCommon(body, COMPLETION_ONLY)
  const p = c.body.prompt
  let prompt: string | number[]
  if (typeof p === 'string') prompt = p
  else if (Array.isArray(p) && p.length === 1 && typeof p[0] === 'string') prompt = p[0]
  else if (Array.isArray(p) && p.length > 0 && p.every((t) => Number.isInteger(t) && t >= 0)) prompt = p as number[]
  else if (Array.isArray(p) && p.length > 1 && p.every((t) => typeof t === 'string' || Array.isArray(t))) {
    throw badParam('prompt', 'one prompt per request: a list of several prompts is not supported', 'unsupported_parameter')
  } else throw badParam('prompt', 'prompt must be a string, a list of one string, or a list of token ids', 'missing_required_parameter')
  const { body: _b, ...rest } = c
  return { ...rest, kind: 'completion', prompt }
}
