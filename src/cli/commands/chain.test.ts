import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { getAddress } from 'viem'
import { parseArgs } from '../args.js'
import { getBalances } from '../../chain/actions/settlement.js'
import { DRAND_QUICKNET } from '../../chain/beacon.js'
import { DEV_BEACON_SEED, deployTessera, loadDeployment, read, saveDeployment } from '../../chain/client.js'
import { connectClients } from '../../chain/evm/clients.js'
import { createEmbeddedChain } from '../../chain/evm/edr.js'
import { serveJsonRpc } from '../../chain/evm/server.js'
import { chainCommands } from './chain.js'

const cmd = (name: string) => chainCommands.find((c) => c.name === name)!

test('stake, unstake and balance over JSON-RPC against a served embedded chain', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-chain-'))
  const chain = await createEmbeddedChain({ accounts: 3 })
  const srv = await serveJsonRpc(chain.provider, { port: 0 })
  t.mock.method(console, 'log', () => {})
  try {
    const c = connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[0].privateKey })
    const dep = await deployTessera(c)
    const file = join(dir, 'deployment.json')
    saveDeployment(file, dep)
    const ac = new AbortController()
    const base = ['--rpc', srv.url, '--deployment', file, '--account', '2']
    assert.equal(await cmd('stake').run(parseArgs([...base, '--amount', '3'], cmd('stake').flags), ac.signal), 0)
    assert.equal(await cmd('unstake').run(parseArgs([...base, '--amount', '1'], cmd('unstake').flags), ac.signal), 0)
    assert.equal(await cmd('balance').run(parseArgs(base, cmd('balance').flags), ac.signal), 0)
    const b = await getBalances(c, dep, chain.accounts[2].address)
    assert.equal(b.stake.active, 2n * 10n ** 18n)
    assert.equal(b.stake.unbonding, 10n ** 18n)
    const fresh = ['--rpc', srv.url, '--deployment', file, '--account', '1']
    await assert.rejects(cmd('stake').run(parseArgs([...fresh, '--amount', '0.5'], cmd('stake').flags), ac.signal), (e: { errorName?: string }) => e.errorName === 'StakeTooLow')
    await assert.rejects(cmd('stake').run(parseArgs([...base, '--amount', 'lots'], cmd('stake').flags), ac.signal), { name: 'InvalidParameterError' })
    await assert.rejects(cmd('stake').run(parseArgs(['--rpc', 'http://example.com:8545', '--amount', '1'], cmd('stake').flags), ac.signal), { name: 'UsageError' })
  } finally {
    await srv.close()
    await chain.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('chain start deploys, journals to its data dir, and stops on abort', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-start-'))
  const lines: string[] = []
  t.mock.method(console, 'log', (s: string) => lines.push(s))
  try {
    const ac = new AbortController()
    const run = cmd('chain start').run(parseArgs(['--port', '0', '--data-dir', dir, '--accounts', '2'], cmd('chain start').flags), ac.signal)
    while (!lines.some((l) => l.startsWith('development accounts'))) await new Promise((r) => setTimeout(r, 20))
    ac.abort()
    assert.equal(await run, 0)
    assert.ok(existsSync(join(dir, 'deployment.json')))
    assert.ok(existsSync(join(dir, 'journal.jsonl')))
    assert.match(lines[0], /^tessera chain: http:\/\/127\.0\.0\.1:\d+/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('chain deploy wires the audit draws to the beacon asked for: drand quicknet, the devnet key, or a bad name refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-deploy-'))
  const chain = await createEmbeddedChain({ accounts: 2 })
  const srv = await serveJsonRpc(chain.provider, { port: 0 })
  t.mock.method(console, 'log', () => {})
  try {
    const c = connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[0].privateKey })
    const ac = new AbortController()
    const deployed = async (beacon: string | undefined) => {
      const out = join(dir, `${beacon ?? 'default'}.json`)
      const argv = ['--rpc', srv.url, '--account', '0', '--out', out, ...(beacon ? ['--beacon', beacon] : [])]
      assert.equal(await cmd('chain deploy').run(parseArgs(argv, cmd('chain deploy').flags), ac.signal), 0)
      const d = loadDeployment(out, chain.chainId)
      return { d, genesis: await read<bigint>(c, d.beacon!, 'Beacon', 'genesisTime') }
    }
    // quicknet: the League of Entropy's chain, its genesis and key; the devnet's beacon is the local default
    const q = await deployed('quicknet')
    assert.equal(q.genesis, BigInt(DRAND_QUICKNET.genesis_time))
    assert.equal(q.d.params.beacon?.devSeed, undefined)
    const dev = await deployed(undefined)
    assert.notEqual(dev.genesis, BigInt(DRAND_QUICKNET.genesis_time))
    assert.equal(dev.d.params.beacon?.devSeed, DEV_BEACON_SEED)
    // an existing Beacon by address
    const again = await deployed(q.d.beacon!)
    assert.equal(getAddress(again.d.beacon!), getAddress(q.d.beacon!))
    await assert.rejects(cmd('chain deploy').run(parseArgs(['--rpc', srv.url, '--out', join(dir, 'x.json'), '--beacon', 'lottery'], cmd('chain deploy').flags), ac.signal), {
      name: 'InvalidParameterError',
    })
  } finally {
    await srv.close()
    await chain.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
