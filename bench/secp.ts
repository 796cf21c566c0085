/**
 * secp256k1 on the job path (issue 8): CPU µs per operation of the native twin
 * (src/runtime/native/secp.cc, libsecp256k1) against the plain path it replaces: signing (viem's
 * `sign`, what a local account's `sign({ hash })` runs), recovery (@noble/curves'
 * `recoverPublicKey`, what chain/evm/secp.ts's `recoverSigner` runs) and the check against a known
 * key (noble with the key's precomputed multiples, chain/evm/secp.ts's cached-key `isSignedBy`),
 * and Keccak-256 (the addon's `keccak256` against viem's, on 64, 160 and 288 bytes, hot, and one
 * whole `flatTypedDigest` with the twin installed and without). Native and plain alternate round by round in one process, so both see the same machine load;
 * process CPU time (user + system), the median over rounds. Then the thread-pool forms
 * (`signAsync`, `recoverAsync`, `verifyAsync`) against the synchronous calls, also interleaved: the
 * wall time per operation awaited one at a time (what the pool hop adds to a caller that waits), the
 * JS thread's CPU per operation (what a caller that overlaps saves; Linux's per-thread schedstat)
 * and the process's CPU (the pool thread's work included). With `--baseline FILE` (another build of
 * tessera_secp.node, e.g. a copy of an earlier tree's), a third table: the synchronous forms of the
 * two addons interleaved the same way, after checking they give the same bytes and answers. Prints
 * the tables; writes nothing.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { resolve } from 'node:path'
import { cpuUsage } from 'node:process'
import { loadavg } from 'node:os'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { type Address, bytesToHex, type Hex, keccak256, toHex } from 'viem'
import { sign } from 'viem/accounts'
import { keccak256Bytes, useNativeSecp } from '../src/chain/evm/secp.js'
import { type FlatField, flatTypedDigest } from '../src/chain/typedDigest.js'
import { loadNativeSecp, type NativeSecp, nativeSecpUnavailable } from '../src/runtime/native/secp.js'
import { arg, benchArgs, median } from './util.js'

benchArgs({
  summary: 'CPU µs per secp256k1 sign / recover / known-key check and keccak-256, native (secp.cc) against viem and noble, interleaved. Prints tables; writes nothing.',
  usage: 'node --import tsx bench/secp.ts [flags]',
  flags: {
    ops: { value: 'N', help: 'operations per round and path (default 200)' },
    rounds: { value: 'N', help: 'rounds, native and plain alternating; the median reported (default 5)' },
    baseline: { value: 'FILE', help: 'another tessera_secp.node to compare the built one with (a third table)' },
  },
})

const native = loadNativeSecp()
if (!native) throw new Error(`bench/secp.ts needs the native secp256k1: ${nativeSecpUnavailable()}`)
const OPS = Number(arg('ops', '200'))
const ROUNDS = Number(arg('rounds', '5'))
const { Point, Signature } = secp256k1
const Fn = Point.Fn

// OPS signers and hashes, each signature once
const cases = Array.from({ length: OPS }, (_, i) => {
  const key = keccak256(toHex(`bench secp key ${i}`))
  const hash = keccak256(toHex(`bench secp hash ${i}`))
  const keyBytes = Uint8Array.from(Buffer.from(key.slice(2), 'hex'))
  const hashBytes = Uint8Array.from(Buffer.from(hash.slice(2), 'hex'))
  const out = new Uint8Array(65)
  native.sign(hashBytes, keyBytes, out)
  const pub = secp256k1.getPublicKey(keyBytes, false)
  const r = BigInt(bytesToHex(out.subarray(0, 32)))
  const s = BigInt(bytesToHex(out.subarray(32, 64)))
  return { key: key as Hex, hash: hash as Hex, keyBytes, hashBytes, rs: out.slice(0, 64), parity: out[64] - 27, r, s, pub, point: Point.fromBytes(pub).precompute(6) }
})

/** CPU µs per call of f over every case. */
async function perOp(f: (c: (typeof cases)[number]) => unknown): Promise<number> {
  const t = cpuUsage()
  for (const c of cases) await f(c)
  const d = cpuUsage(t)
  return (d.user + d.system) / OPS
}

const out = new Uint8Array(65)
const ops: [string, (c: (typeof cases)[number]) => unknown, string, (c: (typeof cases)[number]) => unknown][] = [
  ['sign', (c) => native.sign(c.hashBytes, c.keyBytes, out), 'viem sign', (c) => sign({ hash: c.hash, privateKey: c.key })],
  ['recover', (c) => native.recover(c.hashBytes, c.rs, c.parity, out), 'noble recoverPublicKey', (c) => new Signature(c.r, c.s, c.parity).recoverPublicKey(c.hashBytes)],
  [
    'known-key check',
    (c) => native.verify(c.hashBytes, c.rs, c.parity, c.pub),
    'noble, precomputed key',
    (c) => {
      const is = Fn.inv(c.s)
      const h = Fn.create(BigInt(c.hash))
      const R = Point.BASE.multiplyUnsafe(Fn.create(h * is)).add(c.point.multiplyUnsafe(Fn.create(c.r * is))).toAffine()
      return R.x === c.r && Number(R.y & 1n) === c.parity
    },
  ],
]
// warm-up (JIT, tables), then the rounds
for (const [, n, , p] of ops) await Promise.all([perOp(n), perOp(p)])
const load0 = loadavg()[0]
const times = ops.map(() => ({ native: [] as number[], plain: [] as number[] }))
for (let round = 0; round < ROUNDS; round++) {
  for (const [i, [, n, , p]] of ops.entries()) {
    const first = round % 2 === 0
    const a = await perOp(first ? n : p)
    const b = await perOp(first ? p : n)
    times[i].native.push(first ? a : b)
    times[i].plain.push(first ? b : a)
  }
}
console.log(`| operation (${OPS} ops x ${ROUNDS} rounds, load ${load0.toFixed(1)}-${loadavg()[0].toFixed(1)}) | native µs | plain µs | plain path | speed-up |`)
console.log('|---|---|---|---|---|')
for (const [i, [name, , plain]] of ops.entries()) {
  const [n, p] = [median(times[i].native), median(times[i].plain)]
  console.log(`| ${name} | ${n.toFixed(0)} | ${p.toFixed(0)} | ${plain} | ${(p / n).toFixed(2)}x |`)
}

// Keccak-256 (the addon's `keccak256` against viem's `keccak256(data, 'bytes')`, noble's JS) on the
// 64, 160 and 288 bytes (one, two and three blocks of the 136-byte rate; a digest hashes its
// struct's words, 32 x (fields + 1) bytes, then 66); then one whole flatTypedDigest of a JobRequest
// (320 bytes and 66 hashed, and the words' encoding) with the twin installed and without.
const KECCAK_REPS = 20
const sizes = [64, 160, 288]
const inputs = sizes.map((n) => cases.map((c, i) => Uint8Array.from({ length: n }, (_, j) => c.hashBytes[(i + j) % 32] ^ j)))
const kOut = new Uint8Array(32)
const REQUEST: FlatField[] = [
  { name: 'provider', type: 'address' }, { name: 'modelRoot', type: 'bytes32' }, { name: 'promptRoot', type: 'bytes32' },
  { name: 'paramsHash', type: 'bytes32' }, { name: 'seed', type: 'uint64' }, { name: 'nonce', type: 'uint64' },
  { name: 'expiry', type: 'uint64' }, { name: 'maxTokens', type: 'uint32' }, { name: 'pricePerToken', type: 'uint128' },
]
const contract = `0x${cases[0].hash.slice(2, 42)}` as Address
const requests = cases.map((c, i) => ({
  provider: `0x${c.hash.slice(26)}`, modelRoot: c.hash, promptRoot: c.key, paramsHash: c.hash, seed: BigInt(i), nonce: BigInt(i + 1), expiry: 0n, maxTokens: 256, pricePerToken: 10n ** 12n,
}))
/** CPU µs per call: each case's call KECCAK_REPS times. */
function perHash(f: (i: number) => unknown): number {
  const t = cpuUsage()
  for (let r = 0; r < KECCAK_REPS; r++) for (let i = 0; i < OPS; i++) f(i)
  const d = cpuUsage(t)
  return (d.user + d.system) / OPS / KECCAK_REPS
}
const digestWith = (impl: NativeSecp | undefined) => (i: number) => {
  useNativeSecp(impl)
  return flatTypedDigest(31337, contract, 'JobRequest', REQUEST, requests[i])
}
const hashes: [string, (i: number) => unknown, (i: number) => unknown][] = [
  ...sizes.map((n, k): [string, (i: number) => unknown, (i: number) => unknown] => [
    `keccak256, ${n} bytes`,
    (i) => native.keccak256(inputs[k][i], kOut),
    (i) => keccak256(inputs[k][i], 'bytes'),
  ]),
  ['flatTypedDigest (JobRequest: 320 + 66 bytes hashed)', digestWith(native), digestWith(undefined)],
]
// the same bytes first, then a warm-up (JIT)
for (let i = 0; i < 8; i++) if (digestWith(native)(i) !== digestWith(undefined)(i)) throw new Error('flatTypedDigest differs with the twin')
useNativeSecp(native)
for (const xs of inputs) for (const x of xs.slice(0, 8)) if (bytesToHex(keccak256Bytes(x)) !== keccak256(x)) throw new Error('keccak256 differs')
for (const [, n, p] of hashes) {
  perHash(n)
  perHash(p)
}
const loadK = loadavg()[0]
const kTimes = hashes.map(() => ({ native: [] as number[], plain: [] as number[] }))
for (let round = 0; round < ROUNDS; round++) {
  for (const [i, [, n, p]] of hashes.entries()) {
    const first = round % 2 === 0
    const a = perHash(first ? n : p)
    const b = perHash(first ? p : n)
    kTimes[i].native.push(first ? a : b)
    kTimes[i].plain.push(first ? b : a)
  }
}
useNativeSecp(undefined)
console.log('')
console.log(`| hash (${OPS} inputs x ${KECCAK_REPS} x ${ROUNDS} rounds, hot, load ${loadK.toFixed(1)}-${loadavg()[0].toFixed(1)}) | native µs | viem µs | speed-up |`)
console.log('|---|---|---|---|')
for (const [i, [name]] of hashes.entries()) {
  const [n, p] = [median(kTimes[i].native), median(kTimes[i].plain)]
  console.log(`| ${name} | ${n.toFixed(2)} | ${p.toFixed(2)} | ${(p / n).toFixed(1)}x |`)
}

/** The JS thread's on-CPU time in ns (Linux: /proc/self/task/<pid>/schedstat), undefined elsewhere. */
function jsThreadNs(): number | undefined {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0])
  } catch {
    return undefined
  }
}

type Cost = { wall: number; js: number; proc: number }
/** µs per call of f over every case, each awaited before the next: wall, JS thread's CPU, process CPU. */
async function costPerOp(f: (c: (typeof cases)[number]) => unknown): Promise<Cost> {
  const [w, j, t] = [process.hrtime.bigint(), jsThreadNs(), cpuUsage()]
  for (const c of cases) await f(c)
  const d = cpuUsage(t)
  const j1 = jsThreadNs()
  return { wall: Number(process.hrtime.bigint() - w) / 1e3 / OPS, js: j === undefined || j1 === undefined ? Number.NaN : (j1 - j) / 1e3 / OPS, proc: (d.user + d.system) / OPS }
}

const pooled: [string, (c: (typeof cases)[number]) => unknown, (c: (typeof cases)[number]) => Promise<unknown>][] = [
  ['signAsync', (c) => native.sign(c.hashBytes, c.keyBytes, out), (c) => native.signAsync(c.hashBytes, c.keyBytes)],
  ['recoverAsync', (c) => native.recover(c.hashBytes, c.rs, c.parity, out), (c) => native.recoverAsync(c.hashBytes, c.rs, c.parity)],
  ['verifyAsync (known-key check)', (c) => native.verify(c.hashBytes, c.rs, c.parity, c.pub), (c) => native.verifyAsync(c.hashBytes, c.rs, c.parity, c.pub)],
]
for (const [, f, g] of pooled) await Promise.all([costPerOp(f), costPerOp(g)])
const loadA = loadavg()[0]
const costs = pooled.map(() => ({ sync: [] as Cost[], pool: [] as Cost[] }))
for (let round = 0; round < ROUNDS; round++) {
  for (const [i, [, f, g]] of pooled.entries()) {
    const first = round % 2 === 0
    const a = await costPerOp(first ? f : g)
    const b = await costPerOp(first ? g : f)
    costs[i].sync.push(first ? a : b)
    costs[i].pool.push(first ? b : a)
  }
}
const med = (xs: Cost[], k: keyof Cost) => median(xs.map((x) => x[k]))
console.log('')
console.log(
  `| thread-pool form (${OPS} ops x ${ROUNDS} rounds, each awaited, load ${loadA.toFixed(1)}-${loadavg()[0].toFixed(1)}) | sync wall µs | async wall µs | hop µs | sync JS-thread CPU µs | async JS-thread CPU µs | async process CPU µs |`,
)
console.log('|---|---|---|---|---|---|---|')
for (const [i, [name]] of pooled.entries()) {
  const [s, p] = [costs[i].sync, costs[i].pool]
  const cells = [med(s, 'wall'), med(p, 'wall'), med(p, 'wall') - med(s, 'wall'), med(s, 'js'), med(p, 'js'), med(p, 'proc')]
  console.log(`| ${name} | ${cells.map((x) => x.toFixed(0)).join(' | ')} |`)
}

const baselineFile = arg('baseline', '')
if (baselineFile) {
  const base = createRequire(import.meta.url)(resolve(baselineFile)) as NativeSecp
  // the same bytes and answers first (a faster addon that answers differently is no baseline's twin)
  const [o1, o2] = [new Uint8Array(65), new Uint8Array(65)]
  for (const c of cases) {
    native.sign(c.hashBytes, c.keyBytes, o1)
    base.sign(c.hashBytes, c.keyBytes, o2)
    if (bytesToHex(o1) !== bytesToHex(o2)) throw new Error(`--baseline: sign differs on ${c.hash}`)
    if (!base.recover(c.hashBytes, c.rs, c.parity, o2) || bytesToHex(o2) !== bytesToHex(c.pub)) throw new Error(`--baseline: recover differs on ${c.hash}`)
    if (!base.verify(c.hashBytes, c.rs, c.parity, c.pub) || base.verify(c.hashBytes, c.rs, 1 - c.parity, c.pub)) throw new Error(`--baseline: verify differs on ${c.hash}`)
  }
  const vs: [string, (a: NativeSecp, c: (typeof cases)[number]) => unknown][] = [
    ['sign', (a, c) => a.sign(c.hashBytes, c.keyBytes, out)],
    ['recover', (a, c) => a.recover(c.hashBytes, c.rs, c.parity, out)],
    ['known-key check (verify)', (a, c) => a.verify(c.hashBytes, c.rs, c.parity, c.pub)],
  ]
  for (const [, f] of vs) await Promise.all([perOp((c) => f(native, c)), perOp((c) => f(base, c))])
  const loadB = loadavg()[0]
  const t = vs.map(() => ({ built: [] as number[], base: [] as number[] }))
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, [, f]] of vs.entries()) {
      const first = round % 2 === 0
      const a = await perOp((c) => f(first ? native : base, c))
      const b = await perOp((c) => f(first ? base : native, c))
      t[i].built.push(first ? a : b)
      t[i].base.push(first ? b : a)
    }
  }
  console.log('')
  console.log(`| against ${baselineFile} (${OPS} ops x ${ROUNDS} rounds, load ${loadB.toFixed(1)}-${loadavg()[0].toFixed(1)}) | built µs | baseline µs | speed-up |`)
  console.log('|---|---|---|---|')
  for (const [i, [name]] of vs.entries()) {
    const [n, b] = [median(t[i].built), median(t[i].base)]
    console.log(`| ${name} | ${n.toFixed(0)} | ${b.toFixed(0)} | ${(b / n).toFixed(2)}x |`)
  }
}
