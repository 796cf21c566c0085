/**
 * Serves an EIP-1193 provider (the embedded chain) as JSON-RPC over HTTP on 127.0.0.1, so
 * wallets, other nodes and `tessera` commands in other processes can use it.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Eip1193Provider } from './edr.js'

type RpcCall = { jsonrpc?: string; id?: unknown; method: string; params?: unknown[] }

async function answer(provider: Eip1193Provider, call: RpcCall) {
  try {
    const result = await provider.request({ method: call.method, params: call.params ?? [] })
    return { jsonrpc: '2.0', id: call.id ?? null, result }
  } catch (err) {
    const e = err as { code?: number; shortMessage?: string; message?: string; data?: unknown }
    return { jsonrpc: '2.0', id: call.id ?? null, error: { code: e.code ?? -32603, message: e.shortMessage ?? e.message ?? 'error', data: e.data } }
  }
}

/**
 * Starts the server; resolves once listening. `port` 0 picks a free port.
 *
 * @example
 *   const { url, close } = await serveJsonRpc(chain.provider, { port: 8545 })
 */
export async function serveJsonRpc(provider: Eip1193Provider, opts: { port: number; host?: string }): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(405).end()
      return
    }
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', async () => {
      let body: RpcCall | RpcCall[]
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      } catch {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error' } }))
        return
      }
      const out = Array.isArray(body) ? await Promise.all(body.map((c) => answer(provider, c))) : await answer(provider, body)
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out, (_, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v)))
    })
  })
  const host = opts.host ?? '127.0.0.1'
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, host, resolve)
  })
  const port = (server.address() as AddressInfo).port
  return { url: `http://${host}:${port}`, server, close: () => new Promise((r) => server.close(() => r())) }
}
