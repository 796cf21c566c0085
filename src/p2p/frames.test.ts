import './polyfill.js'
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { generatePrivateKey } from 'viem/accounts'
import { encodeFrame, type FrameConn, framePair, MAX_FRAME } from './frames.js'
import { createHost, type Host } from './host.js'
import { identityFromKey } from './identity.js'

const LOOPBACK = { inboundConnectionThreshold: 1000 }

describe('frames in memory', () => {
  test('messages round trip in order, bigints as decimal strings, bytes as 0x-hex; a clean close reads as undefined', async () => {
    const [a, b] = framePair()
    await a.send({ t: 'one', n: 12345678901234567890n, bytes: new Uint8Array([0, 255]) })
    await a.send({ t: 'two', list: [1, 2, 3] })
    await a.close()
    assert.deepEqual(await b.recv(1000), { t: 'one', n: '12345678901234567890', bytes: '0x00ff' })
    assert.deepEqual(await b.recv(1000), { t: 'two', list: [1, 2, 3] })
    assert.equal(await b.recv(1000), undefined)
  })

  test('a frame over the bound is refused before it is sent, and the stream is reset', async () => {
    const [a, b] = framePair({ maxBytes: 64 })
    await assert.rejects(a.send({ t: 'x', pad: 'y'.repeat(100) }), { name: 'FrameTooLargeError' })
    await assert.rejects(b.recv(1000), { name: 'StreamClosedError' })
  })

  test('recv times out when nothing comes', async () => {
    const [, b] = framePair()
    const t0 = Date.now()
    await assert.rejects(b.recv(50), { name: 'FrameTimeoutError' })
    assert.ok(Date.now() - t0 >= 45)
  })

  test('a slow reader pauses the stream and loses nothing', async () => {
    const [a, b] = framePair()
    for (let i = 0; i < 100; i++) await a.send({ t: 'n', i })
    await a.close()
    for (let i = 0; i < 100; i++) assert.deepEqual(await b.recv(1000), { t: 'n', i })
    assert.equal(await b.recv(1000), undefined)
  })

  test('a frame of exactly the bound passes; one byte more does not', () => {
    const body = (n: number) => ({ p: 'x'.repeat(n - 8) }) // {"p":""} is 8 bytes
    assert.equal(encodeFrame(body(MAX_FRAME)).length, MAX_FRAME + 3)
    assert.throws(() => encodeFrame(body(MAX_FRAME + 1)), { name: 'FrameTooLargeError' })
  })
})

describe('frames over libp2p on 127.0.0.1', () => {
  let server: Host
  let client: Host
  let rogue: Libp2p
  const handled: string[] = []

  before(async () => {
    server = await createHost({ privateKey: identityFromKey(generatePrivateKey()).libp2pKey, limits: LOOPBACK })
    client = await createHost({ privateKey: identityFromKey(generatePrivateKey()).libp2pKey, limits: LOOPBACK })
    // echo until the remote closes
    await server.handle(
      '/test/echo/1',
      async (conn) => {
        for (let i = 0; i < 1000; i++) {
          const msg = await conn.recv(5000)
          if (msg === undefined) return
          await conn.send(msg)
        }
      },
      { maxBytes: 4096 },
    )
    await server.handle('/test/throws/1', async (conn) => {
      handled.push(conn.remotePeer)
      throw new Error('handler bug')
    })
    // A peer that writes raw bytes, bypassing the framing, as an attacker would.
    rogue = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
  })

  after(async () => {
    await Promise.all([server.stop(), client.stop(), rogue.stop()])
  })

  const echo = async (conn: FrameConn, msg: unknown) => {
    await conn.send(msg)
    return conn.recv(5000)
  }

  test('round trip over a real stream, with the remote peer named', async () => {
    const conn = await client.dial(server.addrs()[0], '/test/echo/1')
    assert.equal(conn.remotePeer, server.peerId)
    assert.deepEqual(await echo(conn, { t: 'ping', big: 2n ** 70n }), { t: 'ping', big: (2n ** 70n).toString() })
    // a burst larger than the muxer window exercises send backpressure
    const sends = Array.from({ length: 200 }, (_, i) => conn.send({ t: 'n', i, pad: 'z'.repeat(3000) }))
    for (let i = 0; i < 200; i++) assert.equal(((await conn.recv(5000)) as { i: number }).i, i)
    await Promise.all(sends)
    await conn.close()
    assert.equal(await conn.recv(5000), undefined)
  })

  test('an oversized frame kills only its stream: the connection and the node serve the next stream', async () => {
    // the client allows big frames, the server's protocol bound is 4096 bytes
    const conn = await client.dial(server.addrs()[0], '/test/echo/1', { maxBytes: MAX_FRAME })
    await conn.send({ t: 'big', pad: 'x'.repeat(10_000) })
    await assert.rejects(conn.recv(5000), (err: Error) => err.name !== 'FrameTimeoutError')
    const peersBefore = client.peers().length
    const again = await client.dial(server.peerId, '/test/echo/1')
    assert.deepEqual(await echo(again, { t: 'still-here' }), { t: 'still-here' })
    await again.close()
    assert.equal(client.peers().length, peersBefore)
    assert.ok(client.peers().includes(server.peerId))
  })

  test('an announced length over the bound is refused before the body arrives', async () => {
    const stream = await rogue.dialProtocol(multiaddr(server.addrs()[0]), '/test/echo/1')
    // uvarint(2^30) and no body: the server must not wait for a gigabyte
    stream.send(new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x04]))
    const closed = await new Promise<Error | undefined>((resolve) => {
      stream.addEventListener('close', (evt) => resolve(evt.error))
      setTimeout(() => resolve(new Error('not closed in time')), 5000).unref()
    })
    assert.notEqual(closed?.message, 'not closed in time')
    const conn = await client.dial(server.peerId, '/test/echo/1')
    assert.deepEqual(await echo(conn, { t: 'ok' }), { t: 'ok' })
    await conn.close()
  })

  test('malformed JSON is answered with {t:"error", code:"bad-message"} and the stream is closed', async () => {
    const stream = await rogue.dialProtocol(multiaddr(server.addrs()[0]), '/test/echo/1')
    const got: Uint8Array[] = []
    stream.addEventListener('message', (evt) => got.push(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()))
    const ended = new Promise<void>((resolve) => {
      stream.addEventListener('close', () => resolve())
      stream.addEventListener('remoteCloseWrite', () => resolve())
      setTimeout(resolve, 5000).unref()
    })
    const body = new TextEncoder().encode('{"t": nope')
    stream.send(new Uint8Array([body.length, ...body]))
    await ended
    const bytes = Buffer.concat(got)
    assert.ok(bytes.length > 1, 'an error frame came back')
    assert.deepEqual(JSON.parse(bytes.subarray(1).toString('utf8')), { t: 'error', code: 'bad-message', message: 'malformed frame' })
    stream.abort(new Error('done'))
  })

  test('a handler that throws resets its stream and the node keeps serving', async () => {
    const conn = await client.dial(server.peerId, '/test/throws/1')
    await conn.send({ t: 'hello' }).catch(() => {}) // the reset may already be here
    await assert.rejects(conn.recv(5000), (err: Error) => err.name !== 'FrameTimeoutError')
    assert.deepEqual(handled, [client.peerId])
    const ok = await client.dial(server.peerId, '/test/echo/1')
    assert.deepEqual(await echo(ok, { t: 'alive' }), { t: 'alive' })
    await ok.close()
  })

  test('recv times out on a silent server', async () => {
    await server.handle('/test/silent/1', async (conn) => {
      await conn.recv(2000)
    })
    const conn = await client.dial(server.peerId, '/test/silent/1')
    await assert.rejects(conn.recv(100), { name: 'FrameTimeoutError' })
    conn.abort(new Error('test over'))
  })

  test('dialling a protocol nobody serves fails with DialError', async () => {
    await assert.rejects(client.dial(server.peerId, '/test/nobody/1'), { name: 'DialError' })
  })
})
