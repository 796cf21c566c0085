/**
 * Framing (docs/NETWORK.md "Framing"): every Tessera protocol speaks unsigned-varint length-prefixed
 * UTF-8 JSON frames over one libp2p 3 stream. A frame above `maxBytes` (announced by the remote's
 * length prefix, or about to be sent) aborts the stream with `FrameTooLargeError`: the stream dies,
 * the connection and the node survive. Every `recv` has a timeout; `send` waits for the stream to
 * drain (backpressure); bigints travel as decimal strings and byte strings as 0x-hex.
 *
 * libp2p 3 streams are event emitters (`message`, `end`, `close`), not the async-iterable duplexes
 * of libp2p 2, so the reader below is a small event-driven parser with a bounded frame queue: when
 * the consumer falls behind it pauses the stream, which makes the muxer stop the remote.
 */
import type { Stream } from '@libp2p/interface'
import { BaseError } from '../errors.js'
import { toHex } from '../trace/merkle.js'

/** Largest frame payload, in bytes, unless a protocol asks for another bound. */
export const MAX_FRAME = 1 << 20
/** How long `recv` waits for a frame when the caller names no timeout. */
export const DEFAULT_RECV_TIMEOUT_MS = 30_000
/** How long `send` waits for a full stream to drain before it gives up and aborts it. */
export const DEFAULT_SEND_TIMEOUT_MS = 30_000
/** Parsed frames held for a slow consumer before the stream is paused. */
const QUEUE_HIGH_WATER = 16
/** A 53-bit length needs at most 8 varint bytes; more is garbage. */
const MAX_VARINT_BYTES = 8

export type FrameConn = {
  readonly remotePeer: string
  /** JSON; waits for the stream to drain (backpressure). */
  send(msg: unknown): Promise<void>
  /**
   * Several messages in one write (one muxer frame, one encryption, one syscall), each still its
   * own frame on the wire, so the remote cannot tell it from `send` called once per message.
   */
  sendMany(msgs: readonly unknown[]): Promise<void>
  /** Open both ways, nothing received and unread, no partial frame: the stream could carry another exchange. */
  idle(): boolean
  /**
   * Set on streams from `Host.dial`: hand the stream back for a later dial of the same peer and
   * protocol (only for protocols that run one exchange after another on a stream); the caller
   * must not use it afterwards. A stream that is not `idle()` is closed instead. `after`: the
   * caller's last write, still to come (the job protocol's acknowledgement): a dial that takes the
   * stream waits for it, and a `false` (or a stream no longer idle then) closes it instead.
   */
  release?(after?: Promise<boolean>): void
  /** True when `Host.dial` handed out a released stream instead of opening one. */
  readonly reused?: boolean
  /** The protocol the stream was opened on, where the dialler recorded it (the job protocol's `dialJob`). */
  readonly protocol?: string
  /** The next message; `undefined` when the remote closed cleanly. */
  recv(timeoutMs?: number): Promise<unknown | undefined>
  /** Close the writable end once everything queued is sent (the remote's `recv` then yields `undefined`). */
  close(): Promise<void>
  /** Reset the stream now; pending and later calls fail with `err`. */
  abort(err: Error): void
}

export type FrameConnOptions = { maxBytes?: number; remotePeer: string; sendTimeoutMs?: number }

/** The part of a libp2p 3 `Stream` that framing uses (a real `Stream` satisfies it; so does `framePair`'s). */
export type FrameStream = Pick<Stream, 'send' | 'onDrain' | 'close' | 'abort' | 'pause' | 'resume' | 'writableNeedsDrain' | 'readableEnded' | 'addEventListener' | 'status'>

/** A frame bigger than the bound, announced by the remote or about to be sent. */
export class FrameTooLargeError extends BaseError {
  override name = 'FrameTooLargeError'
  readonly size: number
  readonly maxBytes: number
  constructor(size: number, maxBytes: number) {
    super(`frame of ${size} bytes exceeds the ${maxBytes}-byte limit`)
    this.size = size
    this.maxBytes = maxBytes
  }
}

/** No frame arrived (recv) or the stream did not drain (send) in time. */
export class FrameTimeoutError extends BaseError {
  override name = 'FrameTimeoutError'
  constructor(what: 'recv' | 'send', timeoutMs: number) {
    super(`${what} timed out after ${timeoutMs} ms`)
  }
}

/**
 * A frame or message that breaks the protocol: bad UTF-8 or JSON, a truncated frame, an unknown
 * `t`, a missing field. `code` is what goes back to the remote in `{t:'error', code}`.
 */
export class ProtocolError extends BaseError {
  override name = 'ProtocolError'
  readonly code: string
  constructor(message: string, options: { code?: string; details?: string; cause?: unknown } = {}) {
    super(message, { details: options.details, cause: options.cause })
    this.code = options.code ?? 'bad-message'
  }
}

/** The stream was closed or reset before the call could complete. */
export class StreamClosedError extends BaseError {
  override name = 'StreamClosedError'
  constructor(details?: string, cause?: unknown) {
    super('stream closed', { details, cause })
  }
}

const utf8 = new TextEncoder()
const utf8Strict = new TextDecoder('utf-8', { fatal: true })

/** JSON.stringify replacer: bigints as decimal strings, bytes as 0x-hex. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Uint8Array) return `0x${toHex(value)}`
  return value
}

/** One frame's bytes: uvarint(length) then the UTF-8 JSON of `msg`. Throws `FrameTooLargeError`. */
export function encodeFrame(msg: unknown, maxBytes = MAX_FRAME): Uint8Array {
  const json = JSON.stringify(msg, jsonReplacer)
  if (json === undefined) throw new ProtocolError('message has no JSON form')
  const body = utf8.encode(json)
  if (body.length > maxBytes) throw new FrameTooLargeError(body.length, maxBytes)
  const head: number[] = []
  let n = body.length
  while (n >= 0x80) {
    head.push((n & 0x7f) | 0x80)
    n >>>= 7
  }
  head.push(n)
  const out = new Uint8Array(head.length + body.length)
  out.set(head, 0)
  out.set(body, head.length)
  return out
}

type Item = { ok: true; value: unknown } | { ok: false; error: Error }

/**
 * Wrap a libp2p stream as a `FrameConn`. Frames are parsed as they arrive; a malformed frame (bad
 * UTF-8 or JSON) fails that one `recv` with `ProtocolError` and leaves the stream usable, since the
 * length prefix still delimits the next frame; an oversized one aborts the stream.
 *
 * @example
 * const conn = frameConn(stream, { remotePeer: connection.remotePeer.toString() })
 * await conn.send({ t: 'get' })
 * const reply = await conn.recv(5_000)
 */
export function frameConn(stream: FrameStream, options: FrameConnOptions): FrameConn {
  const maxBytes = options.maxBytes ?? MAX_FRAME
  const sendTimeoutMs = options.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS
  const chunks: Uint8Array[] = []
  let buffered = 0
  let expected: number | undefined // payload length once its prefix is read
  const queue: Item[] = []
  let ended = false // the remote closed its writable end and everything it sent is parsed
  let failure: Error | undefined // the stream was aborted or reset
  let paused = false
  let waiter: (() => void) | undefined

  const wake = (): void => {
    const w = waiter
    waiter = undefined
    w?.()
  }

  const fail = (err: Error): void => {
    if (failure === undefined) failure = err
    wake()
  }

  /** Read the varint prefix across chunks without consuming; `undefined` while incomplete. */
  const peekLength = (): { length: number; headBytes: number } | undefined => {
    let value = 0
    let scale = 1
    let i = 0
    for (const chunk of chunks) {
      for (const byte of chunk) {
        value += (byte & 0x7f) * scale
        i++
        if ((byte & 0x80) === 0) return { length: value, headBytes: i }
        if (i >= MAX_VARINT_BYTES || value > maxBytes) return { length: Math.max(value, maxBytes + 1), headBytes: i }
        scale *= 128
      }
    }
    return undefined
  }

  const take = (n: number): Uint8Array => {
    const out = new Uint8Array(n)
    let at = 0
    while (at < n) {
      const chunk = chunks[0]
      const k = Math.min(chunk.length, n - at)
      out.set(chunk.subarray(0, k), at)
      at += k
      if (k === chunk.length) chunks.shift()
      else chunks[0] = chunk.subarray(k)
    }
    buffered -= n
    return out
  }

  const parse = (): void => {
    while (failure === undefined) {
      if (expected === undefined) {
        const head = peekLength()
        if (head === undefined) return
        if (head.length > maxBytes) {
          const err = new FrameTooLargeError(head.length, maxBytes)
          stream.abort(err)
          fail(err)
          return
        }
        take(head.headBytes)
        expected = head.length
      }
      if (buffered < expected) return
      const body = take(expected)
      expected = undefined
      try {
        queue.push({ ok: true, value: JSON.parse(utf8Strict.decode(body)) })
      } catch (cause) {
        queue.push({ ok: false, error: new ProtocolError('malformed frame', { details: 'not UTF-8 JSON', cause }) })
      }
      if (queue.length >= QUEUE_HIGH_WATER && !paused && stream.status === 'open') {
        paused = true
        stream.pause()
      }
      wake()
    }
  }

  // The stream may have been reset or finished before we were handed it (a handler that failed
  // while the dial was still negotiating): its events are gone, so read its state.
  if (stream.status === 'aborted' || stream.status === 'reset') failure = new StreamClosedError('reset before use')
  else if (stream.readableEnded) ended = true

  stream.addEventListener('message', (evt) => {
    const data = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
    if (data.length === 0) return
    chunks.push(data)
    buffered += data.length
    parse()
  })
  stream.addEventListener('end', () => {
    ended = true
    wake()
  })
  stream.addEventListener('close', (evt) => {
    if (evt.error !== undefined) fail(evt.error)
    else ended = true
    wake()
  })

  const next = (): Item | 'wait' | undefined => {
    const item = queue.shift()
    if (item !== undefined) {
      if (paused && queue.length < QUEUE_HIGH_WATER / 2 && stream.status === 'open') {
        paused = false
        try {
          stream.resume()
        } catch {
          // the readable end closed meanwhile: nothing more to resume
        }
      }
      return item
    }
    if (failure !== undefined) return { ok: false, error: failure }
    if (ended) {
      if (buffered > 0 || expected !== undefined) return { ok: false, error: new ProtocolError('truncated frame', { details: 'the remote closed mid-frame' }) }
      return undefined
    }
    return 'wait'
  }

  return {
    remotePeer: options.remotePeer,

    send(msg) {
      return sendBytes([msg])
    },

    sendMany(msgs) {
      return sendBytes(msgs)
    },

    idle() {
      return failure === undefined && !ended && stream.status === 'open' && queue.length === 0 && buffered === 0 && expected === undefined && waiter === undefined
    },

    async recv(timeoutMs = DEFAULT_RECV_TIMEOUT_MS) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const item = next()
        if (item === undefined) return undefined
        if (item !== 'wait') {
          if (item.ok) return item.value
          throw item.error
        }
        const left = deadline - Date.now()
        if (left <= 0) throw new FrameTimeoutError('recv', timeoutMs)
        if (waiter !== undefined) throw new ProtocolError('concurrent recv', { code: 'internal', details: 'one recv at a time per stream' })
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            waiter = undefined
            resolve()
          }, left)
          waiter = () => {
            clearTimeout(timer)
            resolve()
          }
        })
      }
    },

    async close() {
      if (failure !== undefined) return
      try {
        await stream.close({ signal: AbortSignal.timeout(sendTimeoutMs) })
      } catch (cause) {
        const err = new StreamClosedError('close did not complete', cause)
        stream.abort(err)
        fail(err)
      }
    },

    abort(err) {
      fail(err)
      stream.abort(err)
    },
  }

  async function sendBytes(msgs: readonly unknown[]): Promise<void> {
    if (failure !== undefined) throw failure
    let frame: Uint8Array
    try {
      const frames = msgs.map((m) => encodeFrame(m, maxBytes))
      frame = frames.length === 1 ? frames[0] : Buffer.concat(frames)
    } catch (err) {
      if (err instanceof FrameTooLargeError) {
        stream.abort(err)
        fail(err)
      }
      throw err
    }
    if (stream.writableNeedsDrain) await drain()
    let more: boolean
    try {
      more = stream.send(frame)
    } catch (cause) {
      throw failure ?? new StreamClosedError('cannot send', cause)
    }
    if (!more) await drain()
  }

  async function drain(): Promise<void> {
    try {
      await stream.onDrain({ signal: AbortSignal.timeout(sendTimeoutMs) })
    } catch (cause) {
      if (failure !== undefined) throw failure
      const err = cause instanceof Error && cause.name === 'TimeoutError' ? new FrameTimeoutError('send', sendTimeoutMs) : new StreamClosedError('while waiting to drain', cause)
      stream.abort(err)
      fail(err)
      throw err
    }
  }
}

/**
 * Two `FrameConn`s joined in memory, for unit tests of protocol logic without a transport. Writes
 * are delivered on the next microtask; close, abort and the size bound behave as on a real stream.
 */
export function framePair(options: { maxBytes?: number; a?: string; b?: string } = {}): [FrameConn, FrameConn] {
  const [sa, sb] = memoryStreamPair()
  return [frameConn(sa, { maxBytes: options.maxBytes, remotePeer: options.b ?? 'peer-b' }), frameConn(sb, { maxBytes: options.maxBytes, remotePeer: options.a ?? 'peer-a' })]
}

class MemoryStream extends EventTarget {
  status: 'open' | 'closed' | 'aborted' | 'reset' = 'open'
  writableNeedsDrain = false
  readableEnded = false
  peer!: MemoryStream
  private writeClosed = false
  private remoteWriteClosed = false
  private paused = false
  private held: Uint8Array[] = []

  send(data: Uint8Array): boolean {
    if (this.writeClosed || this.status !== 'open') throw new StreamClosedError('cannot send')
    const copy = data.slice()
    queueMicrotask(() => this.peer.deliver(copy))
    return true
  }
  async onDrain(): Promise<void> {}
  async close(): Promise<void> {
    if (this.writeClosed || this.status !== 'open') return
    this.writeClosed = true
    queueMicrotask(() => this.peer.onRemoteCloseWrite())
    if (this.remoteWriteClosed) this.finish()
  }
  abort(err: Error): void {
    if (this.status !== 'open') return
    this.status = 'aborted'
    this.dispatchClose(err)
    const peer = this.peer
    queueMicrotask(() => {
      if (peer.status !== 'open') return
      peer.status = 'reset'
      peer.dispatchClose(new StreamClosedError('reset by the remote'))
    })
  }
  pause(): void {
    this.paused = true
  }
  resume(): void {
    this.paused = false
    for (const data of this.held.splice(0)) this.dispatch(data)
    if (this.remoteWriteClosed) this.end()
  }
  private deliver(data: Uint8Array): void {
    if (this.status !== 'open') return
    if (this.paused) this.held.push(data)
    else this.dispatch(data)
  }
  private dispatch(data: Uint8Array): void {
    this.dispatchEvent(Object.assign(new Event('message'), { data }))
  }
  private onRemoteCloseWrite(): void {
    if (this.status !== 'open') return
    this.remoteWriteClosed = true
    if (!this.paused) this.end()
    if (this.writeClosed) this.finish()
  }
  private end(): void {
    this.readableEnded = true
    this.dispatchEvent(new Event('end'))
  }
  private finish(): void {
    this.status = 'closed'
    this.dispatchClose(undefined)
  }
  private dispatchClose(error: Error | undefined): void {
    this.dispatchEvent(Object.assign(new Event('close'), { error, local: error !== undefined }))
  }
}

function memoryStreamPair(): [FrameStream, FrameStream] {
  const a = new MemoryStream()
  const b = new MemoryStream()
  a.peer = b
  b.peer = a
  return [a as unknown as FrameStream, b as unknown as FrameStream]
}
