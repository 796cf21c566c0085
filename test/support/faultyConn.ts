/**
 * A provider's end of a job stream that fails on purpose, for the tests of clients and gateways
 * that must survive a provider dying mid-answer. The wrappers see every message, whether the
 * provider sends it alone (`send`) or several to a write (`sendMany`, job protocol 1.3.0).
 */
import type { FrameConn } from '../../src/p2p/frames.js'

/** `c` with each outgoing message passed through `send` one at a time. */
export function perMessage(c: FrameConn, send: (m: unknown) => Promise<void>): FrameConn {
  return {
    ...c,
    remotePeer: c.remotePeer,
    send,
    async sendMany(ms) {
      for (const m of ms) await send(m)
    },
  }
}

/** The stream is reset as the provider sends its token number n (0-based): the client has seen n tokens. */
export function killAfterTokens(c: FrameConn, n: number): FrameConn {
  let tokens = 0
  return perMessage(c, async (m) => {
    if ((m as { t: string }).t === 'token' && tokens++ === n) {
      const e = new Error('killed')
      c.abort(e)
      throw e
    }
    return c.send(m)
  })
}
