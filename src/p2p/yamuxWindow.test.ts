import './polyfill.js'
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { generatePrivateKey } from 'viem/accounts'
import { createHost, type Host } from './host.js'
import { identityFromKey } from './identity.js'
import { windowUpdateStats } from './yamuxWindow.js'

const LOOPBACK = { inboundConnectionThreshold: 1000 }
const newKey = () => identityFromKey(generatePrivateKey()).libp2pKey
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('yamux window updates (yamuxWindow.ts) on real hosts', () => {
  let a: Host
  let b: Host
  before(async () => {
    ;[a, b] = await Promise.all([createHost({ privateKey: newKey(), limits: LOOPBACK }), createHost({ privateKey: newKey(), limits: LOOPBACK })])
    // answers with the number of frames and bytes it read, after `wait` ms (a slow reader: its frame queue fills and pauses the stream)
    await b.handle('/test/sink/1', async (conn) => {
      const first = (await conn.recv(5000)) as { n: number; wait: number }
      await sleep(first.wait)
      let bytes = 0
      for (let i = 0; i < first.n; i++) bytes += ((await conn.recv(5000)) as { s: string }).s.length
      await conn.send({ frames: first.n, bytes })
      await conn.close()
    })
    await b.handle('/test/echo/1', async (conn) => {
      for (let m = await conn.recv(5000); m !== undefined; m = await conn.recv(5000)) await conn.send({ i: (m as { i: number }).i })
    })
  })
  after(async () => {
    await Promise.all([a.stop(), b.stop()])
  })

  test('small messages get no window update back: each data frame received skips one', async () => {
    const conn = await a.dial(b.addrs()[0], '/test/echo/1')
    const before = { ...windowUpdateStats }
    // request and answer in turns, as the job protocol does (a reader that falls 16 frames behind pauses the stream instead)
    for (let i = 0; i < 20; i++) {
      await conn.send({ s: 'x'.repeat(200), i })
      assert.deepEqual(await conn.recv(5000), { i })
    }
    // 40 data frames of a few hundred bytes, none answered by an update; with yamux's own policy
    // (an update after every data frame) nothing is skipped
    assert.ok(windowUpdateStats.skipped - before.skipped >= 40, `skipped ${windowUpdateStats.skipped - before.skipped}`)
    await conn.close()
  })

  test('a transfer of 8 windows to a slow reader completes: credit is still granted once half a window is used, and after a pause', async () => {
    const conn = await a.dial(b.addrs()[0], '/test/sink/1')
    const before = { ...windowUpdateStats }
    const chunk = 'y'.repeat(64 * 1024)
    const n = 32 // 2 MiB against the initial 256 KiB window; the reader's queue (16 frames) fills while it sleeps
    await conn.send({ n, wait: 300 })
    const t = Date.now()
    for (let i = 0; i < n; i++) await conn.send({ s: chunk })
    assert.deepEqual(await conn.recv(10_000), { frames: n, bytes: n * chunk.length })
    // without credit the sender stops at 256 KiB and the sends above time out instead (30 s)
    assert.ok(windowUpdateStats.sent - before.sent >= 1, 'window updates were sent')
    assert.ok(Date.now() - t < 10_000)
    await conn.close()
  })
})
