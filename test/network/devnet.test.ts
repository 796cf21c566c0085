/**
 * `tessera devnet` end to end, as a user meets it: the command started as a process (2 providers,
 * 1 cheating provider, 1 auditor, every job drawn for audit), its banner awaited, then the official
 * `openai` client against the gateway it prints: chat completions streamed and not, each with a
 * receipt whose signature checks and whose replay is valid exactly when an honest provider served
 * it. The cheater (cheapest, so routed first) is caught by the auditor and slashed on chain, after
 * which the gateway routes around it. Ctrl-C stops every process of the devnet within seconds, and
 * a restart on the same --data resumes the same chain. On that same devnet, the explorer its banner
 * prints is checked in headless Chromium (test/support/browser.ts): providers, a job appearing live,
 * the cheater's dispute with its bisection, the slash, no console errors, screenshots.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { type AddressInfo, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import OpenAI from 'openai'
import type { Address } from 'viem'
import { getStake, getTotals } from '../../src/chain/actions/settlement.js'
import { loadDeployment } from '../../src/chain/client.js'
import { connectClients } from '../../src/chain/evm/clients.js'
import { devAccount } from '../../src/chain/evm/edr.js'
import { checkSignature } from '../../src/cli/commands/signedReceipt.js'
import { gatewayModelOf } from '../../src/node/gateway/backend.js'
import type { SignedReceipt } from '../../src/node/transcript.js'
import { DEFAULT_MODEL_PATH } from '../../src/runtime/defaultModel.js'
import { generate, loadModel, type Model, verify } from '../../src/runtime/model.js'
import type { Receipt } from '../../src/trace/receipt.js'
import { launchChromium, noChromium, openPage, screenshotDir, WAIT_MS } from '../support/browser.js'
import { cli, expectOneLine, startCli, waitFor } from '../support/cli.js'

const COIN = 10n ** 18n
const READY_MS = 240_000
type Running = ReturnType<typeof startCli> & { log: () => string; exited: () => boolean }
type Banner = { gateway: string; chain: string; explorer: string; nodes: { role: string; name: string; address: Address; pid: number }[] }
type Tessera = { provider: Address; seed: string; job_id: string; receipt: Receipt; signed: SignedReceipt; prompt_tokens: number[]; output_tokens: number[] }

const dir = mkdtempSync(join(tmpdir(), 'tessera-devnet-'))
const data = join(dir, 'devnet')

function startDevnet(): Running {
  const child = startCli(['devnet', '--providers', '2', '--auditors', '1', '--cheaters', '1', '--port', '0', '--data', data, '--audit-bps', '10000'])
  let out = ''
  let done = false
  child.stdout?.on('data', (d: string) => (out += d))
  child.stderr?.on('data', (d: string) => (out += d))
  child.on('close', () => (done = true))
  return Object.assign(child, { log: () => out, exited: () => done })
}

async function banner(p: Running): Promise<Banner> {
  await waitFor(() => p.exited() || /Ctrl-C stops every node/.test(p.log()), true, READY_MS)
  assert.ok(!p.exited(), `the devnet exited before its banner:\n${p.log()}`)
  const text = p.log()
  const gateway = /gateway\s+(http:\/\/127\.0\.0\.1:\d+\/v1)/.exec(text)?.[1]
  const chain = /chain\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(text)?.[1]
  const explorer = /explorer\s+(http:\/\/127\.0\.0\.1:\d+\S*)/.exec(text)?.[1]
  assert.ok(gateway && chain && explorer, text)
  const nodes = [...text.matchAll(/^\s+(provider|cheater|auditor)\s+(\S+) (0x[0-9a-fA-F]{40}) pid (\d+)$/gm)].map((m) => ({ role: m[1], name: m[2], address: m[3] as Address, pid: Number(m[4]) }))
  assert.equal(nodes.length, 4, text)
  return { gateway, chain, explorer, nodes }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** SIGINT to the devnet; resolves with how long it took to exit. */
async function interrupt(p: Running): Promise<{ ms: number; code: number | null }> {
  const t0 = Date.now()
  p.kill('SIGINT')
  const r = await p.result
  return { ms: Date.now() - t0, code: r.code }
}

describe('tessera devnet', { timeout: 600_000 }, () => {
  let net: Running
  let b: Banner
  let model: Model
  let modelName: string
  let openai: OpenAI
  let readyMs = 0
  const started: Running[] = []

  before(async () => {
    const t0 = Date.now()
    net = startDevnet()
    started.push(net)
    b = await banner(net)
    readyMs = Date.now() - t0
    console.log(`# cold devnet ready in ${(readyMs / 1000).toFixed(1)} s`)
    // the shipped default model (models/default/), what `npm start` serves
    model = await loadModel(DEFAULT_MODEL_PATH)
    modelName = gatewayModelOf(model).name
    openai = new OpenAI({ baseURL: b.gateway, apiKey: 'x', maxRetries: 0, timeout: 120_000 })
  })
  after(async () => {
    for (const p of started) if (!p.exited()) p.kill('SIGKILL')
    for (const n of b?.nodes ?? []) if (alive(n.pid)) process.kill(n.pid, 'SIGKILL')
    model?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const cheater = () => b.nodes.find((n) => n.role === 'cheater')!
  const honest = () => b.nodes.filter((n) => n.role === 'provider').map((n) => n.address)
  const stakeOf = async (rpc: string, who: Address) => {
    const d = loadDeployment(join(data, 'deployment.json'))
    return (await getStake(connectClients({ transport: rpc, chainId: d.chainId, privateKey: devAccount(0).privateKey }), d, who)).active
  }

  const burnedOn = async (rpc: string) => {
    const d = loadDeployment(join(data, 'deployment.json'))
    return (await getTotals(connectClients({ transport: rpc, chainId: d.chainId, privateKey: devAccount(0).privateKey }), d)).burned
  }

  /** The receipt is signed by the provider named; its replay is valid iff that provider is honest, and then equals the engine's own answer. */
  async function checkReceipt(t: Tessera, text: string): Promise<'honest' | 'cheater'> {
    assert.deepEqual(await checkSignature(t.receipt, t.signed), { ok: true, signer: t.provider })
    const v = verify(model, { receipt: t.receipt, promptTokens: t.prompt_tokens, outputTokens: t.output_tokens, text })
    if (t.provider === cheater().address) {
      assert.equal(v.valid, false, 'the cheater\'s trace does not replay')
      cheaterJobs.push(t.job_id)
      return 'cheater'
    }
    assert.ok(honest().includes(t.provider), `served by ${t.provider}, not a devnet provider`)
    assert.ok(v.valid, JSON.stringify(v))
    const direct = generate(model, { prompt: t.prompt_tokens, seed: BigInt(t.seed), ...t.receipt.params })
    assert.equal(text, direct.text)
    assert.deepEqual(t.output_tokens, direct.outputTokens)
    return 'honest'
  }

  const servedBy: string[] = []
  /** Job ids the cheater served. */
  const cheaterJobs: string[] = []

  test('a busy --port is one line before any node starts, and leaves the data folder unlocked', async () => {
    const busy = createServer()
    await new Promise<void>((ok) => busy.listen(0, '127.0.0.1', ok))
    const port = (busy.address() as AddressInfo).port
    const other = join(dir, 'busy')
    try {
      await expectOneLine(['devnet', '--port', String(port), '--data', other], 1, new RegExp(`port ${port} is in use`))
    } finally {
      busy.close()
    }
    assert.deepEqual(readdirSync(other), ['nodes'], 'nothing started, no lock left')
  })

  test("the default model's lineage is on the devnet's chain: tessera model lineage reads back its datasets, weights and run root, every link it checks holding", async () => {
    const shipped = join(DEFAULT_MODEL_PATH, '..')
    const run = JSON.parse(readFileSync(join(shipped, 'run.json'), 'utf8')) as { manifestHash: string; runRoot: string }
    const manifest = JSON.parse(readFileSync(join(shipped, 'manifest.json'), 'utf8')) as { data: { root: string }[] }
    assert.match(net.log(), /registered the model \S+ \(0x[0-9a-f]+\.\.\.\) with its training record/)
    const r = await cli('model', 'lineage', DEFAULT_MODEL_PATH, '--training-manifest', join(shipped, 'manifest.json'), '--rpc', b.chain, '--deployment', join(data, 'deployment.json'))
    assert.equal(r.code, 0, `${r.out}\n${r.err}`)
    for (const [i, x] of manifest.data.entries()) assert.match(r.out, new RegExp(`dataset ${i} ${x.root}, weight 50.00%`))
    assert.match(r.out, new RegExp(`run root\\s+${run.runRoot}`))
    assert.match(r.out, new RegExp(`manifest hash\\s+${run.manifestHash}`))
    assert.doesNotMatch(r.out, /FAILED/)
  })

  test('the openai client streams and does not stream chat completions, each with a receipt that verifies', async () => {
    const r = await openai.chat.completions.create({ model: modelName, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8, seed: 5 })
    const t = (r as unknown as { tessera: Tessera }).tessera
    servedBy.push(await checkReceipt(t, r.choices[0].message.content ?? ''))
    const job = await fetch(`${b.gateway}/receipts/${t.job_id}`)
    assert.equal(job.status, 200)
    assert.ok(((await job.json()) as { signed?: unknown }).signed, 'the job file carries the signed receipt')

    const chunks: OpenAI.ChatCompletionChunk[] = []
    const stream = await openai.chat.completions.create({ model: modelName, messages: [{ role: 'user', content: 'The harbour' }], max_tokens: 8, seed: 7, stream: true })
    for await (const c of stream) chunks.push(c)
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')
    const ts = (chunks.at(-1) as unknown as { tessera: Tessera }).tessera
    assert.ok(chunks.at(-1)?.choices[0]?.finish_reason, 'the last chunk ends the answer')
    servedBy.push(await checkReceipt(ts, text))
  })

  test('the cheater (cheapest, routed first) is caught by the auditor and slashed on chain; the gateway then routes around it', async () => {
    const t0 = Date.now()
    // the cheater undercuts the others: it has served at least one of the jobs above, or does now
    // (a try that failed on a loaded machine cools the cheater down for the router's 60 s: ask past that)
    for (let i = 0; i < 40 && !servedBy.includes('cheater') && Date.now() - t0 < 90_000; i++) {
      if (i >= 4) await new Promise((r) => setTimeout(r, 2000))
      const r = await openai.chat.completions.create({ model: modelName, messages: [{ role: 'user', content: `try ${i}` }], max_tokens: 4 })
      servedBy.push(await checkReceipt((r as unknown as { tessera: Tessera }).tessera, r.choices[0].message.content ?? ''))
    }
    const failedTries = net.log().split('\n').filter((l) => /gateway: 0x/.test(l))
    if (failedTries.length) console.log(`# the gateway's failed tries: ${failedTries.join(' | ')}`)
    assert.ok(servedBy.includes('cheater'), `the cheater got none of ${servedBy.length} jobs; the gateway's failed tries: ${failedTries.join(' | ') || 'none'}`)
    await waitFor(() => /cheater-1 was slashed/.test(net.log()), true, 150_000)
    const stake = await stakeOf(b.chain, cheater().address)
    assert.ok(stake < 10n * COIN, `slashed on chain: ${stake}`)
    for (const p of b.nodes.filter((n) => n.role === 'provider')) assert.equal(await stakeOf(b.chain, p.address), 10n * COIN, `${p.name} keeps its stake`)
    console.log(`# cheater slashed ${((Date.now() - t0) / 1000).toFixed(1)} s after its jobs`)
    // the job it was caught on shows, at GET /v1/receipts/{id}, its audit: drawn, by the auditor, verdict invalid
    const audits = await Promise.all(cheaterJobs.map(async (id) => ((await (await fetch(`${b.gateway}/receipts/${id}`)).json()) as { audit: { claimed: boolean; drawn: boolean; auditor?: string; verdict?: string } }).audit))
    const caught = audits.find((a) => a.verdict === 'invalid')
    assert.ok(caught, `a cheater job's receipt shows the invalid verdict: ${JSON.stringify(audits)}`)
    assert.equal(caught.claimed, true)
    assert.equal(caught.drawn, true)
    assert.equal(caught.auditor?.toLowerCase(), b.nodes.find((n) => n.role === 'auditor')!.address.toLowerCase())
    const r = await openai.chat.completions.create({ model: modelName, messages: [{ role: 'user', content: 'After the slash' }], max_tokens: 8, seed: 11 })
    assert.equal(await checkReceipt((r as unknown as { tessera: Tessera }).tessera, r.choices[0].message.content ?? ''), 'honest')
  })

  test('the explorer the banner prints, in headless Chromium: the three providers, a job appearing live, the cheater\'s dispute with its four levels, the slash, no console errors', { skip: noChromium, timeout: 120_000 }, async (t) => {
    // runs after the slash above (the chain has the game and the slash): each wait below is bounded
    // by WAIT_MS (15 s) from when the chain has what the page must show
    const shots = screenshotDir('tessera-devnet-explorer-')
    const lc = (a: string | null) => a?.toLowerCase()
    const browser = await launchChromium()
    try {
      const { page, problems } = await openPage(browser)
      const t0 = Date.now()
      await page.goto(b.explorer, { waitUntil: 'load' })
      await page.getByRole('status').filter({ hasText: 'Live' }).waitFor()
      t.diagnostic(`page live ${Date.now() - t0} ms after goto`)

      // the banner's three providers (two honest, the cheater, shown slashed) and its auditor, by full address
      const providers = page.getByRole('region', { name: 'Providers' })
      await providers.locator('tbody tr').nth(2).waitFor()
      const listed = await Promise.all((await providers.locator('tbody th code').all()).map((c) => c.getAttribute('title')))
      const want = b.nodes.filter((n) => n.role !== 'auditor').map((n) => n.address.toLowerCase())
      assert.deepEqual(listed.map(lc).sort(), want.sort(), 'exactly the devnet\'s providers')
      await providers.locator('tr.slashed').first().waitFor()
      assert.equal(lc(await providers.locator('tr.slashed th code').getAttribute('title')), lc(cheater().address), 'the cheater\'s row is the slashed one')
      // latency: the gateway's node pings the peers whose offers it holds (every 10 s); the honest providers answer
      type NetApi = { providers: { address: string; latencyMs: number | null }[] }
      const honestLatency = async () => {
        const net = (await (await fetch(new URL('/explorer/api/network', b.explorer))).json()) as NetApi
        return net.providers.filter((p) => lc(p.address) !== lc(cheater().address)).map((p) => p.latencyMs)
      }
      let lat = await honestLatency()
      for (let i = 0; i < 30 && !lat.every((ms) => typeof ms === 'number'); i++) {
        await new Promise((r) => setTimeout(r, 500))
        lat = await honestLatency()
      }
      assert.ok(lat.length === 2 && lat.every((ms) => typeof ms === 'number' && ms >= 0 && ms < 5_000), `honest providers' latency: ${lat}`)
      await page.getByRole('cell', { name: / ms$/ }).first().waitFor()
      const auditor = b.nodes.find((n) => n.role === 'auditor')!
      const auditors = page.getByRole('region', { name: 'Auditors' })
      assert.equal(lc(await auditors.locator('tbody th code').first().getAttribute('title')), lc(auditor.address))

      // the cheater's lost game in the list (already on chain: WAIT_MS)
      const lost = page.locator('li[data-game]').filter({ hasText: 'provider lost' }).first()
      await lost.waitFor()
      assert.match((await lost.textContent()) ?? '', /4 level\(s\).* slashed/)

      // one more request through the gateway while the page is open: its row appears without a
      // reload (the marker set on the window survives), within WAIT_MS of the answer (the
      // reservation is on chain before the answer streams)
      await page.evaluate('window.__tesseraNoReload = 1')
      const before = (await page.evaluate("[...document.querySelectorAll('tr[data-job]')].map((r) => r.dataset.job)")) as string[]
      const r0 = Date.now()
      const r = await openai.chat.completions.create({ model: modelName, messages: [{ role: 'user', content: 'Watched' }], max_tokens: 4, seed: 13 })
      const tj = (r as unknown as { tessera: Tessera }).tessera
      const answered = Date.now()
      // its row: the reservation's (r-<digest>) or, had a claim already replaced it, the claimed
      // job whose request digest is this one; other rows may come and go meanwhile (earlier jobs claimed)
      const origin = new URL(b.explorer).origin
      const checked = new Set(before)
      let found: string | undefined
      let shownProvider: string | undefined
      for (const until = answered + WAIT_MS; !found && Date.now() < until; await new Promise((ok) => setTimeout(ok, 100))) {
        const rows = (await page.evaluate("[...document.querySelectorAll('tr[data-job]')].map((r) => [r.dataset.job, r.querySelector('td code')?.title])")) as [string, string | undefined][]
        for (const [id, provider] of rows) {
          if (checked.has(id)) continue
          checked.add(id)
          const digest = id === `r-${tj.job_id.slice(2, 14)}` ? tj.job_id : ((await (await fetch(`${origin}/explorer/api/jobs/${id}`)).json()) as { requestDigest?: string }).requestDigest
          if (lc(digest ?? null) === lc(tj.job_id)) [found, shownProvider] = [id, provider]
        }
      }
      assert.ok(found, `no row for job ${tj.job_id} within ${WAIT_MS} ms of its answer`)
      t.diagnostic(`the new job's row (${found}) shown ${Date.now() - answered} ms after its answer (${answered - r0} ms to answer)`)
      assert.equal(await page.evaluate('window.__tesseraNoReload'), 1, 'no reload')
      assert.equal(lc(shownProvider ?? null), lc(tj.provider), 'its row names the provider the receipt names')
      await page.screenshot({ path: join(shots, 'devnet-overview.png'), fullPage: true })

      // the dispute's page: its bisection level by level, the one-step verdict, the slash
      await lost.getByRole('link').click()
      await page.getByRole('heading', { name: /^Dispute \d+/ }).waitFor()
      await page.getByRole('heading', { name: 'Level 3: micro-step' }).waitFor()
      assert.deepEqual(await page.locator('li.level h4').allTextContents(), ['Level 0: trace', 'Level 1: op', 'Level 2: element', 'Level 3: micro-step'])
      assert.ok((await page.locator('svg.cells rect.chosen').count()) >= 3, 'a chosen child drawn per round')
      const people = page.locator('dl.grid dd code')
      assert.equal(lc(await people.nth(0).getAttribute('title')), lc(cheater().address), 'the cheater is the game\'s provider')
      assert.equal(lc(await people.nth(1).getAttribute('title')), lc(auditor.address), 'the auditor is its challenger')
      assert.match((await page.locator('main').textContent()) ?? '', /The provider's step was wrong: it lost/)
      const slash = page.locator('ul.slashes li').first()
      await slash.waitFor()
      assert.match((await slash.textContent()) ?? '', /slashed from .* to the challenger .* burned/)
      assert.equal(lc(await slash.locator('code').first().getAttribute('title')), lc(cheater().address))
      await page.screenshot({ path: join(shots, 'devnet-dispute.png'), fullPage: true })

      // the caught job's page
      await page.getByRole('link', { name: /^job \d+ of batch \d+$/ }).click()
      await page.getByRole('heading', { name: 'Receipt' }).waitFor()
      assert.match((await page.locator('main').textContent()) ?? '', /lost \(slashed\)/)
      await page.screenshot({ path: join(shots, 'devnet-job.png'), fullPage: true })

      assert.deepEqual(problems, [], 'no console errors')
      t.diagnostic(`screenshots in ${shots}; browser checks took ${Date.now() - t0} ms`)
    } finally {
      await browser.close()
    }
  })

  test('a second devnet on the same --data is refused; Ctrl-C stops every process within seconds; a restart on the same --data resumes the same chain', async () => {
    const burnedBefore = await burnedOn(b.chain)
    assert.ok(burnedBefore > 0n)
    const deployment = readFileSync(join(data, 'deployment.json'), 'utf8')
    // a second devnet on the same folder is refused (both would write one chain journal)
    await expectOneLine(['devnet', '--port', '0', '--data', data], 1, /another devnet \(pid \d+\) runs on /)
    const stopped = await interrupt(net)
    assert.equal(stopped.code, 130, net.log().slice(-2000))
    assert.ok(stopped.ms < 10_000, `stopped in ${stopped.ms} ms`)
    console.log(`# devnet stopped in ${stopped.ms} ms after SIGINT`)
    for (const n of b.nodes) assert.ok(!alive(n.pid), `${n.name} (pid ${n.pid}) still runs`)

    const t0 = Date.now()
    net = startDevnet()
    started.push(net)
    b = await banner(net)
    console.log(`# resumed devnet ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    assert.match(net.log(), /chain resumed from .* journal entries replayed/)
    assert.equal(readFileSync(join(data, 'deployment.json'), 'utf8'), deployment, 'the same contracts')
    assert.equal(await burnedOn(b.chain), burnedBefore, 'the slashes are still there')
    // the gateway learned the earlier slash from the chain: it routes nothing to the cheater, whose
    // node topped its stake back up to --stake at start
    assert.match(net.log(), /cheater-1 was slashed before this start/)
    openai = new OpenAI({ baseURL: b.gateway, apiKey: 'x', maxRetries: 0, timeout: 120_000 })
    const r = await openai.chat.completions.create({ model: modelName, messages: [{ role: 'user', content: 'Again' }], max_tokens: 4 })
    assert.equal(await checkReceipt((r as unknown as { tessera: Tessera }).tessera, r.choices[0].message.content ?? ''), 'honest')
    const again = await interrupt(net)
    assert.equal(again.code, 130)
    for (const n of b.nodes) assert.ok(!alive(n.pid), `${n.name} (pid ${n.pid}) still runs`)
  })
})
