import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { GGMLType, rowBytes } from '../../engine/gguf/types.js'
import { randomActivations, randomRows } from '../../../test/support/testData.js'
import { sameBits } from '../../../test/support/bits.js'
import { createWasmBackend } from '../wasmBackend.js'
import { loadNativeQ8, nativeQ8Unavailable } from './q8.js'

// The weights' memory on transparent huge pages (wasmBackend.ts `grow`, q8.cc adviseHugePages):
// advised before the weights are written, the range is backed by 2 MiB pages (the process's
// AnonHugePages grows), without the advice it is not, and the matmul outputs are the same bits.
// Skipped, with the reason, without the addon or where the kernel's THP is off.

const native = loadNativeQ8()
const thp = (() => {
  try {
    return readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8')
  } catch {
    return '[never]'
  }
})()
const skip = !native
  ? `native addon unavailable: ${nativeQ8Unavailable()}`
  : typeof native.adviseHugePages !== 'function'
    ? 'the built addon predates adviseHugePages (rebuild: npm run build)'
    : thp.includes('[never]')
      ? 'transparent huge pages are off in this kernel'
      : false

/** This process's anonymous memory on huge pages, in bytes (/proc/self/smaps_rollup). */
function anonHugeBytes(): number {
  const m = /^AnonHugePages:\s+(\d+) kB/m.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'))
  assert.ok(m, 'smaps_rollup has an AnonHugePages line')
  return Number(m[1]) * 1024
}

/** The kernel's count of huge-page faults that fell back to 4 KiB pages (no free 2 MiB page). */
function thpFallbacks(): number {
  const m = /^thp_fault_fallback (\d+)$/m.exec(readFileSync('/proc/vmstat', 'utf8'))
  return m ? Number(m[1]) : 0
}

test('weights written after the huge-page advice sit on 2 MiB pages; without it they do not; same bits', { skip }, async (t) => {
  // 3,840 x 2,048 Q8_0 = 8.2 MB of weights: at least three whole 2 MiB pages wherever it starts.
  const rows = 3840
  const cols = 2048
  const data = randomRows(GGMLType.Q8_0, rows, cols, 7)
  assert.equal(data.length, rowBytes(GGMLType.Q8_0, cols) * rows)
  const x = randomActivations(cols * 5, 8)
  const outputs: Float32Array[] = []
  // Without the advice first: its range must gain no huge page (khugepaged only scans advised ranges).
  for (const hugePages of [false, true]) {
    const backend = await createWasmBackend({ threads: 1, hugePages })
    try {
      const before = anonHugeBytes()
      const fallbacks = thpFallbacks()
      const m = backend.allocMatrix('w', GGMLType.Q8_0, rows, cols)
      backend.writeRows(m, 0, data)
      const gained = anonHugeBytes() - before
      // (a machine out of free 2 MiB pages falls back to 4 KiB ones: that is the OS, not the advice)
      if (hugePages && gained < 3 * (2 << 20) && thpFallbacks() > fallbacks) t.skip('the kernel had no free huge pages (thp_fault_fallback rose)')
      else if (hugePages) assert.ok(gained >= 3 * (2 << 20), `advised weights gained ${gained} bytes of huge pages, expected >= 6 MiB`)
      else assert.equal(gained, 0, 'weights without the advice stay on 4 KiB pages')
      const y = new Float32Array(5 * rows)
      backend.matmul(m, x, 5, y)
      const y1 = new Float32Array(rows)
      backend.matmul(m, x.subarray(0, cols), 1, y1)
      outputs.push(y, y1)
    } finally {
      backend.close()
    }
  }
  sameBits(outputs[2], outputs[0], '5-token outputs with huge pages vs without')
  sameBits(outputs[3], outputs[1], 'one-token outputs with huge pages vs without')
})

test('adviseHugePages rejects a range outside the memory by name', { skip }, () => {
  const mem = new Uint8Array(new SharedArrayBuffer(1 << 16))
  assert.throws(() => native!.adviseHugePages(mem, 8, 4), /adviseHugePages takes/)
  assert.throws(() => native!.adviseHugePages(mem, 0, (1 << 16) + 1), /adviseHugePages takes/)
  assert.throws(() => native!.adviseHugePages(mem, -1, 4), /adviseHugePages takes/)
  const at = native!.hugePageOffset(mem)
  assert.ok(Number.isInteger(at) && at >= 0 && at < 2 << 20)
})
