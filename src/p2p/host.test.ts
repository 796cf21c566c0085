import './polyfill.js'
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { generatePrivateKey } from 'viem/accounts'
import { createHost, type Host } from './host.js'
import { identityFromKey } from './identity.js'

const LOOPBACK = { inboundConnectionThreshold: 1000 }
const newKey = () => identityFromKey(generatePrivateKey()).libp2pKey

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (cond()) return true
    await new Promise((r) => setTimeout(r, 50))
  }
  return cond()
}

describe('a node reachable only through a relay', () => {
  let relay: Host
  let hidden: Host
  let client: Host

  before(async () => {
    relay = await createHost({ privateKey: newKey(), relay: true, limits: LOOPBACK })
    // no TCP listener: the only way in is a reservation on the relay
    hidden = await createHost({ privateKey: newKey(), listen: ['/p2p-circuit'], bootstrap: relay.addrs(), limits: LOOPBACK })
    client = await createHost({ privateKey: newKey(), limits: LOOPBACK })
    await hidden.handle('/test/echo/1', async (conn) => {
      const msg = await conn.recv(5000)
      if (msg !== undefined) await conn.send({ t: 'echo', from: conn.remotePeer, msg })
    })
  })

  after(async () => {
    await Promise.all([relay.stop(), hidden.stop(), client.stop()])
  })

  test('takes a reservation, announces a /p2p-circuit address, and is dialled through it', async () => {
    assert.ok(await waitFor(() => hidden.addrs().some((a) => a.includes('/p2p-circuit')), 10_000), `no relayed address: ${hidden.addrs()}`)
    const circuit = hidden.addrs().find((a) => a.includes('/p2p-circuit'))!
    assert.ok(circuit.startsWith(`${relay.addrs()[0]}/p2p-circuit/p2p/${hidden.peerId}`), circuit)
    const conn = await client.dial(circuit, '/test/echo/1')
    assert.equal(conn.remotePeer, hidden.peerId)
    await conn.send({ t: 'hi' })
    assert.deepEqual(await conn.recv(5000), { t: 'echo', from: client.peerId, msg: { t: 'hi' } })
    await conn.close()
  })
})

describe('ping', () => {
  test('measures the round trip to a known peer; an unknown or stopped one is a DialError', async () => {
    const a = await createHost({ privateKey: newKey(), limits: LOOPBACK })
    const b = await createHost({ privateKey: newKey(), bootstrap: a.addrs(), limits: LOOPBACK })
    const stranger = identityFromKey(generatePrivateKey()).peerId.toString()
    try {
      assert.ok(await waitFor(() => b.peers().includes(a.peerId), 10_000), 'b connects to its bootstrap node')
      const rtt = await b.ping(a.peerId, { timeoutMs: 5_000 })
      assert.ok(Number.isFinite(rtt) && rtt >= 0 && rtt < 5_000, `rtt ${rtt}`)
      await assert.rejects(b.ping(stranger, { timeoutMs: 1_000 }), { name: 'DialError' })
      await a.stop()
      await assert.rejects(b.ping(a.peerId, { timeoutMs: 1_000 }), { name: 'DialError' })
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })
})
