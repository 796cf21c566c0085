import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { rowCommitmentsInto } from '../engine/gguf/modelRoot.js'
import { GGMLType, rowBytes } from '../engine/gguf/types.js'
import { type Hash, merkleRootPacked, toHex } from '../trace/merkle.js'
import { createHashPool } from './hashWorkers.js'

function fill(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n)
  let x = seed
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    out[i] = x >>> 24
  }
  return out
}

describe('hash worker pool', () => {
  it('writes the same commitments as rowCommitmentsInto, under back-pressure, from owned and borrowed buffers', () => {
    const type = GGMLType.Q8_0
    const cols = 11008 // 6 chunks, the last one shorter
    const rb = rowBytes(type, cols)
    const rows = 40
    const all = fill(rows * rb, 5)
    const expected = new Uint8Array(32 * rows)
    rowCommitmentsInto(type, cols, all, expected, 0)
    const pool = createHashPool({ workers: 2, maxInFlight: 3 * rb })
    try {
      const got = new Uint8Array(32 * rows)
      for (let r = 0; r < rows; r += 3) {
        const n = Math.min(3, rows - r)
        // Even pieces are fresh buffers (transferred); odd ones are views into `all` (copied).
        const piece = (r / 3) % 2 === 0 ? all.slice(r * rb, (r + n) * rb) : all.subarray(r * rb, (r + n) * rb)
        pool.hash(type, cols, piece, got, 32 * r)
      }
      pool.drain()
      assert.equal(toHex(got), toHex(expected))
      assert.equal(all.length, rows * rb, 'a borrowed view is not detached')
      // A row root requested before its rows are hashed is computed once they are all in.
      const commits = new Uint8Array(32 * rows)
      let root: Hash | undefined
      let early: Hash | undefined
      for (let r = 0; r < rows; r += 7) pool.hash(type, cols, all.slice(r * rb, Math.min(r + 7, rows) * rb), commits, 32 * r)
      pool.rowRoot(commits, rows, (h) => { root = h })
      pool.rowRoot(expected.slice(0, 32 * 5), 5, (h) => { early = h })
      assert.throws(() => pool.hash(type, cols, all.slice(0, rb), commits, 0), { name: 'RangeError' })
      pool.drain()
      assert.equal(toHex(root!), toHex(merkleRootPacked(expected, rows)))
      assert.equal(toHex(early!), toHex(merkleRootPacked(expected, 5)))
    } finally {
      pool.close()
    }
  })

  it('reports a failing job as HashWorkerError and refuses work once closed', () => {
    const pool = createHashPool({ workers: 1 })
    try {
      pool.hash(GGMLType.Q8_0, 64, new Uint8Array(rowBytes(GGMLType.Q8_0, 64) + 1), new Uint8Array(64), 0)
      assert.throws(() => pool.drain(), { name: 'HashWorkerError' })
    } finally {
      pool.close()
    }
    assert.throws(() => pool.hash(GGMLType.Q8_0, 64, new Uint8Array(68), new Uint8Array(32), 0), { name: 'HashWorkerError' })
    assert.throws(() => createHashPool({ workers: 0 }), { name: 'RangeError' })
  })
})
