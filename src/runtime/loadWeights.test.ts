import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import type { Backend, MatrixHandle } from '../engine/kernels/backend.js'
import { computeGgufModelRoot } from '../engine/gguf/modelRoot.js'
import { bufferSource, readGguf } from '../engine/gguf/read.js'
import { rowBytes } from '../engine/gguf/types.js'
import { encodeGguf } from '../engine/gguf/write.js'
import { modelConfigFromGguf } from '../engine/model/config.js'
import { synthModel } from '../engine/model/synth.js'
import { toHex } from '../trace/merkle.js'
import { openGgufSource, writeGgufFile } from './ggufFile.js'
import { loadWeights } from './loadWeights.js'

/** A backend that only records what it is given. */
function recordingBackend() {
  const writes: { name: string; row0: number; bytes: Uint8Array }[] = []
  const mats: MatrixHandle[] = []
  const backend: Backend = {
    kind: 'reference',
    threads: 1,
    allocMatrix(name, type, rows, cols) {
      const m = { name, type, rows, cols }
      mats.push(m)
      return m
    },
    writeRows(m, row0, bytes) {
      writes.push({ name: m.name, row0, bytes: bytes.slice() })
    },
    matmul() {
      throw new Error('not used')
    },
    getRow() {
      throw new Error('not used')
    },
    close() {},
  }
  return { backend, writes, mats }
}

const dir = mkdtempSync(join(tmpdir(), 'tessera-load-'))
after(() => rmSync(dir, { recursive: true, force: true }))

describe('loadWeights', () => {
  for (const type of ['q4_k_m', 'bf16']) {
    it(`streams every ${type} row into the backend in chunks and computes the model root`, () => {
      const path = join(dir, `tiny-${type}.gguf`)
      const written = writeGgufFile(path, encodeGguf(synthModel({ preset: 'tiny-qwen2', type, seed: 5 })))
      const file = readFileSync(path)
      assert.equal(file.length, written)
      const { backend, writes, mats } = recordingBackend()
      const w = loadWeights(path, backend, { chunkBytes: 20000 })
      const gguf = readGguf(bufferSource(file))
      const matrices = gguf.tensors.filter((t) => t.dims.length === 2)
      assert.deepEqual(mats.map((m) => m.name), matrices.map((t) => t.name))
      for (const t of matrices) {
        const rb = rowBytes(t.type, t.dims[0])
        const ws = writes.filter((x) => x.name === t.name)
        assert.ok(ws.length > 1 || t.byteLength <= 20000, `${t.name} arrives in chunks`)
        let next = 0
        for (const x of ws) {
          assert.equal(x.row0, next)
          assert.ok(x.bytes.length <= Math.max(20000, rb) && x.bytes.length % rb === 0)
          assert.deepEqual(x.bytes, new Uint8Array(file.subarray(t.fileOffset + next * rb, t.fileOffset + next * rb + x.bytes.length)))
          next += x.bytes.length / rb
        }
        assert.equal(next, t.dims[1], `${t.name}: all rows written`)
        assert.equal(w.matrices[t.name].rows, t.dims[1])
      }
      assert.equal(w.vectors['output_norm.weight'].length, 256)
      assert.equal(w.vectors['blk.1.attn_k.bias'].length, 128)
      assert.equal(w.config.arch, 'qwen2')
      const direct = computeGgufModelRoot(bufferSource(file), gguf, modelConfigFromGguf(gguf.metadata, gguf.tensors))
      assert.equal(toHex(w.modelRoot), toHex(direct.modelRoot))
      assert.equal(w.tensorRoots.length, gguf.tensors.length)
    })
  }

  it('gives the plain reference model root with the hash on 0, 1 or 2 worker threads, whatever the read size', () => {
    for (const type of ['q8_0', 'q6_k', 'f16']) {
      const path = join(dir, `roots-${type}.gguf`)
      writeGgufFile(path, encodeGguf(synthModel({ preset: 'tiny', type, seed: 9 })))
      const file = readFileSync(path)
      const gguf = readGguf(bufferSource(file))
      const ref = computeGgufModelRoot(bufferSource(file), gguf, modelConfigFromGguf(gguf.metadata, gguf.tensors), 4 << 20, 'reference')
      for (const [hashWorkers, chunkBytes] of [[0, 4 << 20], [1, 3000], [2, 20000], [2, 4 << 20]]) {
        const w = loadWeights(path, recordingBackend().backend, { hashWorkers, chunkBytes })
        assert.equal(toHex(w.modelRoot), toHex(ref.modelRoot), `${type}, ${hashWorkers} hash workers, reads of ${chunkBytes}`)
        assert.deepEqual(w.tensorRoots.map((t) => toHex(t.rowRoot)), ref.tensorRoots.map((t) => toHex(t.rowRoot)))
      }
    }
  })

  it('reports a truncated file and a missing file by name', () => {
    const path = join(dir, 'cut.gguf')
    writeGgufFile(path, encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 1 })))
    truncateSync(path, 100000)
    assert.throws(() => loadWeights(path, recordingBackend().backend), { name: 'GgufFormatError' })
    assert.throws(() => loadWeights(path, recordingBackend().backend, { hashWorkers: 0 }), { name: 'GgufFormatError' })
    assert.throws(() => loadWeights(join(dir, 'nope.gguf'), recordingBackend().backend), { name: 'FileNotFoundError' })
  })

  it('writes atomically: a failing stream leaves no file behind', () => {
    const path = join(dir, 'fail.gguf')
    function* chunks() {
      yield new Uint8Array(10)
      throw new Error('boom')
    }
    assert.throws(() => writeGgufFile(path, chunks()), /boom/)
    assert.throws(() => openGgufSource(path), { name: 'FileNotFoundError' })
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('fail.gguf')), [])
  })
})
