/**
 * The gateway as a node role over a real network on 127.0.0.1: the embedded chain served over
 * JSON-RPC, a provider node (`startNode`, libp2p, offers gossiped) and a client node whose gateway
 * (`startNetworkGateway`) finds the provider's offer through its OfferDiscovery. The `openai`
 * client's answer is the engine's for the seed; `GET /v1/receipts/{id}` returns the job file with
 * its audit status, which turns to claimed (batch and index) once the provider claims; the
 * router learned the job. `reputationOf` is checked on its own.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import OpenAI from 'openai'
import { startCli } from '../../../test/support/cli.js'
import { deposit } from '../../chain/actions/settlement.js'
import { type Deployment, deployTessera, saveDeployment } from '../../chain/client.js'
import { connectClients } from '../../chain/evm/clients.js'
import { createEmbeddedChain, devAccount, type EmbeddedChain } from '../../chain/evm/edr.js'
import { serveJsonRpc } from '../../chain/evm/server.js'
import { generate, loadModel, type Model } from '../../runtime/model.js'
import { defaultDevnetModel } from '../devnet.js'
import { startNode, type TesseraNode } from '../node.js'
import { gatewayModelOf } from './backend.js'
import { type JobAuditStatus, type NetworkGateway, offersOf, reputationOf, startNetworkGateway } from './networkGateway.js'
import { Router } from './routing.js'

const COIN = 10n ** 18n

describe('gateway node role', () => {
  let dir: string
  let chain: EmbeddedChain
  let rpc: { url: string; close(): Promise<void> }
  let d: Deployment
  let provider: TesseraNode
  let client: TesseraNode
  let gw: NetworkGateway
  let model: Model
  const router = new Router({ exploration: 0 })

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-gw-node-'))
    const path = defaultDevnetModel(join(dir, 'model'))
    model = await loadModel(path)
    chain = await createEmbeddedChain({ accounts: 4 })
    const deployer = connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[0].privateKey })
    d = await deployTessera(deployer)
    rpc = await serveJsonRpc(chain.provider, { port: 0 })
    provider = await startNode({
      dataDir: join(dir, 'provider'), roles: new Set(['provider']), models: [path], rpc: rpc.url, deployment: d, passphrase: 'pw', importKey: devAccount(2).privateKey,
      stake: 10n * COIN, pollMs: 200, claimAfterSec: 1, listen: ['/ip4/127.0.0.1/tcp/0'],
    })
    client = await startNode({
      dataDir: join(dir, 'gateway'), roles: new Set(['client']), models: [], rpc: rpc.url, deployment: d, passphrase: 'pw', importKey: devAccount(1).privateKey,
      listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [provider.addrs()[0]],
    })
    const clients = connectClients({ transport: rpc.url, chainId: d.chainId, privateKey: devAccount(1).privateKey })
    await deposit(clients, d, { amount: 10n * COIN })
    gw = await startNetworkGateway({ node: client, clients, deployment: d, models: [gatewayModelOf(model, { name: 'tiny' })], router, apiKeys: ['sk-gateway-test'], followMs: 200 })
  })
  after(async () => {
    await gw?.close()
    await client?.stop()
    await provider?.stop()
    model?.close()
    await rpc?.close()
    await chain?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test('the OpenAI API over the network: the offer is found, the answer is the engine\'s, the receipt carries its audit status', async () => {
    const root = gatewayModelOf(model).root
    for (let i = 0; i < 100 && offersOf(client, root).length === 0; i++) await new Promise((r) => setTimeout(r, 100))
    assert.equal(offersOf(client, root).length, 1, "the gateway sees the provider's offer")
    const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-gateway-test', maxRetries: 0 })
    const r = await openai.completions.create({ model: 'tiny', prompt: 'The harbour', max_tokens: 8, seed: 5, temperature: 0.7 })
    const t = (r as unknown as { tessera: { job_id: string; provider: string; prompt_tokens: number[]; output_tokens: number[] } }).tessera
    assert.equal(t.provider, provider.address)
    const direct = generate(model, { prompt: t.prompt_tokens, seed: 5n, temperature: 0.7, topP: 1, maxTokens: 8 })
    assert.equal(r.choices[0].text, direct.text)
    assert.equal(Math.round(router.statsOf(provider.address).ok), 1, 'the router measured the job')

    const get = async () => {
      const res = await fetch(`${gw.url}/v1/receipts/${t.job_id}`, { headers: { authorization: 'Bearer sk-gateway-test' } })
      assert.equal(res.status, 200)
      return (await res.json()) as { tokens: number[]; signed: { requestDigest: string }; audit: JobAuditStatus }
    }
    const first = await get()
    assert.deepEqual(first.tokens, direct.outputTokens)
    assert.equal(first.signed.requestDigest, t.job_id)
    assert.equal(typeof first.audit.claimed, 'boolean')
    let audit = first.audit
    for (let i = 0; i < 150 && !audit.claimed; i++) {
      await new Promise((r) => setTimeout(r, 200))
      audit = (await get()).audit
    }
    assert.equal(audit.claimed, true, 'the provider claimed the job')
    assert.match(audit.batchId ?? '', /^\d+$/)
    assert.equal(audit.index, 0)
    assert.equal(audit.drawn, false, 'no auditor registered: nobody drawn')
    assert.equal(audit.state, 'none')
    assert.equal((await fetch(`${gw.url}/v1/receipts/${t.job_id}`)).status, 401, 'receipts need the key too')
  })

  test('tessera node start --role client,gateway: the OpenAI API on --gateway-port against the --rpc chain, keys from a file, Ctrl-C stops it', async () => {
    const depFile = join(dir, 'deployment.json')
    saveDeployment(depFile, d)
    writeFileSync(join(dir, 'pass'), 'pw\n')
    writeFileSync(join(dir, 'keys'), '# gateway keys\nsk-from-a-file-1\n')
    const child = startCli([
      'node', 'start', '--data', join(dir, 'cli-gateway'), '--role', 'client,gateway', '--model', join(dir, 'model', 'tiny-q8_0.gguf'), '--rpc', rpc.url,
      '--deployment', depFile, '--bootstrap', provider.addrs()[0], '--passphrase-file', join(dir, 'pass'), '--gateway-port', '0', '--api-key-file', join(dir, 'keys'),
      '--rate-limit', '100/min',
    ])
    try {
      let out = ''
      child.stdout!.on('data', (b: Buffer) => (out += b.toString()))
      const url = await new Promise<string>((ok, fail) => {
        const t = setTimeout(() => fail(new Error(`no gateway line in 60 s:\n${out}`)), 60_000)
        const check = () => {
          const m = /gateway at (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(out)
          if (m && / ready: /.test(out)) {
            clearTimeout(t)
            ok(m[1])
          }
        }
        child.stdout!.on('data', check)
        child.once('exit', () => fail(new Error(`exited:\n${out}`)))
      })
      assert.equal((await fetch(`${url}/v1/models`)).status, 401)
      const models = (await (await fetch(`${url}/v1/models`, { headers: { authorization: 'Bearer sk-from-a-file-1' } })).json()) as { data: { id: string }[] }
      assert.equal(models.data.length, 1)
      assert.match(out, /has no escrow/, 'a gateway without escrow says so')
      child.kill('SIGINT')
      const r = await child.result
      assert.equal(r.code, 130)
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
    }
  })

  test('reputation from audit verdicts: unaudited 1, one invalid verdict excluded, mostly valid kept', () => {
    assert.equal(reputationOf(0, 0), 1)
    assert.ok(reputationOf(0, 1) < 0.5)
    assert.ok(reputationOf(5, 1) >= 0.5)
    const r = new Router()
    r.setReputation('0xabcd', reputationOf(0, 1))
    assert.equal(r.eligible('0xABCD'), false, 'a checksummed address is the same provider as its lowercase form')
  })
})
