// `tessera node` and `tessera request` as a user meets them without a network: one-line errors
// for bad input (before any work), and `node status` reading a node's status.json (running or
// stopped; a provider's reasons for getting no work; --json).
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { type NodeStatus, writeStatus } from '../../src/node/status.js'
import { cli, expectOneLine } from '../support/cli.js'

describe('tessera node / request: usage errors and status', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-node-cli-'))
  after(() => rmSync(dir, { recursive: true, force: true }))

  test('bad input is one line, exit 2 for usage and 1 for a bad value', async () => {
    await Promise.all([
      expectOneLine(['node', 'start', '--data', dir, '--role', 'miner'], 1, /invalid --role "miner"/),
      expectOneLine(['node', 'start', '--data', dir, '--role', 'provider'], 2, /a provider needs --model/),
      expectOneLine(['node', 'start', '--data', dir, '--role', 'auditor', '--cheat', 'silu'], 2, /--cheat is for a provider/),
      expectOneLine(['node', 'status', '--data', join(dir, 'none')], 1, /no node status in/),
      expectOneLine(['request', '--bootstrap', '/ip4/127.0.0.1/tcp/1', '--model', join(dir, 'nofile'), '--prompt', 'x'], 1, /invalid --model/),
      expectOneLine(['request', '--bootstrap', '/ip4/127.0.0.1/tcp/1', '--model', `0x${'ab'.repeat(32)}`, '--prompt', 'x'], 2, /needs --prompt-tokens/),
    ])
  })

  test('node status reads status.json: a stopped provider and why it gets no work', async () => {
    const s: NodeStatus = {
      v: 1, pid: 2 ** 22 + 7, updatedAt: Date.now() - 60_000, state: 'stopped', address: '0x7C86c7805b9CaeA8F459C04f43b96aA23B432969', peerId: '16Uiu2HAm', addrs: [], roles: ['provider'],
      peers: 0, wallet: '1000000000000000000', stake: { role: 1, active: '0', locked: '0' }, offersSeen: [], offerProblems: { expired: 2 },
      jobs: { served: 3, refused: { 'stake-too-low': 1 }, cancelled: 0, failed: 0, transcriptsGiven: 0, transcriptsRefused: 0, tickErrors: {} },
      claims: { pending: 1, pendingWei: '5000', claimed: 2, openBatches: 1, finalized: 1, earned: '7000', withdrawn: '0' },
      audits: {}, disputes: { 'provider:lost': 1 }, whyNoWork: ['no stake: 0 coin active, minimum 1', 'no peers: nobody sees the offer (check --bootstrap)'],
    }
    writeStatus(dir, s)
    const r = await cli('node', 'status', '--data', dir)
    assert.equal(r.code, 0, r.err)
    assert.match(r.out, /not running \(last seen \d+ s ago, stopped\)/)
    assert.match(r.out, /jobs\s+served 3, refused 1 \(stake-too-low 1\)/)
    assert.match(r.out, /claims\s+pending 1 .* claimed 2, open batches 1, finalized 1/)
    assert.match(r.out, /no work\?\s+no stake/)
    assert.match(r.out, /no peers/)
    const j = await cli('node', 'status', '--data', dir, '--json')
    assert.equal(j.code, 0)
    const parsed = JSON.parse(j.out)
    assert.equal(parsed.live, false)
    assert.deepEqual(parsed.disputes, { 'provider:lost': 1 })
  })
})
