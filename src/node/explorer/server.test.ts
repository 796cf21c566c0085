// The explorer's HTTP side over a real indexer on the embedded chain: the JSON API after an honest
// and a cheated job (attackJob plays the game in-process), the SSE stream announcing the job and
// the game as they happen, the page and its libraries served, and what it refuses (writes, paths
// outside the page, unknown ids).
import assert from 'node:assert/strict'
import { get, request } from 'node:http'
import { after, before, test } from 'node:test'
import { attackJob } from '../../dispute/attack.js'
import type { DisputeModel } from '../../dispute/model.js'
import { createDisputeDevnet } from '../../../test/support/disputeDevnet.js'
import { GREEDY, tinyDisputeModel } from '../../../test/support/disputeJobs.js'
import { createIndexer } from './indexer.js'
import { type RunningExplorer, startExplorer } from './server.js'

let model: DisputeModel
let net: Awaited<ReturnType<typeof createDisputeDevnet>>
let ex: RunningExplorer
before(async () => {
  model = await tinyDisputeModel('tiny', 'q8_0', 3)
  net = await createDisputeDevnet()
  ex = await startExplorer({ indexer: createIndexer({ clients: net.deployer, deployment: net.d }), port: 0, pollMs: 100, maxStreams: 2,
    // what the node holds for a job, here forged: the job page must say it does not verify
    transcriptOf: async () => ({ chainId: 1, request: { provider: '0x0' }, text: 'forged' }),
  })
})
after(async () => {
  await ex?.close()
  await net?.close()
  model?.close()
})

const params = { ...GREEDY, repeatPenalty: 1, repeatLastN: 4, maxTokens: 3, stop: [] }
const base = () => `http://127.0.0.1:${ex.port}`

function fetchRaw(path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const r = request(`${base()}${path}`, { method }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }))
    })
    r.on('error', reject)
    r.setTimeout(10_000, () => r.destroy(new Error(`${path}: timed out`)))
    r.end()
  })
}
const json = async (path: string) => {
  const r = await fetchRaw(path)
  assert.equal(r.status, 200, `${path}: ${r.body}`)
  return JSON.parse(r.body)
}

test('the API and the event stream follow an honest job and a cheater caught', async () => {
  // the stream: every event until the game's resolution is announced (bounded by 60 s)
  const seen: { event: string; data: { jobs?: string[]; games?: string[] } }[] = []
  const sse = get(`${base()}/explorer/events`)
  const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
    sse.on('response', resolve)
    sse.on('error', reject)
  })
  assert.equal(res.headers['content-type'], 'text/event-stream')
  let buf = ''
  const gameSeen = new Promise<void>((resolve) => {
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      buf += chunk
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const block = buf.slice(0, i)
        buf = buf.slice(i + 2)
        const event = /^event: (.*)$/m.exec(block)?.[1]
        const data = /^data: (.*)$/m.exec(block)?.[1]
        if (event && data) seen.push({ event, data: JSON.parse(data) })
        if (event === 'change' && seen.some((s) => (s.data.games?.length ?? 0) > 0)) resolve()
      }
    })
  })
  try {
    await attackJob({ net, model, job: { prompt: [11, 250, 3], params, seed: 1n }, seed: 1, nonce: 0n })
    await net.topUp()
    const r = await attackJob({ net, model, job: { prompt: [11, 250, 3], params, seed: 2n }, cheat: 'silu', seed: 7, nonce: 1n })
    assert.equal(r.winner, 'challenger')
    await Promise.race([gameSeen, new Promise((_, rej) => setTimeout(() => rej(new Error('no game change on the stream in 60 s')), 60_000).unref())])
  } finally {
    sse.destroy()
  }
  assert.equal(seen[0].event, 'hello')
  assert.ok(seen.some((s) => s.event === 'change' && (s.data.jobs?.length ?? 0) > 0), 'a job change was pushed')

  // wait for the indexer to have read the whole game (its resolution may be a poll behind)
  let disputes: { disputes: { id: string; resolved?: unknown }[] } = { disputes: [] }
  for (let i = 0; i < 100 && !disputes.disputes[0]?.resolved; i++) {
    disputes = await json('/explorer/api/disputes')
    if (!disputes.disputes[0]?.resolved) await new Promise((r) => setTimeout(r, 100))
  }
  assert.equal(disputes.disputes.length, 1)
  const net1 = await json('/explorer/api/network')
  assert.equal(net1.providers.length, 1)
  assert.equal(net1.providers[0].games.lost, 1)
  assert.match(net1.providers[0].stake.active, /^\d+$/, 'amounts as decimal strings')
  const jobs = await json('/explorer/api/jobs')
  assert.equal(jobs.jobs.length, 2)
  const lost = jobs.jobs.find((j: { state: string }) => j.state === 'lost')
  assert.ok(lost, 'the cheated job is lost')
  const job = await json(`/explorer/api/jobs/${lost.id}`)
  assert.equal(job.disputes.length, 1)
  assert.equal(job.verification.checked, true, 'the held transcript is verified')
  assert.equal(job.verification.ok, false, 'a forged transcript does not verify')
  assert.ok(job.verification.problems.length > 0)
  const game = await json(`/explorer/api/disputes/${disputes.disputes[0].id}`)
  assert.equal(game.resolved.providerWon, false)
  assert.equal(game.levels[0].name, 'trace')
  assert.ok(game.levels[0].rounds[0].children.length >= 2)
  assert.equal(BigInt(game.slashes[0].amount), r0(net1), 'the slash on the game is the provider’s')
  const eco = await json('/explorer/api/economics')
  assert.equal(eco.points.at(-1).jobs, 2)
})

const r0 = (n: { providers: { slashed: string }[] }) => BigInt(n.providers[0].slashed)

test('the page, its modules and the browser libraries are served', async () => {
  const page = await fetchRaw('/explorer/')
  assert.equal(page.status, 200)
  assert.match(page.type, /text\/html/)
  assert.match(page.body, /importmap/)
  for (const p of ['/explorer/app.js', '/explorer/styles.css', '/explorer/vendor/preact.module.js', '/explorer/vendor/hooks.module.js', '/explorer/vendor/htm.module.js', '/explorer/vendor/uPlot.esm.js']) {
    const r = await fetchRaw(p)
    assert.equal(r.status, 200, p)
    assert.ok(r.body.length > 100, p)
  }
  assert.equal((await fetchRaw('/')).status, 302, 'the root redirects to the explorer')
})

test('refused: writes, paths outside the page, unknown ids and files, a stream past the cap', async () => {
  const open = [get(`${base()}/explorer/events`), get(`${base()}/explorer/events`)]
  try {
    await Promise.all(open.map((r) => new Promise((resolve) => r.on('response', resolve))))
    assert.equal((await fetchRaw('/explorer/events')).status, 503, 'a third stream is refused')
  } finally {
    for (const r of open) r.destroy()
  }
  assert.equal((await fetchRaw('/explorer/api/network', 'POST')).status, 405)
  for (const p of ['/explorer/..%2f..%2f..%2fpackage.json', '/explorer/../../package.json', '/explorer/vendor/../../package.json', '/explorer/indexer.ts', '/explorer/vendor/nope.js', '/explorer/api/jobs/9999-0', '/explorer/api/disputes/77', '/explorer/api/disputes/x', '/explorer/api/secrets']) {
    const r = await fetchRaw(p)
    assert.ok(r.status === 404 || r.status === 302, `${p}: ${r.status}`)
    assert.doesNotMatch(r.body, /"name": "tessera"/, `${p}: package.json not served`)
  }
})
