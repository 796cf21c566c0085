/**
 * Stake locked against pending claims (docs/CHAIN.md "Economics"): a claim locks its slash
 * exposure amount / (p * (1 - rewardBps)) = amount * 10,000 * 10,000 / (auditBps * (10,000 - rewardBps))
 * of the provider's active stake until the batch finalizes (40x the price at the defaults p = 5%,
 * rewardBps = 50%); a lost dispute consumes the job's share of the lock and never touches another
 * claim's lock.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  claimBatch, deposit, exposureOf, finalizeBatch, getBalances, getBatch, getStake, getTotals, stake,
  unstake, withdrawStake,
} from './actions/settlement.js'
import { type ClaimItem, type SettlementParams, batchLeaf, batchTree, jobAmount } from './client.js'
import { PHASE, getGame, openGame, reveal, timeout } from './actions/disputeGame.js'
import type { ChainClients } from './evm/clients.js'
import { type Devnet, DEVNET_SETTLEMENT_PARAMS, Tree, createDevnet, h, isConserved, makeItem, makeRequest } from './devnet.js'

const ETH = 10n ** 18n
const BOND = 10n ** 17n
const DAY = 86400
/** Every job here is 5 tokens (nPrompt 3, nOutput 2) over the same 20-leaf toy trace, so any job can be disputed. */
const TRACE = new Tree(Array.from({ length: 20 }, (_, i) => h(`leaf${i}`)))

type Revert = { name: string; errorName?: string; args?: readonly unknown[] }
async function rejectsWith(p: Promise<unknown>, errorName: string, args?: readonly unknown[]) {
  await assert.rejects(p, (e: Revert) => {
    assert.equal(e.name, 'ContractRevertError', String(e))
    assert.equal(e.errorName, errorName)
    if (args) assert.deepEqual(e.args, args)
    return true
  })
}

let nonce = 1n
/** A signed 5-token job at `pricePerToken` from the devnet's client to `provider`. */
async function job(net: Devnet, pricePerToken: bigint, provider: ChainClients = net.provider): Promise<ClaimItem> {
  const req = makeRequest(net, { provider: provider.account.address, pricePerToken, nonce: nonce++ })
  return makeItem(net, net.client, req, { traceRoot: TRACE.root, nPrompt: 3, nOutput: 2, nLayer: 4 })
}

/** Opens a dispute on job `i` of a claimed batch. */
async function dispute(net: Devnet, batchId: bigint, items: ClaimItem[], i: number) {
  const leaves = items.map((it) => batchLeaf(net.chain.chainId, net.d.settlement, it, net.client.account.address))
  const proof = batchTree(leaves).proof(i)
  return (await openGame(net.challenger, net.d, { batchId, jobIndex: BigInt(i), item: items[i], client: net.client.account.address, proof, bond: BOND })).gameId
}

async function assertBooks(net: Devnet) {
  const t = await getTotals(net.client, net.d)
  assert.ok(isConserved(t), JSON.stringify(t, (_, v) => (typeof v === 'bigint' ? v.toString() : v)))
}

test('a claim locks its exposure; one beyond the unlocked stake reverts StakeLocked; finalize releases it', async () => {
  const net = await createDevnet({ providerStake: 1n * ETH })
  try {
    const { d, provider, client } = net
    const me = provider.account.address
    await deposit(client, d, { amount: 10n * ETH })
    // 5 tokens x 0.005 coin = 0.025 coin; exposure at p = 5%, rewardBps = 50% is 40x that: exactly the 1-coin stake.
    const big = await job(net, 5n * 10n ** 15n)
    assert.equal(exposureOf(jobAmount(big), DEVNET_SETTLEMENT_PARAMS), 1n * ETH)
    const { batchId } = await claimBatch(provider, d, { items: [big] })
    assert.equal((await getStake(provider, d, me)).locked, 1n * ETH)
    // Nothing is unlocked now: even the cheapest job is refused by name, with the numbers.
    const small = await job(net, 10n ** 12n)
    await rejectsWith(claimBatch(provider, d, { items: [small] }), 'StakeLocked', [me, 0n, 200_000_000_000_000n])
    // Another coin of stake unlocks room for it; a batch's exposure is locked as a whole.
    await stake(provider, d, { role: 'provider', amount: 1n * ETH })
    const mid = await job(net, 3n * 10n ** 15n) // exposure 0.6 coin
    await rejectsWith(claimBatch(provider, d, { items: [small, mid, await job(net, 3n * 10n ** 15n)] }), 'StakeLocked', [me, 1n * ETH, 1_200_200_000_000_000_000n])
    const second = await claimBatch(provider, d, { items: [small, mid] })
    assert.equal((await getStake(provider, d, me)).locked, 1_600_200_000_000_000_000n)
    await assertBooks(net)
    // The window closes; each finalize releases exactly its batch's lock.
    await net.warp(DAY)
    await finalizeBatch(client, d, { batchId })
    assert.equal((await getStake(provider, d, me)).locked, 600_200_000_000_000_000n)
    await finalizeBatch(client, d, { batchId: second.batchId })
    const s = await getStake(provider, d, me)
    assert.equal(s.locked, 0n)
    assert.equal(s.active, 2n * ETH)
    assert.equal((await getBalances(provider, d, me)).owed, jobAmount(big) + jobAmount(small) + jobAmount(mid))
    // Unlocked again: the same exposure can be claimed anew.
    await claimBatch(provider, d, { items: [await job(net, 5n * 10n ** 15n), await job(net, 5n * 10n ** 15n)] })
    assert.equal((await getStake(provider, d, me)).locked, 2n * ETH)
    await assertBooks(net)
  } finally {
    await net.close()
  }
})

test('unstake can only unbond unlocked active stake', async () => {
  const net = await createDevnet({ providerStake: 3n * ETH })
  try {
    const { d, provider, client } = net
    const me = provider.account.address
    await deposit(client, d, { amount: 10n * ETH })
    const { batchId } = await claimBatch(provider, d, { items: [await job(net, 75n * 10n ** 14n)] }) // exposure 1.5 coin
    await rejectsWith(unstake(provider, d, { amount: 2n * ETH }), 'StakeLocked', [me, 1_500_000_000_000_000_000n, 2n * ETH])
    await rejectsWith(unstake(provider, d, { amount: 4n * ETH }), 'AmountTooLarge')
    await unstake(provider, d, { amount: 1_500_000_000_000_000_000n })
    let s = await getStake(provider, d, me)
    assert.deepEqual([s.active, s.locked, s.unbonding], [1_500_000_000_000_000_000n, 1_500_000_000_000_000_000n, 1_500_000_000_000_000_000n])
    await rejectsWith(unstake(provider, d, { amount: 1n }), 'StakeLocked', [me, 0n, 1n])
    await net.warp(DAY)
    await finalizeBatch(client, d, { batchId })
    // Released: now the 1-coin minimum is what holds the rest back.
    await rejectsWith(unstake(provider, d, { amount: 1n * ETH }), 'StakeTooLow')
    await unstake(provider, d, { amount: 500_000_000_000_000_000n })
    s = await getStake(provider, d, me)
    assert.deepEqual([s.active, s.locked, s.unbonding], [1n * ETH, 0n, 2n * ETH])
    await net.warp(7 * DAY)
    await withdrawStake(provider, d)
    await assertBooks(net)
  } finally {
    await net.close()
  }
})

test('a lost dispute slashes the job\'s lock; the rest of the batch stays locked until finalize', async () => {
  const net = await createDevnet({ providerStake: 10n * ETH })
  try {
    const { d, provider, client, challenger } = net
    const me = provider.account.address
    await deposit(client, d, { amount: 10n * ETH })
    // Job 0: 0.05 coin, exposure 2 coin (above the 1-coin floor); job 1: 0.0025 coin, exposure 0.1.
    const items = [await job(net, 10n ** 16n), await job(net, 5n * 10n ** 14n)]
    const { batchId } = await claimBatch(provider, d, { items })
    assert.equal((await getStake(provider, d, me)).locked, 2_100_000_000_000_000_000n)
    const gameId = await dispute(net, batchId, items, 0)
    await net.warp(DAY + 1) // the provider never answers
    await timeout(client, d, { gameId })
    assert.equal((await getGame(provider, d, { gameId: gameId })).phase, PHASE.CHALLENGER_WON)
    let s = await getStake(provider, d, me)
    assert.equal(s.active, 8n * ETH, 'slashed exactly the job\'s exposure')
    assert.equal(s.locked, 100_000_000_000_000_000n, 'job 1\'s lock is still there')
    assert.equal((await getBalances(challenger, d, challenger.account.address)).owed, 1n * ETH)
    assert.equal((await getTotals(client, d)).burned, 1n * ETH)
    assert.equal((await getBatch(provider, d, batchId)).amount, jobAmount(items[1]))
    await finalizeBatch(client, d, { batchId })
    s = await getStake(provider, d, me)
    assert.deepEqual([s.active, s.locked], [8n * ETH, 0n])
    assert.equal((await getBalances(provider, d, me)).owed, jobAmount(items[1]))
    await assertBooks(net)
  } finally {
    await net.close()
  }
})

test('the floor top-up never eats another claim\'s lock: unbonding first, then unlocked stake, then nothing', async () => {
  const net = await createDevnet({ providerStake: 1_300_000_000_000_000_000n })
  try {
    const { d, provider, client, challenger } = net
    const me = provider.account.address
    await deposit(client, d, { amount: 10n * ETH })
    const x = [await job(net, 45n * 10n ** 14n)] // exposure 0.9 coin
    const bx = (await claimBatch(provider, d, { items: x })).batchId
    const y = [await job(net, 10n ** 12n)] // exposure 0.0002 coin: the 1-coin floor applies
    const by = (await claimBatch(provider, d, { items: y })).batchId
    await unstake(provider, d, { amount: 200_000_000_000_000_000n })
    const g = await dispute(net, by, y, 0)
    await net.warp(DAY + 1)
    await timeout(client, d, { gameId: g })
    // Slash = y's lock (0.0002) + the unbonding 0.2 + all unlocked active stake (0.1998) = 0.4,
    // short of the 1-coin floor: x's 0.9 stays whole and locked.
    let s = await getStake(provider, d, me)
    assert.deepEqual([s.active, s.locked, s.unbonding], [900_000_000_000_000_000n, 900_000_000_000_000_000n, 0n])
    assert.equal((await getBalances(challenger, d, challenger.account.address)).owed, 200_000_000_000_000_000n)
    // x's window closed meanwhile: finalize releases its lock in full.
    await finalizeBatch(client, d, { batchId: bx })
    s = await getStake(provider, d, me)
    assert.deepEqual([s.active, s.locked], [900_000_000_000_000_000n, 0n])
    await assertBooks(net)
  } finally {
    await net.close()
  }
})

// ------------------------------------------------------------------ fuzz

/** mulberry32: a small seeded generator, so a failing run can be replayed by its seed. */
function rng(seed: number) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)] }
}

/** A claimed batch not yet wholly paid: `finalized` once finalize paid its undisputed jobs; per job its open games and whether the provider lost it. */
type Pending = { batchId: bigint; provider: ChainClients; items: ClaimItem[]; finalizesAt: bigint; finalized: boolean; jobs: { open: number; lost: boolean }[] }
type Open = { gameId: bigint; batch: Pending; i: number }

/** Expected revert name of a call (undefined: it must succeed), given the state read just before it. */
async function expectOutcome(p: Promise<unknown>, expected: string | undefined, what: string): Promise<boolean> {
  try {
    await p
  } catch (e) {
    const name = (e as Revert).errorName
    assert.equal(name, expected, `${what}: reverted ${String(e)}`)
    return false
  }
  assert.equal(expected, undefined, `${what}: succeeded, expected ${expected}`)
  return true
}

for (const seed of [1, 2, 3]) {
  test(`fuzz (seed ${seed}): stake/claim/finalize/dispute/unstake keep locked <= active, locks exact and value conserved`, async () => {
    // auditBps 300, rewardBps 3300: 10^8 / (300 * 6,700) is not whole, so per-job rounding is exercised.
    const params: Partial<SettlementParams> = { auditBps: 300, rewardBps: 3300 }
    const net = await createDevnet({ providerStake: 2n * ETH, settlement: params, accounts: 7 })
    const sp = { ...DEVNET_SETTLEMENT_PARAMS, ...params }
    const r = rng(seed)
    const providers = [net.provider, net.at(5), net.at(6)]
    const pending: Pending[] = []
    const open: Open[] = []
    const counts: Record<string, number> = {}
    const now = async () => (await net.client.public.getBlock()).timestamp
    try {
      const { d, client } = net
      await deposit(client, d, { amount: 1000n * ETH })

      const check = async (step: string) => {
        await assertBooks(net)
        for (const p of providers) {
          const s = await getStake(p, d, p.account.address)
          assert.ok(s.locked <= s.active, `${step}: locked ${s.locked} > active ${s.active}`)
          let want = 0n
          for (const b of pending) if (b.provider === p) want += exposureOf((await getBatch(p, d, b.batchId)).amount, sp)
          assert.equal(s.locked, want, `${step}: locked is not the sum of the pending batches' exposures`)
        }
      }

      for (let step = 0; step < 150; step++) {
        const p = r.pick(providers)
        const s = await getStake(p, d, p.account.address)
        const action = r.pick(['stake', 'claim', 'claim', 'claim', 'finalize', 'dispute', 'resolve', 'unstake', 'withdraw', 'warp'] as const)
        let label: string = action
        if (action === 'stake') {
          const amount = BigInt(r.int(2500)) * 10n ** 15n // 0 .. 2.5 coin
          const tooLow = s.active + amount < sp.minProviderStake
          await expectOutcome(stake(p, d, { role: 'provider', amount }), tooLow ? 'StakeTooLow' : undefined, `stake ${amount}`)
        } else if (action === 'claim') {
          const n = 1 + r.int(4)
          const items: ClaimItem[] = []
          // 5 tokens at 0.0001 .. 0.005 coin per token, odd values: exposures 0.025 .. 1.24 coin each.
          for (let i = 0; i < n; i++) items.push(await job(net, BigInt(1 + r.int(5000)) * 10n ** 12n + BigInt(r.int(997)), p))
          const total = items.reduce((a, it) => a + jobAmount(it), 0n)
          const expected = s.role !== 1 ? 'WrongRole' : s.active < sp.minProviderStake ? 'StakeTooLow' : exposureOf(total, sp) > s.active - s.locked ? 'StakeLocked' : undefined
          label = `claim:${expected ?? 'ok'}`
          const res = claimBatch(p, d, { items })
          if (await expectOutcome(res, expected, `claim ${n} jobs, exposure ${exposureOf(total, sp)}, stake ${JSON.stringify(s, (_, v) => (typeof v === 'bigint' ? v.toString() : v))}`)) {
            const { batchId } = await res
            pending.push({ batchId, provider: p, items, finalizesAt: (await getBatch(p, d, batchId)).finalizesAt, finalized: false, jobs: items.map(() => ({ open: 0, lost: false })) })
          }
        } else if (action === 'finalize' && pending.length) {
          const b = r.pick(pending)
          const t = await now()
          const busy = b.jobs.some((j) => j.open > 0 && !j.lost)
          if (t >= b.finalizesAt || t + 60n < b.finalizesAt) {
            // A dispute holds back only its own job: finalize pays the rest of the batch.
            const expected = b.finalized ? 'BatchNotPending' : t < b.finalizesAt ? 'ChallengeWindowOpen' : undefined
            label = `finalize:${expected ?? (busy ? 'partial' : 'ok')}`
            if (await expectOutcome(finalizeBatch(client, d, { batchId: b.batchId }), expected, 'finalize')) {
              b.finalized = true
              assert.equal((await getBatch(client, d, b.batchId)).amount, b.items.reduce((a, it, i) => a + (b.jobs[i].open > 0 && !b.jobs[i].lost ? jobAmount(it) : 0n), 0n), 'finalize holds back exactly the disputed jobs')
            }
          }
        } else if (action === 'dispute') {
          // Any job the provider has not lost, while its batch's window is open or a game on it is
          // (a second challenger's game on the same job included).
          const t = await now()
          const live = pending.flatMap((b) => b.jobs.map((j, i) => ({ b, i, j })).filter(({ j }) => !j.lost && (j.open > 0 || (!b.finalized && t + 60n < b.finalizesAt))))
          if (live.length) {
            const { b, i, j } = r.pick(live)
            open.push({ gameId: await dispute(net, b.batchId, b.items, i), batch: b, i })
            label = j.open > 0 ? 'dispute:again' : 'dispute:first'
            j.open++
          }
        } else if (action === 'resolve' && open.length) {
          const g = open.splice(r.int(open.length), 1)[0]
          // Half the time the provider answers once, so the silent challenger loses instead.
          if (r.next() < 0.5 && (await getGame(g.batch.provider, d, { gameId: g.gameId })).phase === PHASE.REVEAL) {
            await reveal(g.batch.provider, d, { gameId: g.gameId, children: TRACE.children(0, 0n, 4) }).catch((e: Revert) => assert.equal(e.errorName, 'ClockExpired'))
          }
          await net.warp(DAY + 1)
          await timeout(client, d, { gameId: g.gameId })
          const lost = (await getGame(client, d, { gameId: g.gameId })).phase === PHASE.CHALLENGER_WON
          const job = g.batch.jobs[g.i]
          label = `resolve:${job.lost ? 'void' : lost ? 'lost' : 'won'}`
          job.open--
          job.lost ||= lost
        } else if (action === 'unstake') {
          const unlocked = s.active - s.locked
          const amount = r.next() < 0.5 ? unlocked - BigInt(r.int(3)) * 10n ** 17n : unlocked + 1n + BigInt(r.int(1000)) * 10n ** 15n
          if (amount > 0n) {
            const rest = s.active - amount
            const expected = amount > s.active ? 'AmountTooLarge' : amount > unlocked ? 'StakeLocked' : rest !== 0n && rest < sp.minProviderStake ? 'StakeTooLow' : undefined
            label = `unstake:${expected ?? 'ok'}`
            await expectOutcome(unstake(p, d, { amount }), expected, `unstake ${amount}`)
          }
        } else if (action === 'withdraw') {
          await withdrawStake(p, d).catch((e: Revert) => assert.ok(['NothingToWithdraw', 'StillUnbonding', 'DisputeOpen'].includes(e.errorName ?? ''), String(e)))
        } else if (action === 'warp') {
          await net.warp(r.int(2 * DAY))
        }
        counts[label] = (counts[label] ?? 0) + 1
        await check(`step ${step} (${label})`)
      }
      // Wind down: every game resolves, every batch finalizes, and every lock returns to exactly 0.
      await net.warp(2 * DAY)
      for (const g of open) await timeout(client, d, { gameId: g.gameId })
      for (const b of pending.splice(0)) if (!b.finalized) await finalizeBatch(client, d, { batchId: b.batchId })
      await check('wind-down')
      for (const p of providers) assert.equal((await getStake(p, d, p.account.address)).locked, 0n)
      if (process.env.TESSERA_FUZZ_COUNTS) console.log(seed, JSON.stringify(counts))
      // The run must have exercised the rule, not only the happy path.
      assert.ok((counts['claim:StakeLocked'] ?? 0) > 0 && (counts['claim:ok'] ?? 0) > 3, JSON.stringify(counts))
      assert.ok((counts['resolve:lost'] ?? 0) > 0, JSON.stringify(counts))
      assert.ok((counts['dispute:again'] ?? 0) > 0 && (counts['resolve:void'] ?? 0) > 0, JSON.stringify(counts))
    } finally {
      await net.close()
    }
  })
}
