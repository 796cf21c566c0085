/**
 * The explorer's HTTP side: one request handler, mountable on any node:http server (the node's
 * own `--explorer-port`, or beside the gateway), that serves under `/explorer` the page
 * (web/index.html and its modules), the browser libraries from node_modules (preact, htm, uPlot),
 * a JSON API read from the indexer's model (`/explorer/api/network|jobs|jobs/:id|disputes|
 * disputes/:id|economics`) and a server-sent-events stream (`/explorer/events`) that pushes each
 * indexer change. `startExplorer` runs it on its own server (127.0.0.1 unless told otherwise) with
 * the indexer polling behind it. Amounts are wei as decimal strings, times unix ms.
 */
import { existsSync, readFileSync } from 'node:fs'
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http'
import { createRequire } from 'node:module'
import { dirname, join, normalize, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Hex } from 'viem'
import { type NodeStatus, readStatus } from '../status.js'
import { verifyTranscript } from '../transcript.js'
import type { Change, Indexer } from './indexer.js'

export const EXPLORER_PATH = '/explorer'

export type ExplorerInit = {
  indexer: Indexer
  /** The node's data directory: its status.json adds peers and the offers it has seen. */
  statusDir?: string
  /** The node's stored transcript of a job (by request digest), verified on the job page. */
  transcriptOf?: (requestDigest: Hex) => Promise<unknown | undefined>
  /** SSE keep-alive comment interval (default 15 s). */
  keepAliveMs?: number
  /** Event streams open at once at most (default 64; more are refused with 503). */
  maxStreams?: number
}

export type ExplorerHandler = {
  /** Handles `req` if its path is under /explorer (returns false otherwise, leaving `res` alone). */
  handle(req: IncomingMessage, res: ServerResponse): boolean
  /** Ends every open event stream. */
  close(): void
}

const HERE = dirname(fileURLToPath(import.meta.url))
/** The page's files: beside this module (run from src/), else the sources' copy (a dist/ build without them). */
const WEB = existsSync(join(HERE, 'web')) ? join(HERE, 'web') : join(HERE, '..', '..', '..', 'src', 'node', 'explorer', 'web')
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' }

/** The browser libraries, by the name the page's import map gives them. */
function vendorFiles(): Record<string, string> {
  const req = createRequire(import.meta.url)
  const pkg = (name: string) => {
    const p = req.resolve(name)
    const at = p.lastIndexOf(`${sep}node_modules${sep}${name}${sep}`)
    return p.slice(0, at + `${sep}node_modules${sep}${name}`.length)
  }
  return {
    'preact.module.js': join(pkg('preact'), 'dist', 'preact.module.js'),
    'hooks.module.js': join(pkg('preact'), 'hooks', 'dist', 'hooks.module.js'),
    'htm.module.js': join(pkg('htm'), 'dist', 'htm.module.js'),
    'uPlot.esm.js': join(pkg('uplot'), 'dist', 'uPlot.esm.js'),
    'uPlot.min.css': join(pkg('uplot'), 'dist', 'uPlot.min.css'),
  }
}

/** JSON with bigints as decimal strings. */
export function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x))
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, cache = 'no-store') {
  res.writeHead(status, { 'content-type': type, 'cache-control': cache, 'x-content-type-options': 'nosniff' })
  res.end(body)
}

const api = (res: ServerResponse, v: unknown) => send(res, 200, 'application/json; charset=utf-8', toJson(v))
const notFound = (res: ServerResponse, what: string) => send(res, 404, 'application/json; charset=utf-8', toJson({ error: { code: 'not_found', message: `${what} not found` } }))

/**
 * The explorer's handler over `indexer`.
 *
 * @example
 *   const ex = createExplorerHandler({ indexer })
 *   createServer((req, res) => ex.handle(req, res) || gateway(req, res))
 */
export function createExplorerHandler(init: ExplorerInit): ExplorerHandler {
  const { indexer } = init
  const vendor = vendorFiles()
  const streams = new Set<ServerResponse>()
  const keepAlive = setInterval(() => {
    for (const s of streams) s.write(': keep-alive\n\n')
  }, init.keepAliveMs ?? 15_000)
  keepAlive.unref()
  const off = indexer.onChange((c: Change) => {
    const msg = `event: change\ndata: ${toJson(c)}\n\n`
    for (const s of streams) s.write(msg)
  })

  const status = (): NodeStatus | undefined => {
    if (!init.statusDir) return undefined
    try {
      return readStatus(init.statusDir)
    } catch {
      return undefined
    }
  }

  function network() {
    const s = indexer.snapshot()
    const st = status()
    const offers = new Map((st?.offersSeen ?? []).map((o) => [o.provider.toLowerCase(), o]))
    return {
      chainId: s.chainId,
      head: s.head,
      providers: s.providers.map((p) => {
        const o = offers.get(p.address.toLowerCase())
        return { ...p, peerId: o?.peerId, capacity: o?.capacity, offerExpiresAt: o?.expiresAt, latencyMs: o?.latencyMs ?? null }
      }),
      auditors: s.auditors,
      node: st && { address: st.address, peerId: st.peerId, roles: st.roles, peers: st.peers, addrs: st.addrs, state: st.state, updatedAt: st.updatedAt },
    }
  }

  async function jobDetail(id: string) {
    const j = indexer.job(id)
    if (!j) return undefined
    let verification: unknown = { checked: false, why: 'this node holds no transcript of the job' }
    if (init.transcriptOf && j.requestDigest) {
      const t = await init.transcriptOf(j.requestDigest).catch(() => undefined)
      if (t !== undefined) {
        const v = await verifyTranscript(t)
        verification = v.ok ? { checked: true, ok: true, text: v.transcript.text } : { checked: true, ok: false, problems: v.problems }
      }
    }
    return { ...j, verification, disputes: j.games.map((g) => indexer.game(g)).filter(Boolean) }
  }

  function events(req: IncomingMessage, res: ServerResponse) {
    if (streams.size >= (init.maxStreams ?? 64)) {
      send(res, 503, 'application/json; charset=utf-8', toJson({ error: { code: 'busy', message: 'too many event streams open' } }))
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
    res.write(`retry: 2000\nevent: hello\ndata: ${toJson({ head: indexer.snapshot().head })}\n\n`)
    streams.add(res)
    req.on('close', () => streams.delete(res))
  }

  function file(res: ServerResponse, path: string) {
    const ext = path.slice(path.lastIndexOf('.'))
    try {
      send(res, 200, TYPES[ext] ?? 'application/octet-stream', readFileSync(path), 'no-cache')
    } catch {
      notFound(res, 'file')
    }
  }

  return {
    handle(req, res) {
      const url = new URL(req.url ?? '/', 'http://explorer')
      const path = url.pathname
      if (path !== EXPLORER_PATH && !path.startsWith(`${EXPLORER_PATH}/`)) return false
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        send(res, 405, 'application/json; charset=utf-8', toJson({ error: { code: 'method_not_allowed', message: 'the explorer is read-only' } }))
        return true
      }
      const rest = path.slice(EXPLORER_PATH.length).replace(/^\/+/, '')
      if (rest === '' || rest === 'index.html') {
        file(res, join(WEB, 'index.html'))
        return true
      }
      if (rest === 'events') {
        events(req, res)
        return true
      }
      const m = /^api\/(network|jobs|disputes|economics)(?:\/([\w-]{1,80}))?$/.exec(rest)
      if (m) {
        const [, what, id] = m
        if (what === 'network' && !id) api(res, network())
        else if (what === 'economics' && !id) api(res, { points: indexer.snapshot().economics })
        else if (what === 'jobs' && !id) api(res, { jobs: indexer.snapshot().jobs })
        else if (what === 'disputes' && !id) api(res, { disputes: indexer.snapshot().games })
        else if (what === 'disputes' && id && /^\d+$/.test(id)) {
          const g = indexer.game(BigInt(id))
          g ? api(res, { ...g, job: indexer.job(g.jobId) }) : notFound(res, `dispute ${id}`)
        } else if (what === 'jobs' && id) {
          jobDetail(id).then(
            (j) => (j ? api(res, j) : notFound(res, `job ${id}`)),
            () => send(res, 500, 'application/json; charset=utf-8', toJson({ error: { code: 'internal', message: 'job detail failed' } })),
          )
        } else notFound(res, rest)
        return true
      }
      if (rest.startsWith('vendor/')) {
        const f = vendor[rest.slice('vendor/'.length)]
        f ? file(res, f) : notFound(res, rest)
        return true
      }
      // the page's own modules and styles: names only, no folders
      if (/^[\w.-]+\.(js|css|svg)$/.test(rest)) {
        const p = normalize(join(WEB, rest))
        if (p.startsWith(WEB + sep)) file(res, p)
        else notFound(res, rest)
        return true
      }
      notFound(res, rest)
      return true
    },
    close() {
      off()
      clearInterval(keepAlive)
      for (const s of streams) s.end()
      streams.clear()
    },
  }
}

export type RunningExplorer = { url: string; port: number; server: Server; close(): Promise<void> }

/**
 * The explorer on its own HTTP server at `host:port` (port 0: any free one), with `indexer`
 * polled every `pollMs` (default 1 s) until closed.
 */
export async function startExplorer(init: ExplorerInit & { port: number; host?: string; pollMs?: number; onError?: (e: unknown) => void }): Promise<RunningExplorer> {
  const host = init.host ?? '127.0.0.1'
  const handler = createExplorerHandler(init)
  const server = createServer((req, res) => {
    if (!handler.handle(req, res)) {
      res.writeHead(302, { location: `${EXPLORER_PATH}/` })
      res.end()
    }
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(init.port, host, () => resolve())
  })
  const port = (server.address() as { port: number }).port
  const stop = new AbortController()
  const running = init.indexer.run({ ms: init.pollMs ?? 1000, signal: stop.signal, onError: init.onError })
  return {
    url: `http://${host}:${port}${EXPLORER_PATH}/`,
    port,
    server,
    async close() {
      stop.abort()
      handler.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await running
    },
  }
}
