// Nodes behind NAT, the parts test/network/relay.test.ts leaves out (docs/NETWORK.md "NAT"), on
// real libp2p hosts on 127.0.0.1; a "NAT" is a host that listens on no dialable address, only
// through a relay reservation.
//  - AutoNAT's own 'private' verdict (no `reachability` option given) makes a node reserve a slot on
//    a relay among its peers and announce the relayed address by itself. The verdict is injected
//    where AutoNAT reports it (its `unconfirmAddress`, which calls the address manager): libp2p's
//    AutoNAT v1 never dials a loopback address back and counts one failure per /8 of the asking
//    peers, eight needed, so no loopback network can produce it.
//  - Several jobs in a row over one relayed (limited) connection, on one kept stream and on a stream
//    reopened after `release()`; a relay whose data limit, or duration limit, is reached mid-job:
//    the client's `recv` ends at once (the stream reads as closed by the provider: `requestJob`'s
//    'closed' failure, then its next try; no hang until a timeout), the provider's next write fails
//    (the job is cut, as by a cancel), and a new dial gets a new relayed connection.
//  - A NATed provider and a client with a dialable address, once the provider has dialled out to it
//    (DCUtR's unilateral upgrade, libp2p's own dials, here a ping): the next job leaves the kept
//    stream on the relayed connection for the direct one, out of the relay's limits.
// Each test takes a few seconds and stops every host it starts.
import '../../src/p2p/polyfill.js'
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { generatePrivateKey } from 'viem/accounts'
import { createHost, type Host, LIBP2P } from '../../src/p2p/host.js'
import { identityFromKey } from '../../src/p2p/identity.js'
import type { FrameConn } from '../../src/p2p/frames.js'

const LOOPBACK = { inboundConnectionThreshold: 1000 }
const newKey = () => identityFromKey(generatePrivateKey()).libp2pKey
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (cond()) return true
    await sleep(50)
  }
  return cond()
}

/** The AutoNAT service inside a host (libp2p 3's `@libp2p/autonat`, v1). */
type AutoNat = { unconfirmAddress(results: { multiaddr: ReturnType<typeof multiaddr>; type: string; queue: { abort(): void } }): void }
const autoNatOf = (h: Host): AutoNat => (h as unknown as { [LIBP2P]: { services: { autoNAT: AutoNat } } })[LIBP2P].services.autoNAT

/** A host with no dialable address: the only way in is a reservation on `relay`. */
async function behindNat(relay: Host): Promise<Host> {
  const h = await createHost({ privateKey: newKey(), listen: ['/p2p-circuit'], bootstrap: relay.addrs(), limits: LOOPBACK })
  assert.ok(await waitFor(() => h.addrs().some((a) => a.includes('/p2p-circuit')), 10_000), `no relay reservation: ${h.addrs()}`)
  return h
}

/** Dial `addr` until the relay routes it (the reservation may still be settling on the relay's side). */
async function dialRelayed(client: Host, addr: string, protocol: string): Promise<FrameConn> {
  for (let i = 0; ; i++) {
    try {
      return await client.dial(addr, protocol, { signal: AbortSignal.timeout(3000) })
    } catch (err) {
      if (i >= 20) throw err
      await sleep(200)
    }
  }
}

describe('reachability found private by AutoNAT (no reachability option)', () => {
  test('the node reserves a slot on a relay among its peers, announces the relayed address, and is dialled through it', async () => {
    const relay = await createHost({ privateKey: newKey(), relay: true, limits: LOOPBACK })
    const natted = await createHost({ privateKey: newKey(), bootstrap: relay.addrs(), limits: LOOPBACK })
    const client = await createHost({ privateKey: newKey(), limits: LOOPBACK })
    try {
      await natted.handle('/test/echo/1', async (conn) => {
        const msg = await conn.recv(5000)
        if (msg !== undefined) await conn.send({ t: 'echo', msg })
      })
      const changes: string[][] = []
      natted.onAddrsChange((a) => changes.push(a))
      assert.ok(await waitFor(() => natted.peers().includes(relay.peerId), 10_000), 'the node reached the relay')
      // no verdict yet: the node does not look for a relay (keepRelayedWhenPrivate checks at start and every 2 s)
      await sleep(2500)
      assert.equal(natted.reachability(), 'unknown')
      assert.ok(!natted.addrs().some((a) => a.includes('/p2p-circuit')), `no reservation without a verdict: ${natted.addrs()}`)
      // AutoNAT's verdict: its peers could not dial the NAT's public address back
      autoNatOf(natted).unconfirmAddress({ multiaddr: multiaddr('/ip4/198.51.100.7/tcp/4001'), type: 'observed', queue: { abort() {} } })
      assert.equal(natted.reachability(), 'private')
      const circuit = `${relay.addrs()[0]}/p2p-circuit/p2p/${natted.peerId}`
      assert.ok(await waitFor(() => natted.addrs().includes(circuit), 10_000), `relayed address announced: ${natted.addrs()}`)
      assert.ok(await waitFor(() => changes.some((a) => a.includes(circuit)), 5000), `onAddrsChange told the offer publisher: ${JSON.stringify(changes)} now ${natted.addrs()}`)
      const conn = await dialRelayed(client, circuit, '/test/echo/1')
      await conn.send({ t: 'hi' })
      assert.deepEqual(await conn.recv(5000), { t: 'echo', msg: { t: 'hi' } })
      await conn.close()
    } finally {
      await Promise.all([client.stop(), natted.stop(), relay.stop()])
    }
  })
})

const JOBS = '/test/jobs/1'
const PAD = 'x'.repeat(1000)

/**
 * A provider stand-in: jobs one after another on a stream, as `serveJobs` runs them (a request,
 * then `n` token frames of ~1 KB, one each `paceMs`, then `done`); `log` records how each stream ended.
 */
async function serveTestJobs(h: Host, log: string[], paceMs: number): Promise<void> {
  await h.handle(JOBS, async (conn) => {
    let job = ''
    try {
      for (;;) {
        const req = (await conn.recv(10_000)) as { id: string; n: number } | undefined
        if (req === undefined) return void log.push('end')
        job = req.id
        for (let i = 0; i < req.n; i++) {
          await conn.send({ t: 'token', i, pad: PAD })
          if (paceMs > 0) await sleep(paceMs)
        }
        await conn.send({ t: 'done', id: req.id })
        log.push(`done:${req.id}`)
      }
    } catch (err) {
      log.push(`cut:${job}:${(err as Error).name}`)
      throw err
    }
  })
}

/** A client's job on `conn`: the tokens received, or the error that ended it and when. */
async function runJob(conn: FrameConn, id: string, n: number): Promise<{ tokens: number; error?: string; ms: number }> {
  const t = Date.now()
  let tokens = 0
  try {
    await conn.send({ id, n })
    for (;;) {
      const m = (await conn.recv(20_000)) as { t: string } | undefined
      if (m === undefined) return { tokens, error: 'ended', ms: Date.now() - t }
      if (m.t === 'done') return { tokens, ms: Date.now() - t }
      tokens++
    }
  } catch (err) {
    return { tokens, error: (err as Error).name, ms: Date.now() - t }
  }
}

const relayedTo = (client: Host, peer: string) => client.connections().filter((c) => c.peerId === peer)

describe('jobs over a limited relayed connection', () => {
  test('several jobs in a row on one relayed connection; the data limit reached mid-job cuts both sides at once, and a new dial gets a new connection', async () => {
    const relay = await createHost({ privateKey: newKey(), relay: true, relayLimits: { dataBytes: 64n << 10n }, limits: LOOPBACK })
    const provider = await behindNat(relay)
    // no listener either: DCUtR cannot move the jobs to a direct connection (a client with a dialable
    // address gets one, which the NATed provider dials out to, and no relay limit applies)
    const client = await createHost({ privateKey: newKey(), listen: [], limits: LOOPBACK })
    const log: string[] = []
    try {
      // paced as the job protocol writes tokens (TOKEN_FLUSH_MS = 5 ms), so the cut comes mid-job
      await serveTestJobs(provider, log, 5)
      const circuit = provider.addrs().find((a) => a.includes('/p2p-circuit'))!
      let conn = await dialRelayed(client, circuit, JOBS)
      // three jobs on one stream, then the stream kept (release) and taken again for two more
      for (const id of ['a', 'b', 'c']) {
        const r = await runJob(conn, id, 5)
        assert.ok(r.tokens === 5 && r.error === undefined, `${id}: ${JSON.stringify(r)}`)
      }
      conn.release?.()
      conn = await client.dial(provider.peerId, JOBS)
      assert.equal(conn.reused, true, 'the kept stream is reused')
      for (const id of ['d', 'e']) {
        const r = await runJob(conn, id, 5)
        assert.ok(r.tokens === 5 && r.error === undefined, `${id}: ${JSON.stringify(r)}`)
      }
      const conns = relayedTo(client, provider.peerId)
      assert.equal(conns.length, 1, JSON.stringify(conns))
      assert.equal(conns[0]!.relayed, true, 'the jobs ran over the relayed (limited) connection')
      // ~25 KB so far plus the handshakes; a 100-token job (~100 KB) passes the 64 KiB limit mid-way
      const cut = await runJob(conn, 'big', 100)
      assert.ok(cut.error !== undefined && cut.tokens < 100, `the job was cut: ${JSON.stringify(cut)}`)
      assert.ok(cut.ms < 5000, `the client learned at once, not at its recv timeout: ${cut.ms} ms`)
      assert.ok(await waitFor(() => log.some((l) => l.startsWith('cut:big:')), 5000), `the provider's stream failed: ${log}`)
      assert.deepEqual(log.slice(0, 5), ['done:a', 'done:b', 'done:c', 'done:d', 'done:e'])
      // a new dial gets a new relayed connection (a fresh limit), and the next job runs
      const again = await dialRelayed(client, circuit, JOBS)
      assert.equal(again.reused, false)
      assert.equal((await runJob(again, 'after', 5)).tokens, 5)
      await again.close()
    } finally {
      await Promise.all([client.stop(), provider.stop(), relay.stop()])
    }
  })

  test('the duration limit reached mid-job cuts both sides at once', async () => {
    const relay = await createHost({ privateKey: newKey(), relay: true, relayLimits: { durationMs: 2000 }, limits: LOOPBACK })
    const provider = await behindNat(relay)
    // no listener either: DCUtR cannot move the jobs to a direct connection (a client with a dialable
    // address gets one, which the NATed provider dials out to, and no relay limit applies)
    const client = await createHost({ privateKey: newKey(), listen: [], limits: LOOPBACK })
    const log: string[] = []
    try {
      await serveTestJobs(provider, log, 50)
      const circuit = provider.addrs().find((a) => a.includes('/p2p-circuit'))!
      const conn = await dialRelayed(client, circuit, JOBS)
      const t = Date.now()
      // 100 tokens at 50 ms: 5 s, past the 2 s the relay allows a connection
      const cut = await runJob(conn, 'slow', 100)
      assert.ok(cut.error !== undefined && cut.tokens > 0 && cut.tokens < 100, `the job was cut: ${JSON.stringify(cut)}`)
      assert.ok(Date.now() - t < 4000, `cut near the 2 s limit, not at the recv timeout: ${Date.now() - t} ms`)
      assert.ok(await waitFor(() => log.some((l) => l.startsWith('cut:slow:')), 5000), `the provider's stream failed: ${log}`)
    } finally {
      await Promise.all([client.stop(), provider.stop(), relay.stop()])
    }
  })

  test('a client with a dialable address: the NATed provider dials out to it, and the next job leaves the kept relayed stream for the direct connection, out of the relay\'s limits', async () => {
    const relay = await createHost({ privateKey: newKey(), relay: true, relayLimits: { dataBytes: 64n << 10n }, limits: LOOPBACK })
    const provider = await behindNat(relay)
    const client = await createHost({ privateKey: newKey(), limits: LOOPBACK })
    const log: string[] = []
    try {
      await serveTestJobs(provider, log, 0)
      const circuit = provider.addrs().find((a) => a.includes('/p2p-circuit'))!
      const first = await dialRelayed(client, circuit, JOBS)
      assert.equal((await runJob(first, 'a', 5)).tokens, 5)
      first.release?.()
      // a direct connection, opened the way DCUtR's unilateral upgrade and libp2p's own dials (DHT,
      // identify) open it: the NATed provider dials out to the client (made certain here by a ping,
      // which libp2p does not send over a limited connection)
      await provider.ping(client.peerId, { timeoutMs: 5000 })
      assert.ok(await waitFor(() => relayedTo(client, provider.peerId).some((c) => !c.relayed), 10_000), `a direct connection: ${JSON.stringify(relayedTo(client, provider.peerId))}`)
      const next = await client.dial(provider.peerId, JOBS)
      assert.equal(next.reused, false, 'the kept stream on the relayed connection is left')
      // ~100 KB: more than the relay lets one connection carry, so it ran on the direct one
      const big = await runJob(next, 'big', 100)
      assert.ok(big.tokens === 100 && big.error === undefined, JSON.stringify(big))
      await next.close()
    } finally {
      await Promise.all([client.stop(), provider.stop(), relay.stop()])
    }
  })
})
