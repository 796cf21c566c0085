/**
 * The embedded chain in a process of its own, for benches that measure a node and not the chain
 * it talks to (on a real network the chain's JSON-RPC node is another machine): serves JSON-RPC on
 * 127.0.0.1, mines a block a second besides automine, and prints one line of JSON,
 * `{ rpc, chainId, keys }`, once listening. It stops when its stdin closes (its parent exited).
 * Usage: node --import tsx bench/chainProcess.ts ACCOUNTS
 */
import { createEmbeddedChain } from '../src/chain/evm/edr.js'
import { serveJsonRpc } from '../src/chain/evm/server.js'
import { benchArgs } from './util.js'

const positionals = benchArgs({
  summary: 'The embedded chain in a process of its own (for benches that measure a node): serves JSON-RPC on 127.0.0.1 and prints { rpc, chainId, keys } once listening; stops when its stdin closes.',
  usage: 'node --import tsx bench/chainProcess.ts [ACCOUNTS=10]',
  positionals: 1,
})

const accounts = Number(positionals[0] ?? '10')
if (!Number.isInteger(accounts) || accounts < 1) throw new Error(`ACCOUNTS must be a positive whole number, got ${positionals[0]}`)
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
