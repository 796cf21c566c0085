// The provider's chain view follows blocks, not a timer (followProviderView): on the embedded
// chain, with the fallback timer at a minute, a stake added, an unstake and a slash (an
// availability challenge left unanswered) are each in the view as soon as their own block is,
// before any other block; a quiet chain costs block-number polls and no refresh.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { challengeAvailability, claimWithholding, getAuditParams, jobProof } from '../chain/actions/audits.js'
import { getStake, stake, unstake } from '../chain/actions/settlement.js'
import { claimJob, createDevnet, type Devnet, h } from '../chain/devnet.js'
import { followBlocks, followProviderView } from './chainWatch.js'
import type { ChainFacts, ProviderView } from './serveJob.js'

const COIN = 10n ** 18n

describe('the provider view refreshes on new blocks', () => {
  let net: Devnet
  let view: ProviderView
  const ac = new AbortController()
  const refreshes: { block: bigint; facts: ChainFacts }[] = []
  let done: Promise<void>

  before(async () => {
    net = await createDevnet({ providerStake: 10n * COIN })
    const f = followProviderView(
      { clients: net.provider, deployment: net.d },
      {
        pollMs: 20, fallbackMs: 60_000, signal: ac.signal,
        onFacts: async (facts) => {
          refreshes.push({ block: await net.deployer.public.getBlockNumber({ cacheTime: 0 }), facts })
        },
      },
    )
    view = f.view
    done = f.done
  })
  after(async () => {
    ac.abort()
    await done
    await net?.close()
  })

  /** Waits (at most 3 s, far below the 60 s fallback) for a refresh whose facts pass `ok`; returns it. */
  async function seen(ok: (f: ChainFacts) => boolean) {
    const end = Date.now() + 3_000
    for (;;) {
      const r = refreshes.find((x) => ok(x.facts))
      if (r) return r
      if (Date.now() > end) throw new Error(`not in the view within 3 s: ${JSON.stringify(refreshes.at(-1), (_, v) => (typeof v === 'bigint' ? v.toString() : v))}`)
      await new Promise((r) => setTimeout(r, 10))
    }
  }

  test('a stake added is in the view at its own block', async () => {
    const before = (await view.facts()).active
    await stake(net.provider, net.d, { role: 'provider', amount: COIN })
    const at = await net.deployer.public.getBlockNumber({ cacheTime: 0 })
    const r = await seen((f) => f.active === before + COIN)
    assert.equal(r.block, at, 'refreshed at the stake block itself, no later block needed')
    assert.equal((await view.facts()).active, before + COIN)
  })

  test('an unstake is in the view at its own block', async () => {
    const before = (await view.facts()).active
    await unstake(net.provider, net.d, { amount: 2n * COIN })
    const at = await net.deployer.public.getBlockNumber({ cacheTime: 0 })
    const r = await seen((f) => f.active === before - 2n * COIN)
    assert.equal(r.block, at)
  })

  test('a slash (an unanswered availability challenge) is in the view at the slashing block', async () => {
    const j = await claimJob(net, h('a job nobody will post'), { nonce: 1n })
    const p = await getAuditParams(net.deployer, net.d)
    const job = jobProof(net.chain.chainId, net.d.settlement, [{ item: j.item, client: net.client.account.address }], 0)
    await challengeAvailability(net.challenger, net.d, { batchId: j.batchId, index: 0n, job, bond: p.challengeBond })
    await net.warp(p.answerWindow + 1n)
    const before = await getStake(net.deployer, net.d, net.provider.account.address)
    await seen((f) => f.active === before.active)
    await claimWithholding(net.challenger, net.d, { batchId: j.batchId, index: 0n })
    const at = await net.deployer.public.getBlockNumber({ cacheTime: 0 })
    const after = await getStake(net.deployer, net.d, net.provider.account.address)
    assert.ok(after.active < before.active, 'slashed on chain')
    const r = await seen((f) => f.active === after.active)
    assert.equal(r.block, at)
  })

  test('a quiet chain: block-number polls only, no refresh, and the view answers from its cache', async () => {
    // The previous test's last block may still be in flight: its refresh can read the slashed state
    // while the follower has only seen the block before, then refresh once more for the last block.
    // Let the follower settle (no refresh for 150 ms, bounded) before counting.
    for (let i = 0, m = -1; i < 20 && m !== refreshes.length; i++) {
      m = refreshes.length
      await new Promise((r) => setTimeout(r, 150))
    }
    const n = refreshes.length
    await new Promise((r) => setTimeout(r, 300))
    assert.equal(refreshes.length, n, 'no block, no refresh')
    const t0 = Date.now()
    await view.facts()
    assert.ok(Date.now() - t0 < 50, 'from the cache')
  })
})

test('followBlocks: one call per new block number, a failing handler retried at the next poll, stops on abort', async () => {
  let block = 5n
  const c = { public: { getBlockNumber: async () => block } } as unknown as Parameters<typeof followBlocks>[0]
  const calls: bigint[] = []
  const errors: unknown[] = []
  let failOnce = true
  const ac = new AbortController()
  const loop = followBlocks(c, {
    pollMs: 5, signal: ac.signal, onError: (e) => errors.push(e),
    onBlock: async (n) => {
      if (n === 7n && failOnce) {
        failOnce = false
        throw new Error('a read failed')
      }
      calls.push(n)
    },
  })
  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms))
  await wait(40)
  block = 7n
  await wait(60)
  ac.abort()
  await loop
  assert.deepEqual(calls, [5n, 7n], 'block 5 once, block 7 after its failed first try')
  assert.equal(errors.length, 1)
})
