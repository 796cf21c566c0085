// Nodes behind NAT (docs/NETWORK.md "NAT"), in-process on 127.0.0.1 with the embedded chain: a
// relay node (`relay: true`, i.e. `node start --relay`), a provider with no listener at all that
// takes a reservation on it (`relayVia`, i.e. `--listen none --relay-via ADDR`) and advertises
// only its /p2p-circuit address in its signed offer, and a client node that finds that offer by
// gossip and completes a job through the relay the way `tessera request` does (jobOfferOf +
// requestJob); the tokens are the engine's. Also: `unreachableReasons` (node status "no work?")
// and a bad --relay-via address refused at start. Every node is stopped in `after`.
import '../../src/p2p/polyfill.js'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import type { Hex } from 'viem'
import { deposit } from '../../src/chain/actions/settlement.js'
import { type Deployment, deployTessera, saveDeployment } from '../../src/chain/client.js'
import { connectClients } from '../../src/chain/evm/clients.js'
import { createEmbeddedChain, devAccount, type EmbeddedChain } from '../../src/chain/evm/edr.js'
import { serveJsonRpc } from '../../src/chain/evm/server.js'
import { jobOfferOf } from '../../src/cli/commands/request.js'
import { defaultDevnetModel } from '../../src/node/devnet.js'
import { NodeStartError, startNode, type TesseraNode } from '../../src/node/node.js'
import { randomNonces, requestJob } from '../../src/node/requestJob.js'
import { unreachableReasons } from '../../src/node/status.js'
import { LIBP2P } from '../../src/p2p/host.js'
import { generate, jobParams, loadModel } from '../../src/runtime/model.js'
import { toHex } from '../../src/trace/merkle.js'
import { expectOneLine, startCli, waitFor } from '../support/cli.js'
import { until } from '../support/until.js'

const COIN = 10n ** 18n

describe('a provider behind NAT, reachable only through a relay node', { timeout: 90_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-relay-'))
  const nodes: TesseraNode[] = []
  let chain: EmbeddedChain
  let rpc: { url: string; close(): Promise<void> }
  let d: Deployment
  let modelPath: string
  let relay: TesseraNode
  let provider: TesseraNode
  let client: TesseraNode
  const timings: Record<string, number> = {}

  before(async () => {
    modelPath = defaultDevnetModel(join(dir, 'model'))
    chain = await createEmbeddedChain({ accounts: 8 })
    d = await deployTessera(connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[0].privateKey }))
    rpc = await serveJsonRpc(chain.provider, { port: 0 })
    const base = { rpc: rpc.url, deployment: d, passphrase: 'pw', models: [] as string[], pollMs: 200, offerRefreshSec: 2 }
    let t = Date.now()
    relay = await startNode({ ...base, dataDir: join(dir, 'relay'), roles: new Set(['client']), importKey: devAccount(3).privateKey, relay: true, listen: ['/ip4/127.0.0.1/tcp/0'] })
    nodes.push(relay)
    const relayAddr = relay.addrs()[0]
    client = await startNode({ ...base, dataDir: join(dir, 'client'), roles: new Set(['client']), importKey: devAccount(1).privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [relayAddr] })
    nodes.push(client)
    t = Date.now()
    provider = await startNode({
      ...base, dataDir: join(dir, 'provider'), roles: new Set(['provider']), models: [modelPath], importKey: devAccount(2).privateKey, stake: 10n * COIN,
      listen: [], relayVia: [relayAddr], bootstrap: [relayAddr],
    })
    nodes.push(provider)
    timings.providerStartMs = Date.now() - t
    await deposit(connectClients({ transport: rpc.url, chainId: d.chainId, privateKey: devAccount(1).privateKey }), d, { amount: 10n * COIN })
  })

  after(async () => {
    for (const n of nodes.reverse()) await n.stop().catch(() => {})
    await rpc?.close()
    await chain?.close()
    rmSync(dir, { recursive: true, force: true })
    console.log(`relay test timings: ${JSON.stringify(timings)}`)
  })

  test('the provider holds a reservation and its signed offer carries only its /p2p-circuit address', async () => {
    const addrs = provider.addrs()
    assert.ok(addrs.length > 0, 'the provider has an address')
    assert.ok(
      addrs.every((a) => a.endsWith(`/p2p/${relay.peerId}/p2p-circuit/p2p/${provider.peerId}`)),
      `every address goes through the relay: ${addrs.join(' ')}`,
    )
    const t = Date.now()
    const offer = await until('the client to see the offer', () => client.discovery.book.get(provider.address), 20_000)
    timings.offerSeenMs = Date.now() - t
    assert.ok(offer.offer.addrs.length > 0 && offer.offer.addrs.every((a) => a.includes('/p2p-circuit/')), `offer addrs: ${offer.offer.addrs.join(' ')}`)
    const s = await provider.status()
    assert.ok(s.whyNoWork.some((w) => /this machine only/.test(w)), `loopback relay noted: ${s.whyNoWork.join(' | ')}`)
    assert.ok(!s.whyNoWork.some((w) => /^unreachable/.test(w)), `a reservation is held: ${s.whyNoWork.join(' | ')}`)
    assert.equal((await relay.status()).relay, true)
  })

  test('a client completes a 40-token job through the relay; the tokens are the engine\'s', async () => {
    const model = await loadModel(modelPath)
    try {
      const root = `0x${toHex(model.modelRoot)}` as Hex
      const offers = await until('an offer for the model', () => client.discovery.book.offersFor(root).length > 0 && client.discovery.book.offersFor(root), 20_000)
      const prompt = model.tokenizer.encode('Through the relay')
      const params = jobParams({ maxTokens: 40, temperature: 0.8 })
      const t = Date.now()
      let text = ''
      const { transcript } = await requestJob({
        clients: connectClients({ transport: rpc.url, chainId: d.chainId, privateKey: devAccount(1).privateKey }),
        deployment: d, offers: offers.map((o) => jobOfferOf(client.host, o, root)), modelRoot: root, prompt, params, seed: 11n, nonces: randomNonces(),
        maxTries: 1, timeoutMs: 45_000, stallMs: 20_000, onText: (x) => (text += x),
      })
      timings.jobMs = Date.now() - t
      const direct = generate(model, { prompt, seed: 11n, ...params })
      assert.deepEqual(transcript.output, direct.outputTokens)
      assert.ok(transcript.output.length >= 20, `a job of a few dozen tokens (${transcript.output.length})`)
      assert.equal(text, direct.text)
      // the provider counts the job once it has the client's acknowledgement, just after requestJob returns
      await until('the provider to count the job served', async () => (await provider.status()).jobs.served === 1, 10_000)
    } finally {
      model.close()
    }
  })

  test('a provider whose reachability is private takes a reservation on a relay among its peers by itself; its offer carries the relayed address and a job runs through it', async () => {
    // AutoNAT never tests loopback addresses, so 'private' is given here (HostOptions.reachability);
    // no --relay-via: the relay is found among the peers (the bootstrap node, whose identify lists the hop protocol)
    const t = Date.now()
    const natted = await startNode({
      rpc: rpc.url, deployment: d, passphrase: 'pw', pollMs: 200, offerRefreshSec: 2, dataDir: join(dir, 'natted'), roles: new Set(['provider']), models: [modelPath],
      importKey: devAccount(4).privateKey, stake: 10n * COIN, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [relay.addrs()[0]], reachability: 'private',
    })
    nodes.push(natted)
    const relayedAddr = await until('a relayed address', () => natted.addrs().find((a) => a.includes('/p2p-circuit')), 20_000)
    timings.autoRelayMs = Date.now() - t
    assert.ok(relayedAddr.endsWith(`/p2p/${relay.peerId}/p2p-circuit/p2p/${natted.peerId}`), relayedAddr)
    const offer = await until('its offer with the relayed address', () => {
      const o = client.discovery.book.get(natted.address)
      return o?.offer.addrs.some((a) => a.includes('/p2p-circuit')) && o
    }, 20_000)
    assert.ok(offer.offer.addrs.some((a) => a.includes('/p2p-circuit/')))
    const s = await natted.status()
    assert.ok(!s.whyNoWork.some((w) => /^unreachable from outside/.test(w)), `a reservation is held: ${s.whyNoWork.join(' | ')}`)
    // a job dialled through the relayed address only
    const model = await loadModel(modelPath)
    try {
      const root = `0x${toHex(model.modelRoot)}` as Hex
      const viaRelay = { ...offer, offer: { ...offer.offer, addrs: offer.offer.addrs.filter((a) => a.includes('/p2p-circuit/')) } }
      const prompt = model.tokenizer.encode('Found a relay')
      const params = jobParams({ maxTokens: 12 })
      const { transcript } = await requestJob({
        clients: connectClients({ transport: rpc.url, chainId: d.chainId, privateKey: devAccount(1).privateKey }),
        deployment: d, offers: [jobOfferOf(client.host, viaRelay, root)], modelRoot: root, prompt, params, seed: 3n, nonces: randomNonces(), maxTries: 1, timeoutMs: 45_000,
      })
      assert.deepEqual(transcript.output, generate(model, { prompt, seed: 3n, ...params }).outputTokens)
      assert.equal(transcript.request.provider, natted.address)
    } finally {
      model.close()
    }
  })

  test('a provider nobody can dial (no address, no relay): node status says unreachable; once AutoNAT finds it private it reserves a slot on its relay peer by itself, and the reason goes', async () => {
    const hidden = await startNode({
      rpc: rpc.url, deployment: d, passphrase: 'pw', pollMs: 200, offerRefreshSec: 2, dataDir: join(dir, 'hidden'), roles: new Set(['provider']), models: [modelPath],
      importKey: devAccount(7).privateKey, stake: 10n * COIN, listen: [], bootstrap: [relay.addrs()[0]],
    })
    nodes.push(hidden)
    await until('the hidden provider to reach the relay', () => hidden.host.peers().includes(relay.peerId), 10_000)
    assert.deepEqual(hidden.addrs(), [])
    const s = await hidden.status()
    assert.ok(s.whyNoWork.some((w) => /^unreachable: no listen address and no relay reservation/.test(w)), s.whyNoWork.join(' | '))
    await assert.rejects(client.host.dial(hidden.peerId, '/tessera/job/1.4.0', { signal: AbortSignal.timeout(3000) }), { name: 'DialError' })
    // AutoNAT's verdict, where AutoNAT reports it (loopback cannot produce one: test/network/nat.test.ts)
    type AutoNat = { unconfirmAddress(r: { multiaddr: unknown; type: string; queue: { abort(): void } }): void }
    const autoNat = (hidden.host as unknown as { [LIBP2P]: { services: { autoNAT: AutoNat } } })[LIBP2P].services.autoNAT
    autoNat.unconfirmAddress({ multiaddr: multiaddr('/ip4/198.51.100.9/tcp/4001'), type: 'observed', queue: { abort() {} } })
    const relayedAddr = await until('a relayed address', () => hidden.addrs().find((a) => a.includes('/p2p-circuit')), 20_000)
    assert.ok(relayedAddr.endsWith(`/p2p/${relay.peerId}/p2p-circuit/p2p/${hidden.peerId}`), relayedAddr)
    const after = await hidden.status()
    assert.ok(!after.whyNoWork.some((w) => /^unreachable/.test(w)), after.whyNoWork.join(' | '))
    const conn = await client.host.dial(relayedAddr, '/tessera/job/1.4.0', { signal: AbortSignal.timeout(5000) })
    conn.abort(new Error('test done'))
  })

  test('tessera node start --listen none --relay-via ADDR: the provider process takes a reservation and its offer reaches the client', async () => {
    const depFile = join(dir, 'deployment.json')
    saveDeployment(depFile, d)
    writeFileSync(join(dir, 'pass'), 'pw\n')
    writeFileSync(join(dir, 'key5'), devAccount(5).privateKey)
    const relayAddr = relay.addrs()[0]
    const child = startCli([
      'node', 'start', '--data', join(dir, 'cli-provider'), '--role', 'provider', '--model', modelPath, '--rpc', rpc.url, '--deployment', depFile,
      '--passphrase-file', join(dir, 'pass'), '--import-key', join(dir, 'key5'), '--listen', 'none', '--relay-via', relayAddr, '--bootstrap', relayAddr, '--offer-refresh', '2',
    ])
    let out = ''
    child.stdout!.on('data', (b: string) => (out += b))
    try {
      const t = Date.now()
      await waitFor(() => out, /ready: /, 40_000)
      timings.cliProviderReadyMs = Date.now() - t
      assert.match(out, new RegExp(`relay reservation: ${relayAddr.replaceAll('/', '\\/')}\\/p2p-circuit\\/p2p\\/`), out)
      const offer = await until('the CLI provider\'s offer', () => client.discovery.book.get(devAccount(5).address), 20_000)
      assert.ok(offer.offer.addrs.length > 0 && offer.offer.addrs.every((a) => a.includes('/p2p-circuit/')), offer.offer.addrs.join(' '))
    } finally {
      child.kill('SIGTERM')
      const r = await child.result
      assert.equal(r.code, 0, `the provider stopped cleanly: ${r.err}`)
    }
  })

  test('tessera node start --reachability private (no --relay-via): the provider process reserves a slot on a relay among its peers and advertises it', async () => {
    const depFile = join(dir, 'deployment.json')
    saveDeployment(depFile, d)
    writeFileSync(join(dir, 'pass'), 'pw\n')
    writeFileSync(join(dir, 'key6'), devAccount(6).privateKey)
    const relayAddr = relay.addrs()[0]
    const child = startCli([
      'node', 'start', '--data', join(dir, 'cli-private'), '--role', 'provider', '--model', modelPath, '--rpc', rpc.url, '--deployment', depFile,
      '--passphrase-file', join(dir, 'pass'), '--import-key', join(dir, 'key6'), '--reachability', 'private', '--bootstrap', relayAddr, '--offer-refresh', '2',
    ])
    let out = ''
    child.stdout!.on('data', (b: string) => (out += b))
    try {
      await waitFor(() => out, /ready: /, 40_000)
      const offer = await until(
        'an offer of the CLI provider with a relayed address',
        () => {
          const o = client.discovery.book.get(devAccount(6).address)
          return o?.offer.addrs.some((a) => a.includes(`${relay.peerId}/p2p-circuit/`)) ? o : undefined
        },
        20_000,
      )
      assert.ok(offer.offer.addrs.some((a) => a.startsWith('/ip4/127.0.0.1/tcp/') && !a.includes('p2p-circuit')), `the direct address stays: ${offer.offer.addrs.join(' ')}`)
    } finally {
      child.kill('SIGTERM')
      const r = await child.result
      assert.equal(r.code, 0, `the provider stopped cleanly: ${r.err}`)
    }
  })

  test('--listen none without --relay-via, a bad --relay-via and a bad --reachability are refused by the CLI', async () => {
    await Promise.all([
      expectOneLine(['node', 'start', '--data', join(dir, 'x'), '--listen', 'none'], 2, /--listen none needs --relay-via/),
      expectOneLine(['node', 'start', '--data', join(dir, 'x'), '--relay-via', '/ip4/127.0.0.1/tcp/1'], 1, /invalid --relay-via/),
      expectOneLine(['node', 'start', '--data', join(dir, 'x'), '--reachability', 'nat'], 1, /invalid --reachability/),
    ])
  })

  test('a --relay-via address without /p2p/<id> is refused at start', async () => {
    await assert.rejects(
      startNode({ rpc: rpc.url, deployment: d, passphrase: 'pw', models: [], dataDir: join(dir, 'bad'), roles: new Set(['client']), importKey: devAccount(4).privateKey, relayVia: ['/ip4/127.0.0.1/tcp/1'] }),
      NodeStartError,
    )
  })
})

describe('unreachableReasons (node status "no work?")', () => {
  const relayed = '/ip4/203.0.113.5/tcp/4001/p2p/12D3KooWRelay/p2p-circuit/p2p/12D3KooWMe'
  test('no address at all', () => {
    assert.match(unreachableReasons({ addrs: [], relayVia: [], peers: 1, offerTopicPeers: 1 }).join(), /^unreachable: no listen address/)
  })
  test('a --relay-via relay with no reservation yet', () => {
    const r = unreachableReasons({ addrs: ['/ip4/192.168.1.4/tcp/4001/p2p/me'], relayVia: ['/ip4/203.0.113.5/tcp/4001/p2p/R'], peers: 1, offerTopicPeers: 1 })
    assert.ok(r.some((x) => /no reservation held on \/ip4\/203.0.113.5/.test(x)), r.join())
    assert.ok(r.some((x) => /only private addresses/.test(x)), r.join())
  })
  test('loopback only', () => {
    assert.ok(unreachableReasons({ addrs: ['/ip4/127.0.0.1/tcp/5/p2p/me'], relayVia: [], peers: 0, offerTopicPeers: 0 }).some((x) => /this machine only/.test(x)))
  })
  test('a public relay reservation: nothing to report; a public address with nobody on the offer topic is reported', () => {
    assert.deepEqual(unreachableReasons({ addrs: [relayed], relayVia: ['/ip4/203.0.113.5/tcp/4001/p2p/12D3KooWRelay'], peers: 2, offerTopicPeers: 1 }), [])
    assert.deepEqual(unreachableReasons({ addrs: ['/ip4/198.51.100.7/tcp/4001/p2p/me'], relayVia: [], peers: 3, offerTopicPeers: 0 }).length, 1)
    assert.deepEqual(unreachableReasons({ addrs: ['/ip4/10.0.0.2/tcp/4001/p2p/me', relayed], relayVia: [], peers: 3, offerTopicPeers: 2 }), [], 'private plus a public relay reservation')
  })
  test('a public address AutoNAT peers could not dial back is reported, unless a relay reservation is held', () => {
    const pub = '/ip4/198.51.100.7/tcp/4001/p2p/me'
    assert.match(unreachableReasons({ addrs: [pub], relayVia: [], peers: 3, offerTopicPeers: 2, reachability: 'private' }).join(), /^unreachable from outside: AutoNAT/)
    assert.deepEqual(unreachableReasons({ addrs: [pub], relayVia: [], peers: 3, offerTopicPeers: 2, reachability: 'public' }), [])
    assert.deepEqual(unreachableReasons({ addrs: [pub], relayVia: [], peers: 3, offerTopicPeers: 2, reachability: 'unknown' }), [])
    assert.deepEqual(unreachableReasons({ addrs: [pub, relayed], relayVia: [], peers: 3, offerTopicPeers: 2, reachability: 'private' }), [], 'reachable through the relay')
    // behind NAT: its own addresses are private, the NAT's address AutoNAT tested failed
    const natted = unreachableReasons({ addrs: ['/ip4/192.168.1.4/tcp/4001/p2p/me'], relayVia: [], peers: 3, offerTopicPeers: 2, reachability: 'private' })
    assert.deepEqual(natted.length, 1, natted.join())
    assert.match(natted[0]!, /^unreachable from outside: AutoNAT/)
  })
})
