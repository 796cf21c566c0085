/**
 * Downloads a GGUF model over HTTP(S) (`tessera model pull`): redirects followed (a Hugging Face
 * `resolve` URL answers with a redirect to its CDN), the bytes written to `FILE.part` and renamed
 * to FILE only once the whole file is there and parses as GGUF. A `.part` left by an interrupted
 * pull (Ctrl-C, a dropped connection) is resumed with a `Range` request; a server that ignores
 * Range (200 instead of 206) gets the download restarted from byte 0. At the end the model root
 * is computed, as `tessera model info` computes it.
 */
import { once } from 'node:events'
import { createWriteStream, existsSync, renameSync, rmSync, statSync } from 'node:fs'
import { computeGgufModelRoot } from '../engine/gguf/modelRoot.js'
import { readGguf } from '../engine/gguf/read.js'
import { modelConfigFromGguf } from '../engine/model/config.js'
import { BaseError } from '../errors.js'
import { toHex } from '../trace/merkle.js'
import { openGgufSource } from './ggufFile.js'

/** The pull failed; `partial` says whether FILE.part was kept to resume from. */
export class PullError extends BaseError {
  override name = 'PullError'
}

export type PullProgress = { received: number; total?: number; resumedFrom: number }

export type PullOptions = {
  url: string
  /** Where the model goes; the download goes to `${out}.part` first. */
  out: string
  signal?: AbortSignal
  /** Called as bytes arrive (received counts the resumed part too). */
  onProgress?(p: PullProgress): void
  /** Longest wait for the server's next bytes (ms, default 60 s). */
  stallMs?: number
  /** Sent as `Authorization: Bearer` to the URL's own host (a gated Hugging Face model: HF_TOKEN); never to a redirect's other host. */
  token?: string
}

export type PullResult = { path: string; bytes: number; resumedFrom: number; modelRoot: string; name?: string }

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`

/** The part of a URL safe to print (no query string: a signed URL's token stays private). */
const shown = (url: string) => url.replace(/[?#].*$/, '')

/**
 * Downloads `url` to `out` (module comment); resolves with the model root of the file.
 *
 * @example
 *   const r = await pullModel({ url: 'https://huggingface.co/org/repo/resolve/main/model.gguf', out: 'model.gguf' })
 *   console.log(r.modelRoot)
 */
export async function pullModel(o: PullOptions): Promise<PullResult> {
  const part = `${o.out}.part`
  let have = existsSync(part) ? statSync(part).size : 0
  const resumedFrom0 = have
  const stall = new AbortController()
  const signal = o.signal ? AbortSignal.any([o.signal, stall.signal]) : stall.signal
  let res: Response
  try {
    // fetch drops the authorization header when a redirect leaves the URL's origin (the CDN's URL is signed)
    const headers: Record<string, string> = { ...(have > 0 ? { range: `bytes=${have}-` } : {}), ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) }
    res = await fetch(o.url, { headers, redirect: 'follow', signal })
  } catch (e) {
    if (o.signal?.aborted) throw o.signal.reason
    throw new PullError(`cannot reach ${shown(o.url)}: ${causeOf(e)}`, { cause: e })
  }
  let total: number | undefined
  let append = false
  if (res.status === 416 && have > 0) {
    // the .part already holds every byte the server has
    await res.body?.cancel()
    total = have
  } else if (res.status === 206 && have > 0) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '')
    if (!m || Number(m[1]) !== have) {
      await res.body?.cancel()
      throw new PullError(`${shown(o.url)} answered the range from byte ${have} with ${res.headers.get('content-range') ?? 'no Content-Range'}`)
    }
    append = true
    total = m[3] === '*' ? undefined : Number(m[3])
  } else if (res.ok) {
    // a first request, or a server that ignores Range: start from byte 0
    have = 0
    const len = Number(res.headers.get('content-length'))
    total = Number.isFinite(len) && len > 0 ? len : undefined
  } else {
    await res.body?.cancel()
    throw new PullError(`${shown(o.url)}: HTTP ${res.status}${res.status === 404 ? ' (not found)' : res.status === 401 || res.status === 403 ? ' (needs access: a gated model?)' : ''}`)
  }
  const resumedFrom = append ? have : 0

  if (res.status !== 416) {
    const out = createWriteStream(part, { flags: append ? 'a' : 'w' })
    const written = new Promise<void>((ok, fail) => {
      out.once('close', ok)
      out.once('error', fail)
    })
    written.catch(() => {})
    let received = have
    let timer: NodeJS.Timeout | undefined
    const arm = () => {
      clearTimeout(timer)
      timer = setTimeout(() => stall.abort(new PullError(`${shown(o.url)} sent nothing for ${(o.stallMs ?? 60_000) / 1000} s`)), o.stallMs ?? 60_000)
    }
    try {
      arm()
      o.onProgress?.({ received, total, resumedFrom })
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        arm()
        received += chunk.byteLength
        if (!out.write(chunk)) await once(out, 'drain')
        o.onProgress?.({ received, total, resumedFrom })
      }
      out.end()
      await written
    } catch (e) {
      out.destroy()
      await written.catch(() => {})
      if (o.signal?.aborted) throw o.signal.reason
      if (stall.signal.aborted) throw stall.signal.reason
      const code = (e as NodeJS.ErrnoException).code
      if (code === 'ENOSPC') throw new PullError(`the disk is full writing ${part} (${mb(received)} written; free space and pull again to resume)`, { cause: e })
      throw new PullError(`the download of ${shown(o.url)} broke off at ${mb(received)}: ${causeOf(e)} (pull again to resume)`, { cause: e })
    } finally {
      clearTimeout(timer)
    }
    if (total !== undefined && received !== total) throw new PullError(`the download of ${shown(o.url)} ended at ${mb(received)} of ${mb(total)} (pull again to resume)`)
  }

  // ---- check it is a GGUF model before it takes the final name
  let modelRoot: string
  let name: string | undefined
  const src = openGgufSource(part)
  try {
    const gguf = readGguf(src)
    const config = modelConfigFromGguf(gguf.metadata, gguf.tensors)
    modelRoot = `0x${toHex(computeGgufModelRoot(src, gguf, config).modelRoot)}`
    const n = gguf.metadata.get('general.name')
    name = n?.type === 'string' ? n.value : undefined
  } catch (e) {
    src.close()
    rmSync(part, { force: true })
    throw new PullError(`${shown(o.url)} is not a GGUF model this engine reads: ${causeOf(e)}`, { cause: e })
  }
  src.close()
  renameSync(part, o.out)
  return { path: o.out, bytes: statSync(o.out).size, resumedFrom: resumedFrom0 > 0 ? resumedFrom : 0, modelRoot, name }
}

function causeOf(e: unknown): string {
  const c = (e as { cause?: { code?: string; message?: string } }).cause
  const m = e instanceof BaseError ? e.shortMessage : e instanceof Error ? e.message : String(e)
  return (c?.code ? `${m} (${c.code})` : m).split('\n')[0]
}
