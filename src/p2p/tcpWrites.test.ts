import './polyfill.js'
import assert from 'node:assert/strict'
import { Socket } from 'node:net'
import { test } from 'node:test'
import { generatePrivateKey } from 'viem/accounts'
import { createHost } from './host.js'
import { identityFromKey } from './identity.js'
import { tcpWriteStats } from './tcpWrites.js'

const newKey = () => identityFromKey(generatePrivateKey()).libp2pKey

test('one socket write per frame on a TCP connection (tcpWrites.ts), and the frames arrive intact', async () => {
  const [a, b] = await Promise.all([createHost({ privateKey: newKey() }), createHost({ privateKey: newKey() })])
  const write = Socket.prototype.write
  let writes = 0
  // every socket write of the process, however made (with @libp2p/tcp's own sendData a frame is two or more)
  Socket.prototype.write = function (this: Socket, ...args: unknown[]) {
    writes++
    return (write as (...a: unknown[]) => boolean).apply(this, args)
  }
  try {
    await b.handle('/test/echo/1', async (conn) => {
      for (let m = await conn.recv(5000); m !== undefined; m = await conn.recv(5000)) await conn.send(m)
    })
    const conn = await a.dial(b.addrs()[0], '/test/echo/1')
    await conn.send({ i: -1 })
    assert.deepEqual(await conn.recv(5000), { i: -1 })
    // identify, the DHT and gossipsub open their streams on a new connection: let them finish
    await new Promise((r) => setTimeout(r, 1000))
    const [w0, j0] = [writes, tcpWriteStats.writes]
    for (let i = 0; i < 20; i++) {
      const m = { i, s: 'é'.repeat(i * 50) }
      await conn.send(m)
      assert.deepEqual(await conn.recv(5000), m)
    }
    // 40 frames (20 each way), each one yamux data frame in one Noise message: one write each
    assert.equal(tcpWriteStats.writes - j0, 40)
    assert.equal(writes - w0, 40)
    await conn.close()
  } finally {
    Socket.prototype.write = write
    await Promise.all([a.stop(), b.stop()])
  }
})
