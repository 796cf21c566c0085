// The network end to end, with real processes on 127.0.0.1: `tessera chain start` (short audit
// windows, a block a second, the devnet beacon served over drand's HTTP API), four providers
// (one started with --cheat silu, one with --cheat withhold), two auditors, all `tessera node start`, and clients that are
// `tessera request`. Checked: discovery of every offer, a job whose job file `tessera verify`
// accepts, its claim on chain, audits drawn and found valid, a provider that withholds a drawn
// transcript challenged on chain for availability and slashed, the cheater disputed and slashed
// with its auditor paid (read from the chain) while that auditor is killed and restarted mid-game,
// malformed, oversized, badly signed and replayed job messages (refused, the provider still
// serves), transcript requests from an account not drawn and with another account's signature
// (refused by name), an expired offer (refused by the nodes' offer books), an honest provider
// wrongly challenged by a lying challenger (this process) and SIGKILLed mid-game then restarted on
// its folder (its defence resumes and wins by the machine's check), a provider frozen mid-stream
// (the client finishes on another, same text), and, last, chain time moved past the challenge
// window: the honest provider finalizes its batches and withdraws exactly what they paid. Every
// process is killed by PID at the end.
import '../../src/p2p/polyfill.js'
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { type Address, type Hex, toHex as viemHex } from 'viem'
import { getBatch, getBalances, getStake, deposit } from '../../src/chain/actions/settlement.js'
import { WHY, getGame, isOver, isProviderTurn, openGame } from '../../src/chain/actions/disputeGame.js'
import { AUDIT, assignmentOf } from '../../src/chain/actions/audits.js'
import { auditsAbi, settlementAbi } from '#abi'
import { loadDeployment, type Deployment, requestDigest, signJobRequest } from '../../src/chain/client.js'
import { type ChainClients, connectClients } from '../../src/chain/evm/clients.js'
import { encodeGguf } from '../../src/engine/gguf/write.js'
import { synthModel } from '../../src/engine/model/synth.js'
import { ENGINE_VERSION, ARITH_VERSION } from '../../src/engine/version.js'
import { seededRng } from '../../src/dispute/cheats.js'
import { openDisputeModel } from '../../src/dispute/model.js'
import { createChallenger } from '../../src/dispute/players/challenger.js'
import { replayedTrace } from '../../src/node/auditor.js'
import { batchProof, claimedItem, gameOutcome } from '../../src/node/chainWatch.js'
import { JOB_PROTOCOL } from '../../src/node/jobProtocol.js'
import { TRANSCRIPT_PROTOCOL } from '../../src/node/node.js'
import { signTranscriptAccess } from '../../src/node/transcriptAccess.js'
import { type NonceSource, requestJob } from '../../src/node/requestJob.js'
import { type NodeStatus, readStatus } from '../../src/node/status.js'
import { requestToJson } from '../../src/node/transcript.js'
import { jobOfferOf } from '../../src/cli/commands/request.js'
import { createHost, type Host } from '../../src/p2p/host.js'
import { identityFromKey } from '../../src/p2p/identity.js'
import { encodeOffer, OFFER_TOPIC, signOffer } from '../../src/p2p/offers.js'
import { jobParams, loadModel } from '../../src/runtime/model.js'
import { writeGgufFile } from '../../src/runtime/ggufFile.js'
import { toHex } from '../../src/trace/merkle.js'
import { paramsHash, tokensRoot } from '../../src/trace/receipt.js'
import { type CliResult, cli, startCli, waitFor } from '../support/cli.js'

const COIN = 10n ** 18n
type Proc = ChildProcess & { result: Promise<CliResult>; log: () => string }

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls `check` until it returns a value (not undefined/false) or `ms` pass. */
async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, ms: number, every = 250): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    let v: T | undefined | false
    try {
      v = await check()
    } catch {
      v = undefined
    }
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(every)
  }
}

describe('network: chain + 4 providers (1 cheating, 1 withholding) + 2 auditors + clients, as processes', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-net-'))
  const procs = new Set<Proc>()
  const modelPath = join(dir, 'tiny.gguf')
  let rpc = ''
  let beaconUrl = ''
  let depFile = ''
  let d: Deployment
  let keys: Hex[] = []
  let root: Hex
  const ports: Record<string, number> = {}
  const addrOf: Record<string, string> = {}
  const addressOf: Record<string, string> = {}
  const nodeArgs: Record<string, string[]> = {}
  let reader: ChainClients

  const spawn = (args: string[]): Proc => {
    const p = startCli(args) as Proc
    let out = ''
    p.stdout?.on('data', (x: string) => (out += x))
    p.stderr?.on('data', (x: string) => (out += x))
    p.log = () => out
    procs.add(p)
    p.result.then(() => procs.delete(p))
    return p
  }
  const keyFile = (i: number) => {
    const f = join(dir, `key${i}`)
    writeFileSync(f, keys[i])
    return f
  }
  const statusOf = (name: string): NodeStatus => readStatus(join(dir, name))
  const nodes: Record<string, Proc> = {}
  const startNode = (name: string) => {
    nodes[name] = spawn(nodeArgs[name])
    // five nodes load the model and the CLI at once: on a loaded 2-core machine that took over a minute
    return waitFor(() => nodes[name].log(), /ready: /, 120_000)
  }
  const request = (...args: string[]) =>
    cli('request', '--bootstrap', addrOf.p1, '--model', modelPath, '--prompt', 'hello world', '--rpc', rpc, '--deployment', depFile, '--wait', '20', ...args)

  /** Where a job of `client` with request digest `digest` was claimed, with its item and proof (undefined: not claimed yet). */
  const claimOf = async (digest: Hex, client: Address) => {
    const logs = await reader.public.getContractEvents({ address: d.settlement, abi: settlementAbi, eventName: 'JobClaimed', args: { client }, fromBlock: 0n })
    for (const l of logs) {
      const at = { batchId: l.args.batchId!, index: Number(l.args.index), block: l.blockNumber }
      const item = await claimedItem(reader, d, { tx: l.transactionHash, index: at.index, client, leaf: l.args.leaf! })
      if (requestDigest(d.chainId, d.settlement, item.req).toLowerCase() === digest.toLowerCase()) return { ...at, item, proof: await batchProof(reader, d, at) }
    }
    return undefined
  }
  const accountOf = (i: number) => identityFromKey(keys[i]).address as Address

  before(async () => {
    process.env.TESSERA_PASSPHRASE = 'network-test'
    writeGgufFile(modelPath, encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 3 })))
    const m = await loadModel(modelPath)
    root = `0x${toHex(m.modelRoot)}` as Hex
    m.close()
    const chainPort = await freePort()
    const beaconPort = await freePort()
    // every claimed job is audited; windows short enough for a test, inside a 10-minute challenge window
    const params = {
      settlement: { challengeWindow: '600', auditBps: 10000 },
      // a short answer window: the withholding provider's availability challenge runs out within the test
      audits: { beaconDelay: '3', commitWindow: '120', revealWindow: '120', canaryWindow: '30', answerWindow: '6' },
    }
    writeFileSync(join(dir, 'params.json'), JSON.stringify(params))
    const chain = spawn(['chain', 'start', '--port', String(chainPort), '--data-dir', join(dir, 'chain'), '--params', join(dir, 'params.json'), '--block-time', '1', '--beacon-port', String(beaconPort), '--accounts', '12'])
    await waitFor(() => chain.log(), /beacon: http/, 60_000)
    rpc = `http://127.0.0.1:${chainPort}`
    beaconUrl = `http://127.0.0.1:${beaconPort}`
    depFile = join(dir, 'chain', 'deployment.json')
    d = loadDeployment(depFile)
    keys = [...chain.log().matchAll(/\] (0x[0-9a-fA-F]{40})\s+(0x[0-9a-f]{64})/g)].map((x) => x[2] as Hex)
    assert.ok(keys.length >= 8, 'the devnet printed its accounts')
    reader = connectClients({ transport: rpc, chainId: d.chainId, privateKey: keys[9] })

    // providers p1..p3 (accounts 1..3; p3 cheats), p4 (account 10, withholds transcripts), auditors a1, a2 (accounts 4, 5)
    const plan: [string, number, string[]][] = [
      ['p1', 1, ['--role', 'provider', '--price', '1000']],
      ['p2', 2, ['--role', 'provider', '--price', '900']],
      ['p3', 3, ['--role', 'provider', '--price', '5000', '--cheat', 'silu']],
      ['p4', 10, ['--role', 'provider', '--price', '6000', '--cheat', 'withhold']],
      ['a1', 4, ['--role', 'auditor', '--beacon', beaconUrl]],
      ['a2', 5, ['--role', 'auditor', '--beacon', beaconUrl]],
    ]
    for (const [name] of plan) ports[name] = await freePort()
    for (const [name, i] of plan) {
      const id = identityFromKey(keys[i])
      addrOf[name] = `/ip4/127.0.0.1/tcp/${ports[name]}/p2p/${id.peerId}`
      addressOf[name] = id.address
    }
    for (const [name, i, extra] of plan) {
      nodeArgs[name] = [
        'node', 'start', '--data', join(dir, name), '--model', modelPath, '--rpc', rpc, '--deployment', depFile, '--listen', `/ip4/127.0.0.1/tcp/${ports[name]}`,
        ...(name === 'p1' ? [] : ['--bootstrap', addrOf.p1]), '--import-key', keyFile(i), '--stake', name.startsWith('p') ? '5' : '1',
        '--poll', '250', '--claim-after', '1', '--offer-refresh', '5', ...extra,
      ]
    }
    await startNode('p1') // the bootstrap peer first
    await Promise.all(['p2', 'p3', 'p4', 'a1', 'a2'].map(startNode))
  })

  after(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
    await Promise.allSettled([...procs].map((p) => p.result))
    rmSync(dir, { recursive: true, force: true })
  })

  let reference = ''

  test('discovery: a client finds every offer; a job served and verified; its claim lands on chain', async () => {
    const r = await request('--provider', addressOf.p1, '--json', '--out', join(dir, 'job1.json'), '--key', keyFile(6), '--max-tokens', '12')
    assert.equal(r.code, 0, r.err)
    const j = JSON.parse(r.out)
    reference = j.text
    assert.deepEqual(new Set(j.offers.map((o: { provider: string }) => o.provider.toLowerCase())), new Set([addressOf.p1.toLowerCase()]), '--provider keeps only its offer')
    // discovery proper: all three providers' offers seen by the client
    const all = await request('--min-offers', '4', '--json', '--key', keyFile(6), '--max-tokens', '4', '--out', join(dir, 'job-p2.json'))
    assert.equal(all.code, 0, all.err)
    const seen = new Set(JSON.parse(all.out).offers.map((o: { provider: string }) => o.provider.toLowerCase()))
    for (const p of ['p1', 'p2', 'p3']) assert.ok(seen.has(addressOf[p].toLowerCase()), `the client found ${p}'s offer`)
    assert.equal(JSON.parse(all.out).offers[0].provider.toLowerCase(), addressOf.p2.toLowerCase(), 'offers sorted by price: the cheapest first')
    assert.equal(JSON.parse(readFileSync(join(dir, 'job-p2.json'), 'utf8')).signed.signer.toLowerCase(), addressOf.p2.toLowerCase(), 'served by the cheapest')

    const v = await cli('verify', '-m', modelPath, '--receipt', join(dir, 'job1.json'))
    assert.equal(v.code, 0, v.err)
    assert.match(v.out, new RegExp(`valid: .*signed by ${addressOf.p1}`, 'i'))

    const claimed = await until('p1 claims its job', () => (statusOf('p1').claims?.claimed ?? 0) >= 1, 30_000)
    assert.ok(claimed)
    const stake = await getStake(reader, d, addressOf.p1 as Hex)
    assert.ok(stake.locked > 0n, 'the claim locked some of p1\'s stake on chain')
  })

  test('audits happen: the honest job is drawn, replayed and found valid', async () => {
    const valid = await until('an auditor finds p1\'s job valid', () => (statusOf('a1').audits.valid ?? 0) + (statusOf('a2').audits.valid ?? 0) >= 1, 60_000)
    assert.ok(valid)
    assert.equal((statusOf('p1').disputes['provider:lost'] ?? 0) + (statusOf('p1').disputes['provider:open'] ?? 0), 0, 'no game on an honest job')
  })

  test('a provider that withholds a drawn transcript: the auditor cannot fetch it, challenges availability, nobody answers, the provider is slashed', async () => {
    const before = await getStake(reader, d, addressOf.p4 as Hex)
    const r = await request('--provider', addressOf.p4, '--json', '--key', keyFile(11), '--max-tokens', '6')
    assert.equal(r.code, 0, `the client is served (it gets its own transcript): ${r.err}`)
    assert.equal(JSON.parse(r.out).text, reference.slice(0, JSON.parse(r.out).text.length), 'an honest answer')
    // the drawn auditor asks p4 for the transcript and is refused
    await until('p4 refuses an auditor the transcript', () => (statusOf('p4').jobs.transcriptsRefused ?? 0) >= 1, 90_000)
    const challenged = await until('an availability challenge on p4\'s job', async () => {
      const logs = await reader.public.getContractEvents({ address: d.audits!, abi: auditsAbi, eventName: 'AvailabilityChallenged', fromBlock: 0n })
      const mine = await Promise.all(logs.map(async (l) => ((await getBatch(reader, d, l.args.batchId!)).provider.toLowerCase() === addressOf.p4.toLowerCase() ? l : undefined)))
      return mine.find((l) => l !== undefined)
    }, 60_000, 1000)
    // nobody answers within the answer window; the auditor claims the withholding and p4 is slashed
    const slashed = await until('p4 slashed for withholding', async () => {
      const s = await getStake(reader, d, addressOf.p4 as Hex)
      return s.active + s.unbonding < before.active + before.unbonding && s
    }, 90_000, 1000)
    assert.ok(slashed.active < before.active, 'the withholder lost stake')
    const posted = await reader.public.getContractEvents({ address: d.audits!, abi: auditsAbi, eventName: 'TranscriptPosted', fromBlock: 0n })
    assert.ok(!posted.some((l) => l.args.batchId === challenged.args.batchId && l.args.index === challenged.args.index), 'the challenge was never answered')
    const withheld = await reader.public.getContractEvents({ address: d.audits!, abi: auditsAbi, eventName: 'WithholdingSlashed', fromBlock: 0n })
    assert.ok(withheld.some((l) => l.args.batchId === challenged.args.batchId && l.args.index === challenged.args.index), 'slashed for withholding, by the challenge')
    await until('the auditor records it', () => (statusOf('a1').audits.withheld ?? 0) + (statusOf('a2').audits.withheld ?? 0) >= 1, 30_000)
  })

  test('the cheater is disputed and slashed, its auditor paid, also across the auditor\'s restart mid-game', async () => {
    const before = await getStake(reader, d, addressOf.p3 as Hex)
    const r = await request('--provider', addressOf.p3, '--json', '--key', keyFile(7), '--max-tokens', '6')
    assert.equal(r.code, 0, `the client accepts the lie (it cannot see the trace): ${r.err}`)
    // the auditor drawn for it opens a game; kill it mid-game and restart it on the same folder
    const auditor = await until('a game opened on p3\'s job', () => ['a1', 'a2'].find((a) => (statusOf(a).disputes['challenger:open'] ?? 0) > 0), 90_000)
    nodes[auditor].kill('SIGKILL')
    await nodes[auditor].result
    await startNode(auditor)
    const who = addressOf[auditor] as Hex
    const paid = await until('p3 slashed', async () => {
      const s = await getStake(reader, d, addressOf.p3 as Hex)
      return s.active + s.unbonding < before.active + before.unbonding && s
    }, 120_000, 500)
    assert.ok(paid.active < before.active, 'the cheater lost stake')
    await until('the auditor records its win', () => (statusOf(auditor).disputes['challenger:won'] ?? 0) >= 1, 30_000)
    const b = await getBalances(reader, d, who)
    assert.ok(b.owed + b.owedByGame > 0n, 'the auditor was paid (owed by Settlement or the game)')
  })

  test('faults: bad messages are refused and the provider still serves; an expired offer is refused', async () => {
    const key = keys[8]
    const host: Host = await createHost({ privateKey: identityFromKey(key).libp2pKey, bootstrap: [addrOf.p1], limits: { inboundConnectionThreshold: 100 } })
    try {
      const client = connectClients({ transport: rpc, chainId: d.chainId, privateKey: key })
      await deposit(client, d, { amount: COIN / 100n })
      const reply = async (msg: unknown, maxBytes?: number) => {
        const conn = await host.dial(addrOf.p1, JOB_PROTOCOL, { maxBytes, signal: AbortSignal.timeout(10_000) })
        try {
          await conn.send(msg)
          return await conn.recv(10_000)
        } catch (e) {
          return { t: 'reset', message: (e as Error).message }
        } finally {
          conn.abort(new Error('done'))
        }
      }
      // malformed
      assert.deepEqual(((await reply({ t: 'bogus' })) as { code?: string }).code, 'bad-message')
      // oversized: a 2 MiB frame (the provider's bound is 1 MiB)
      const big = (await reply({ t: 'request', pad: 'x'.repeat(2 << 20) }, 4 << 20)) as { t?: string; code?: string }
      assert.notEqual(big?.t, 'accepted', 'an oversized frame is never a job')
      // bad signature: a request signed by another key than the client it names
      const block = await client.public.getBlock()
      const params = jobParams({ maxTokens: 4 })
      const prompt = [1, 2, 3]
      const req = {
        provider: addressOf.p1 as Hex, modelRoot: root, promptRoot: viemHex(tokensRoot(prompt)), paramsHash: viemHex(paramsHash(params)), seed: 0n, nonce: 77n,
        expiry: block.timestamp + 3600n, maxTokens: prompt.length + params.maxTokens, pricePerToken: 1000n,
      }
      const other = connectClients({ transport: rpc, chainId: d.chainId, privateKey: keys[7] })
      const forged = await signJobRequest(other, d.settlement, req)
      const bad = (await reply({ t: 'request', request: requestToJson(req), signature: forged, client: client.account.address, prompt, params })) as { code?: string }
      assert.equal(bad.code, 'bad-signature')
      // replayed: the same nonce twice; the second is refused
      const fixed: NonceSource = { next: async () => 4242n }
      const offer = { offer: { provider: addressOf.p1, peerId: addrOf.p1.split('/p2p/')[1], addrs: [addrOf.p1], models: [{ root, pricePerToken: '1000' }] } }
      const ask = () => requestJob({ clients: client, deployment: d, offers: [jobOfferOf(host, offer as never, root)], modelRoot: root, prompt, params, seed: 0n, nonces: fixed, maxTries: 1, stallMs: 10_000 })
      await ask()
      await assert.rejects(ask(), (e: { tries?: { code: string }[] }) => e.tries?.[0]?.code === 'replayed')

      // an expired offer, signed and gossiped: the nodes' books refuse it
      const now = Math.floor(Date.now() / 1000)
      const expired = await signOffer({
        v: 2, provider: client.account.address, peerId: host.peerId, addrs: host.addrs(), models: [{ root, pricePerToken: '1', arith: ARITH_VERSION }], capacity: 1,
        engine: ENGINE_VERSION, stake: '0', seq: Date.now(), issuedAt: now - 100, expiresAt: now - 10,
      }, key)
      await until('an expired offer refused by p1', async () => {
        await host.publish(OFFER_TOPIC, encodeOffer(expired)).catch(() => {})
        return (statusOf('p1').offerProblems.expired ?? 0) >= 1
      }, 20_000, 1000)
      assert.ok(!statusOf('p1').offersSeen.some((o) => o.provider.toLowerCase() === client.account.address.toLowerCase()))

      // transcript access: this account is neither job 1's client nor its drawn auditor
      const digest = JSON.parse(readFileSync(join(dir, 'job1.json'), 'utf8')).signed.requestDigest as Hex
      const place = await claimOf(digest, accountOf(6))
      assert.ok(place, 'job 1 is claimed')
      const askTranscript = async (access: unknown) => {
        const conn = await host.dial(addrOf.p1, TRANSCRIPT_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
        try {
          await conn.send({ t: 'get', request: digest, access })
          return (await conn.recv(10_000)) as { t?: string; code?: string }
        } finally {
          conn.abort(new Error('done'))
        }
      }
      const fields = { requestDigest: digest, provider: addressOf.p1 as Address, batchId: place.batchId, index: place.index, issuedAt: Math.floor(Date.now() / 1000) }
      assert.equal((await askTranscript(await signTranscriptAccess(client, d, fields))).code, 'not-drawn', 'a valid, fresh access from an account not drawn')
      // an auditor's access (signed by a1's key) presented on this peer's stream
      const a1 = connectClients({ transport: rpc, chainId: d.chainId, privateKey: keys[4] })
      assert.equal((await askTranscript(await signTranscriptAccess(a1, d, fields))).code, 'bad-signature', "another account's signature")
      await until('p1 counts the refusals by code', () => (statusOf('p1').jobs.transcriptRefusals?.['not-drawn'] ?? 0) >= 1, 10_000)
    } finally {
      await host.stop()
    }
    // the provider still serves
    const r = await request('--provider', addressOf.p1, '--json', '--key', keyFile(6), '--max-tokens', '12')
    assert.equal(r.code, 0, r.err)
    assert.equal(JSON.parse(r.out).text, reference, 'the same answer as before')
  })

  test('an honest provider wrongly challenged is killed mid-game and restarted on its folder: its defence resumes and wins', async () => {
    // p2's job of the first test, long claimed; its drawn auditor has fetched the transcript (so the
    // kill below never meets an availability challenge)
    const job = JSON.parse(readFileSync(join(dir, 'job-p2.json'), 'utf8'))
    const claim = await until('p2 claimed the job', () => claimOf(job.signed.requestDigest, accountOf(6)), 30_000, 500)
    await until('its audit committed', async () => (await assignmentOf(reader, d, { batchId: claim.batchId, index: BigInt(claim.index) })).status >= AUDIT.COMMITTED, 90_000, 500)
    // a lying challenger (this process, account 9) disputes the honest job: it picks positions at random
    const liar = connectClients({ transport: rpc, chainId: d.chainId, privateKey: keys[9] })
    const { gameId } = await openGame(liar, d, { batchId: claim.batchId, jobIndex: BigInt(claim.index), item: claim.item, client: accountOf(6), proof: claim.proof, bond: BigInt(d.params.game.challengerBond) })
    const model = await openDisputeModel(modelPath)
    try {
      const trace = replayedTrace(model, { prompt: job.promptTokens, params: job.receipt.params, output: job.tokens, seed: BigInt(job.receipt.seed) })
      const p = createChallenger({ clients: liar, deployment: d, gameId, trace, depthBond: BigInt(d.params.game.depthBond), lie: { rng: seededRng(3) } })
      let liarMoves = 0
      /** The liar moves whenever it is its turn, until `stop` (bounded in rounds and time). */
      const play = async (stop: () => Promise<boolean>, what: string) => {
        const end = Date.now() + 120_000
        for (let i = 0; i < 600 && Date.now() < end; i++) {
          if (await p.act()) liarMoves++
          if (await stop()) return
          await sleep(100)
        }
        throw new Error(`game ${gameId}: ${what} did not happen in time`)
      }
      // a few rounds each, then kill p2 when the next move is its own
      await play(async () => liarMoves >= 3 && isProviderTurn(await getGame(reader, d, { gameId })), 'three rounds')
      nodes.p2.kill('SIGKILL')
      await nodes.p2.result
      const g = await getGame(reader, d, { gameId })
      assert.ok(!isOver(g) && isProviderTurn(g), 'killed mid-game, with a move to make')
      await startNode('p2')
      await play(async () => isOver(await getGame(reader, d, { gameId })), 'the end of the game')
    } finally {
      model.close()
    }
    const out = await gameOutcome(reader, d, { gameId, account: addressOf.p2 as Address })
    assert.equal(out?.providerWon, true, 'the honest provider won')
    assert.equal(out?.why, WHY.STEP_CHECKED, 'by the machine, not by a clock: the restarted defence kept moving')
    await until('p2 records its win', () => (statusOf('p2').disputes['provider:won'] ?? 0) >= 1, 30_000)
  })

  test('a provider frozen mid-stream: the client completes on another with the same text', async () => {
    // p2 is the cheapest honest offer: the client asks it first; freeze it at the client's first text.
    // p2 streams while its reservation waits for a block, so it may finish the whole answer and its
    // receipt before this process reacts (a loaded machine); then it is resumed and the job asked again.
    let r: CliResult | undefined
    for (let attempt = 0; attempt < 3; attempt++) {
      const c = startCli(['request', '--bootstrap', addrOf.p1, '--model', modelPath, '--prompt', 'hello world', '--rpc', rpc, '--deployment', depFile, '--wait', '20',
        '--min-offers', '2', '--key', keyFile(6), '--max-tokens', '400', '--stall', '3', '--tries', '2'])
      procs.add(c as Proc)
      let out = ''
      c.stdout?.on('data', (x: string) => {
        if (out === '' && nodes.p2.exitCode === null) nodes.p2.kill('SIGSTOP')
        out += x
      })
      r = await c.result
      if (/after 2 tries/.test(r.err)) break
      nodes.p2.kill('SIGCONT')
    }
    nodes.p2.kill('SIGKILL')
    assert.ok(r)
    assert.equal(r.code, 0, r.err)
    assert.ok(r.out.startsWith(reference), `the text printed once, continuing what p1 alone gives: ${JSON.stringify(r.out.slice(0, 80))}`)
    assert.match(r.err, /after 2 tries/)
  })

  // last: it moves chain time past every challenge window (and ahead of the beacon's clock)
  test('an honest provider finalizes its batches once the challenge window has passed and withdraws what they paid', async () => {
    const claimed = await reader.public.getContractEvents({ address: d.settlement, abi: settlementAbi, eventName: 'BatchClaimed', args: { provider: addressOf.p1 as Address }, fromBlock: 0n })
    assert.ok(claimed.length >= 1, 'p1 claimed batches')
    const rpcCall = (method: string, params: unknown[]) =>
      fetch(rpc, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) }).then((x) => x.json())
    await rpcCall('evm_increaseTime', [Number(d.params.settlement.challengeWindow) + 1])
    await rpcCall('evm_mine', [])
    const final = await until('p1 finalizes every batch and withdraws', async () => {
      const c = statusOf('p1').claims
      // a batch p1 claimed after the jump (its age trigger) opened a new window: move past that one too
      if (c && c.openBatches > 0 && c.finalized >= claimed.length) {
        await rpcCall('evm_increaseTime', [Number(d.params.settlement.challengeWindow) + 1])
        await rpcCall('evm_mine', [])
      }
      return c && c.openBatches === 0 && c.finalized >= claimed.length && BigInt(c.earned) > 0n && c.withdrawn === c.earned && c
    }, 60_000, 500)
    // every batch p1 claimed, including one its age trigger claimed after the jump (finalized and withdrawn too)
    const claimedAll = await reader.public.getContractEvents({ address: d.settlement, abi: settlementAbi, eventName: 'BatchClaimed', args: { provider: addressOf.p1 as Address }, fromBlock: 0n })
    for (const l of claimedAll) assert.equal((await getBatch(reader, d, l.args.batchId!)).status, 2, `batch ${l.args.batchId} final`)
    const finalized = await reader.public.getContractEvents({ address: d.settlement, abi: settlementAbi, eventName: 'BatchFinalized', fromBlock: 0n })
    const paid = finalized.filter((l) => claimedAll.some((c) => c.args.batchId === l.args.batchId)).reduce((sum, l) => sum + l.args.amount!, 0n)
    const withdrawn = await reader.public.getContractEvents({ address: d.settlement, abi: settlementAbi, eventName: 'Withdrawn', args: { account: addressOf.p1 as Address }, fromBlock: 0n })
    assert.equal(withdrawn.reduce((sum, l) => sum + l.args.amount!, 0n), paid, 'withdrawn exactly what the finalizations paid')
    assert.equal(BigInt(final.earned), paid, "the node's books agree with the chain")
    assert.equal((await getBalances(reader, d, addressOf.p1 as Hex)).owed, 0n, 'nothing left owed')
  })
})
