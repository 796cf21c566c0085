/**
 * One socket write per Noise message on libp2p's TCP connections (docs/NETWORK.md "Framing").
 *
 * Why: @libp2p/tcp 11 writes a message's buffers one `socket.write` each, and a Noise message
 * reaches it as several: the 2-byte length prefix, the ciphertext of each piece the muxer handed
 * over (a yamux header, the data), the tag. With TCP_NODELAY (libp2p's default, and what a
 * request-response protocol needs) each write is a syscall and a TCP segment of its own, and the
 * receiver may wake for the first few bytes of a frame it cannot yet decrypt. Joining them (one
 * copy of a few hundred bytes) makes every yamux frame one syscall and one segment: the bytes on
 * the wire are the same, so the remote cannot tell.
 *
 * How: the connection class is not exported, so `joinTcpWrites` takes its prototype from the first
 * TCP connection a host opens (`connection:open`, `Connection.maConn`), and replaces its
 * `sendData` once per process; connections opened before that (this first one's handshake) write
 * as before. A libp2p whose TCP connection no longer has the expected shape (`socket`, `sendData`)
 * is left alone: src/p2p/tcpWrites.test.ts then fails, rather than jobs.
 */
import { Socket } from 'node:net'

/** The data a libp2p message stream hands its transport: a Uint8ArrayList, or one Uint8Array. */
type Chunks = { byteLength: number; subarray(): Uint8Array } | Uint8Array

type TcpMaConn = { socket: Socket; sendData(data: Chunks): { sentBytes: number; canSendMore: boolean } }

const patched = new WeakSet<object>()

/** Socket writes made by joined sends, for tests. */
export const tcpWriteStats = { writes: 0 }

/** `enabled: false` writes buffer by buffer again, as @libp2p/tcp does: the network bench's in-process A/B (`--ab transport`). */
export const tcpWriteJoin = { enabled: true }

function isTcpMaConn(x: unknown): x is TcpMaConn {
  const c = x as Partial<TcpMaConn> | undefined
  return c?.socket instanceof Socket && typeof c.sendData === 'function'
}

/**
 * Makes the TCP connection class of `connection` write each message with one `socket.write`
 * (see the module doc). A connection of another transport (a relayed one) is left as it is.
 *
 * @example
 *   node.addEventListener('connection:open', (evt) => joinTcpWrites(evt.detail))
 */
export function joinTcpWrites(connection: unknown): void {
  const ma = (connection as { maConn?: unknown }).maConn
  if (!isTcpMaConn(ma)) return
  const proto = Object.getPrototypeOf(ma) as TcpMaConn
  if (patched.has(proto) || !Object.hasOwn(proto, 'sendData')) return
  patched.add(proto)
  const tcpOwn = proto.sendData
  proto.sendData = function sendData(this: TcpMaConn, data: Chunks) {
    if (!tcpWriteJoin.enabled) return tcpOwn.call(this, data)
    // one buffer: Uint8ArrayList.subarray() copies only when it holds several
    const buf = data instanceof Uint8Array ? data : data.subarray()
    tcpWriteStats.writes++
    return { sentBytes: buf.byteLength, canSendMore: this.socket.write(buf) }
  }
}
