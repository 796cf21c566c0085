// `startNode({ explorerPort })` (what `tessera node start --explorer-port` passes): a real node on
// an embedded chain served over JSON-RPC serves the explorer on 127.0.0.1 — the page, the API read
// from the chain (the staked provider, and its offer advertised after the node started) and the node's
// own status (its peer id) — and stops it with the node.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { advertise } from '../../src/chain/actions/settlement.js'
import { createDevnet } from '../../src/chain/devnet.js'
import { serveJsonRpc } from '../../src/chain/evm/server.js'
import { startNode } from '../../src/node/node.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

test('a node started with explorerPort serves the explorer over its chain and status, and stops it', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-explorer-node-'))
  const dev = await createDevnet()
  const { chain, d } = dev
  const rpc = await serveJsonRpc(chain.provider, { port: 0 })
  let node: Awaited<ReturnType<typeof startNode>> | undefined
  try {
    node = await startNode({ dataDir: join(dir, 'n'), roles: new Set(['client']), models: [], rpc: rpc.url, deployment: d, passphrase: 'test', pollMs: 100, statusEveryMs: 100, explorerPort: 0 })
    assert.match(node.explorerUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+\/explorer\/$/)
    const page = await fetch(node.explorerUrl!)
    assert.equal(page.status, 200)
    assert.match(await page.text(), /Tessera explorer/)

    await advertise(dev.provider, d, { modelRoot: dev.modelRoot, pricePerToken: 7n })
    type Net = { providers: { address: string; models: { pricePerToken: string }[] }[]; node?: { peerId: string } }
    let net: Net = { providers: [] }
    for (let i = 0; i < 50 && (net.providers.length === 0 || !net.node); i++) {
      await sleep(100)
      net = (await (await fetch(`${node.explorerUrl}api/network`)).json()) as Net
    }
    for (let i = 0; i < 50 && net.providers[0]?.models.length === 0; i++) {
      await sleep(100)
      net = (await (await fetch(`${node.explorerUrl}api/network`)).json()) as Net
    }
    assert.equal(net.providers.length, 1, 'the staked provider')
    assert.equal(net.providers[0].address.toLowerCase(), dev.provider.account.address.toLowerCase())
    assert.equal(net.providers[0].models[0].pricePerToken, '7')
    assert.equal(net.node?.peerId, node.peerId, "the node's own status")
    const url = node.explorerUrl!
    await node.stop()
    node = undefined
    await assert.rejects(fetch(url), 'the explorer stops with the node')
  } finally {
    await node?.stop()
    await rpc.close()
    await chain.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
