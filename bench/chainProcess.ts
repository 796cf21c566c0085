/**
 * The embedded chain in a process of its own, for benches that measure a node and not the chain
 * it talks to (on a real network the chain's JSON-RPC node is another machine): serves JSON-RPC on
 * 127.0.0.1, mines a block a second besides automine, and prints one line of JSON,
 * `{ rpc, chainId, keys }`, once listening. It stops when its stdin closes (its parent exited).
 * Usage: node --import tsx bench/chainProcess.ts ACCOUNTS
 */
import { createEmbeddedChain } from '../src/chain/evm/edr.js'
import { serveJsonRpc } from '../src/chain/evm/server.js'

const accounts = Number(process.argv[2] ?? '10')
if (!Number.isInteger(accounts) || accounts < 1) throw new Error(`ACCOUNTS must be a positive whole number, got ${process.argv[2]}`)
const chain = await createEmbeddedChain({ accounts })
const srv = await serveJsonRpc(chain.provider, { port: 0 })
const miner = setInterval(() => void chain.provider.request({ method: 'evm_mine', params: [] }).catch(() => {}), 1000)
process.stdout.write(`${JSON.stringify({ rpc: srv.url, chainId: chain.chainId, keys: chain.accounts.map((a) => a.privateKey) })}\n`)
process.stdin.resume()
process.stdin.on('close', async () => {
  clearInterval(miner)
  await srv.close()
  await chain.close()
  process.exit(0)
})
