/**
 * A hash worker of `hashWorkers.ts`: commits to the rows it is sent with `rowCommitmentsInto`
 * and computes row roots with `merkleRootPacked` (the single-thread path's own code), and posts
 * the hashes back on its port.
 */
import { type MessagePort, workerData } from 'node:worker_threads'
import { rowCommitmentsInto } from '../engine/gguf/modelRoot.js'
import { rowBytes } from '../engine/gguf/types.js'
import { merkleRootPacked } from '../trace/merkle.js'
import { type HashJob, type HashReply, Sync } from './hashProtocol.js'

const { sync, port } = workerData as { sync: SharedArrayBuffer; port: MessagePort }
const flags = new Int32Array(sync)

port.on('message', (job: HashJob) => {
  let reply: HashReply
  let transfer: ArrayBuffer[] = []
  try {
    let out: Uint8Array
    if (job.kind === 'root') out = merkleRootPacked(job.bytes, job.rows)
    else {
      out = new Uint8Array(32 * (job.bytes.length / rowBytes(job.type, job.cols)))
      rowCommitmentsInto(job.type, job.cols, job.bytes, out, 0)
    }
    reply = { id: job.id, hashes: out }
    transfer = [out.buffer as ArrayBuffer]
  } catch (e) {
    reply = { id: job.id, error: e instanceof Error ? e.message : String(e) }
  }
  port.postMessage(reply, transfer)
  Atomics.add(flags, Sync.REPLIES, 1)
  Atomics.notify(flags, Sync.REPLIES)
})
Atomics.add(flags, Sync.STARTED, 1)
Atomics.notify(flags, Sync.REPLIES)
