/**
 * Chain errors are one line a person can act on, amounts in coins: an RPC where nothing listens,
 * one that never answers, a port already in use, an unfunded key, staking more than the wallet.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { deployTessera, saveDeployment } from '../../src/chain/client.js'
import { connectClients } from '../../src/chain/evm/clients.js'
import { createEmbeddedChain } from '../../src/chain/evm/edr.js'
import { serveJsonRpc } from '../../src/chain/evm/server.js'
import { expectOneLine } from '../support/cli.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-chain-'))
after(() => rmSync(dir, { recursive: true, force: true }))

async function listen(onConnection?: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(onConnection ?? (() => {}))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { server, port: (server.address() as { port: number }).port }
}

test('an RPC where nothing listens, and one that never answers', async () => {
  const free = await listen()
  free.server.close()
  await expectOneLine(['balance', '--rpc', `http://127.0.0.1:${free.port}`], 1, /cannot reach the chain at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/)
  const sockets: Socket[] = []
  const silent = await listen((s) => void sockets.push(s))
  try {
    await expectOneLine(['balance', '--rpc', `http://127.0.0.1:${silent.port}`, '--rpc-timeout', '0.5'], 1, /no answer from http:\/\/127\.0\.0\.1:\d+ within 0\.5 s/)
  } finally {
    for (const s of sockets) s.destroy()
    silent.server.close()
  }
})

test('chain start on a port in use fails before starting anything', async () => {
  const busy = await listen()
  try {
    await expectOneLine(['chain', 'start', '--port', String(busy.port), '--data-dir', join(dir, 'busy')], 1, new RegExp(`port ${busy.port} is in use`))
  } finally {
    busy.server.close()
  }
})

test('an unfunded key and a stake above the wallet are told in coins', async () => {
  const chain = await createEmbeddedChain({ accounts: 3 })
  const srv = await serveJsonRpc(chain.provider, { port: 0 })
  try {
    const c = connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[0].privateKey })
    const file = join(dir, 'deployment.json')
    saveDeployment(file, await deployTessera(c))
    const base = ['--rpc', srv.url, '--deployment', file]
    const key = join(dir, 'empty.key')
    writeFileSync(key, `0x${'11'.repeat(32)}\n`)
    await expectOneLine(['stake', ...base, '--key', key, '--amount', '1'], 1, /account 0x[0-9a-fA-F]{40} has no coins/)
    await expectOneLine(['stake', ...base, '--account', '1', '--amount', '2000000'], 1, /cannot stake 2000000 coin: account 0x[0-9a-fA-F]{40} holds 1000000(\.\d+)?$/)
  } finally {
    await srv.close()
    await chain.close()
  }
})
