/**
 * Yamux receive-window updates only when the window is half used (docs/NETWORK.md "Framing"), as
 * go-yamux and rust-yamux send them, instead of after every data frame as
 * @chainsafe/libp2p-yamux 8 does.
 *
 * Why: with one update per data frame, every message a Tessera protocol sends is answered by a
 * 12-byte window-update frame from its receiver: a Noise seal and a syscall there, a wake-up, a
 * Noise open and a yamux parse at the sender. On a job that is one more frame each way per
 * message (request, `accepted`, token batches, `end`, `done`, ack), arriving at the provider while
 * its engine runs and at the client while it checks the receipt (docs/BENCHMARKS.md "Network",
 * fifth pass). A frame of a few hundred bytes never uses half of a 256 KiB window, so jobs now send
 * none.
 *
 * What stays the same: the remote may still send up to the window granted (it stops only at zero,
 * and an update is sent before the unused credit falls under half); the frame that must carry a
 * flag (the ACK of a stream opened by the remote) is always sent; the window still grows (up to
 * the muxer's maximum) when half a window is used within four round trips, the same test, made
 * when an update goes out, as go-yamux makes it. A paused stream (the reader's queue full,
 * src/p2p/frames.ts) sends no update until it resumes, as before. The wire format is unchanged:
 * when to grant credit is the receiver's choice in the yamux spec, and peers that update after
 * every frame interoperate with this.
 *
 * Installed once, on the module's prototype, by `installYamuxWindowPolicy()` (called by
 * `createHost`); every yamux stream of the process then follows it.
 */
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'

/** Frame type and flag values of the yamux spec (frame.ts of the package, not exported). */
const WINDOW_UPDATE = 1

/** The fields of a YamuxStream that the policy reads and writes (private in the package's types). */
type WindowState = {
  state: StreamState
  recvWindow: number
  recvWindowCapacity: number
  maxStreamWindowSize: number
  epochStart: number
  getRTT(): number
  getSendFlags(): number
  sendFrame(header: { type: number; flag: number; streamID: number; length: number }): boolean
  streamId: number
}

/** Window updates sent and skipped by streams under the policy, for tests. */
export const windowUpdateStats = { sent: 0, skipped: 0 }

/**
 * `enabled: false` puts yamux's own rule back (an update after every data frame) without
 * uninstalling: the network bench's in-process A/B (bench/networkJobs.ts `--ab transport`).
 */
export const yamuxWindowPolicy = { enabled: true }

let installed = false

/**
 * Makes every yamux stream of this process grant receive credit only once half its window is
 * used (see the module doc). Idempotent.
 *
 * @example
 *   installYamuxWindowPolicy()   // before the first libp2p node starts; createHost calls it
 */
export function installYamuxWindowPolicy(): void {
  if (installed) return
  installed = true
  const yamuxOwn = YamuxStream.prototype.sendWindowUpdate
  YamuxStream.prototype.sendWindowUpdate = function sendWindowUpdate(this: YamuxStream) {
    if (!yamuxWindowPolicy.enabled) return yamuxOwn.call(this)
    const s = this as unknown as WindowState
    if (s.state === StreamState.Paused) {
      // no credit while the reader is behind; measure the next epoch from the resume
      s.epochStart = Date.now()
      return
    }
    const flags = s.getSendFlags()
    // credit still unused above half the window: the remote is far from blocking, so no frame
    if (flags === 0 && s.recvWindowCapacity > s.recvWindow / 2) {
      windowUpdateStats.skipped++
      return
    }
    const now = Date.now()
    const rtt = s.getRTT()
    // half a window used within four round trips: the window is too small for this stream's rate
    if (flags === 0 && rtt > -1 && now - s.epochStart <= rtt * 4) s.recvWindow = Math.min(s.recvWindow * 2, s.maxStreamWindowSize)
    const delta = s.recvWindow - s.recvWindowCapacity
    s.recvWindowCapacity = s.recvWindow
    s.epochStart = now
    windowUpdateStats.sent++
    s.sendFrame({ type: WINDOW_UPDATE, flag: flags, streamID: s.streamId, length: delta })
  }
}
