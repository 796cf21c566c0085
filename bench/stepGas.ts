/**
 * Gas of the game's last move (stepMicro / stepOp) on a tiny model, split by call frame:
 * `node --import tsx bench/stepGas.ts MODEL [cheat:KIND|micro:OP|liar:SEED ...]`, MODEL a GGUF file
 * or `synth:PRESET:TYPE` (e.g. `synth:tiny-wide:q6_k`, the tiny preset with 11,008-column
 * `ffn_down` rows); `synth:PRESET:TYPE:7b` pads the model tree to Llama-2-7B's path depths (tensor
 * path 9 levels, `ffn_down` row path 12, ...: src/chain/weights.ts LLAMA2_7B_DEPTHS, ZERO leaves as
 * every tree is padded with), so its weight reads carry a 7B model's proofs; `micro:down` falsifies a middle micro-state of a DOWN element (its BLOCK step).
 * For each case it plays `tessera attack` on a fresh embedded chain, traces the final move
 * (debug_traceTransaction) and prints: the transaction's gas, the intrinsic part (21,000 +
 * calldata), the gas spent inside the calls to the Machine and to Settlement (each call's
 * whole subtree, the CALL's own cost excluded), and what is left for DisputeGame itself (after
 * refunds). DETAIL=1: each frame's own gas, cold SLOADs and SSTOREs; DETAIL=2: the game frame's gas
 * by opcode (FRAME_DEPTH, FRAME pick another frame); SSTORES=1: every SSTORE (depth, slot, value).
 */
import { createDevnet } from '../src/chain/devnet.js'
import { LLAMA2_7B_DEPTHS } from '../src/chain/weights.js'
import { attackJob } from '../src/dispute/attack.js'
import { type CheatKind, seededRng } from '../src/dispute/cheats.js'
import { type DisputeModel, openDisputeModel } from '../src/dispute/model.js'
import type { JobParams } from '../src/trace/receipt.js'
import { tinyDisputeModel, tinyWidePreset } from '../test/support/disputeJobs.js'
import { benchArgs } from './util.js'

const positionals = benchArgs({
  summary: "Gas of the game's last move on a tiny model, split by call frame (DETAIL=1|2, FRAME_DEPTH, FRAME, SSTORES=1 in the environment for more). MODEL: a GGUF file or synth:PRESET:TYPE[:7b]. Prints; writes nothing.",
  usage: 'node --import tsx bench/stepGas.ts MODEL [cheat:KIND|micro:OP|liar:SEED ...]',
  positionals: Number.POSITIVE_INFINITY,
})

type Log = { pc: number; op: string; gas: number; gasCost: number; depth: number; stack?: string[] }

const [path, ...cases] = positionals
if (!path) throw new Error('usage: bench/stepGas.ts MODEL.gguf|synth:PRESET:TYPE[:7b] [cheat:KIND|micro:OP|liar:SEED ...]')
tinyWidePreset()
let model: DisputeModel
if (path.startsWith('synth:')) {
  const [, preset, type, depths] = path.split(':') as [string, string, string, string?]
  model = await tinyDisputeModel(preset, type, 3, depths === '7b' ? LLAMA2_7B_DEPTHS : undefined)
} else {
  model = await openDisputeModel(path)
}
const params: JobParams = { temperature: 0, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1, repeatLastN: 64, maxTokens: 3, stop: [] }

for (const c of cases.length ? cases : ['cheat:quant32', 'cheat:silu', 'liar:1']) {
  const [kind, arg] = c.split(':') as [string, string]
  const seed = kind === 'liar' ? Number(arg) : 2
  const rng = seededRng(seed)
  const prompt = [0, 1, 2].map(() => 3 + Math.floor(rng() * (model.config.vocabSize - 3)))
  const net = await createDevnet()
  try {
    const r = await attackJob({
      net, model, job: { prompt, params, seed: BigInt(seed) }, seed, nonce: 0n,
      ...(kind === 'liar' ? { lyingChallenger: true } : kind === 'micro' ? { cheat: 'micro', microOp: arg } : { cheat: arg as CheatKind }),
    })
    const p = net.chain.provider
    const last = r.game?.moves.at(-1)
    const bn = Number(await p.request({ method: 'eth_blockNumber' }))
    let hash: string | undefined
    for (let b = bn; b > 0 && !hash; b--) {
      const blk = (await p.request({ method: 'eth_getBlockByNumber', params: [`0x${b.toString(16)}`, true] })) as { transactions: { hash: string; to: string }[] }
      const tx = blk.transactions.find((t) => t.to?.toLowerCase() === net.d.disputeGame.toLowerCase())
      if (tx) hash = tx.hash
    }
    const tx = (await p.request({ method: 'eth_getTransactionByHash', params: [hash] })) as { input: string }
    const rc = (await p.request({ method: 'eth_getTransactionReceipt', params: [hash] })) as { gasUsed: string }
    const bytes = Buffer.from(tx.input.slice(2), 'hex')
    let cd = 21000
    for (const x of bytes) cd += x === 0 ? 4 : 16
    const tr = (await p.request({ method: 'debug_traceTransaction', params: [hash, { disableMemory: true, disableStorage: true }] })) as { structLogs: Log[]; gas: number }
    const logs = tr.structLogs
    // whole-subtree gas of each depth-1 CALL/STATICCALL: gas before the call's first inner op minus gas after it returns
    const addr = (s: string) => `0x${BigInt(s).toString(16).padStart(40, '0')}`.toLowerCase()
    const calls: { to: string; gas: number }[] = []
    for (let i = 0; i < logs.length; i++) {
      const l = logs[i]!
      if (l.depth !== 1 || !['CALL', 'STATICCALL'].includes(l.op)) continue
      const to = addr(l.stack![l.stack!.length - 2]!)
      let j = i + 1
      while (j < logs.length && logs[j]!.depth > 1) j++
      const inner = j > i + 1 ? logs[i + 1]!.gas - (logs[j - 1]!.gas - logs[j - 1]!.gasCost) : 0
      calls.push({ to, gas: inner })
    }
    const name = (a: string) => a === net.d.machine?.toLowerCase() ? 'machine' : a === net.d.settlement.toLowerCase() ? 'settlement' : a
    const total = Number(rc.gasUsed)
    const inner = calls.reduce((s, x) => s + x.gas, 0)
    const sum: Record<string, number> = {}
    // precompiles (sha256 at 0x02) run inside the frame that calls them: counted with it
    for (const x of calls) if (BigInt(x.to) >= 0x100n) sum[name(x.to)] = (sum[name(x.to)] ?? 0) + x.gas
    if (process.env.SSTORES) for (const l of logs) if (l.op === 'SSTORE') console.log(`  SSTORE depth ${l.depth} slot ${l.stack!.at(-1)} <- ${l.stack!.at(-2)} (${l.gasCost})`)
    if (process.env.DETAIL) {
      // self gas per frame (children excluded), by callee, with its cold SLOADs and SSTOREs
      type Frame = { to: string; entry: number; child: number; sload: number; sstore: number; sstoreGas: number }
      const stack: Frame[] = [{ to: 'game', entry: tr.gas ?? logs[0]!.gas, child: 0, sload: 0, sstore: 0, sstoreGas: 0 }]
      const self: Record<string, { gas: number; calls: number; sload: number; sstore: number; sstoreGas: number }> = {}
      const close = (f: Frame, exitGas: number) => {
        const used = f.entry - exitGas
        const e = (self[f.to] ??= { gas: 0, calls: 0, sload: 0, sstore: 0, sstoreGas: 0 })
        e.gas += used - f.child; e.calls++; e.sload += f.sload; e.sstore += f.sstore; e.sstoreGas += f.sstoreGas
        return used
      }
      stack[0]!.entry = logs[0]!.gas
      for (let i = 0; i < logs.length; i++) {
        const l = logs[i]!
        const f = stack[stack.length - 1]!
        if (l.op === 'SLOAD' && l.gasCost > 100) f.sload++
        if (l.op === 'SSTORE') { f.sstore++; f.sstoreGas += l.gasCost }
        const next = logs[i + 1]
        if (next && next.depth > l.depth) {
          const st = l.stack!
          const to = l.op === 'CREATE' || l.op === 'CREATE2' ? 'create' : name(addr(st[st.length - 2]!))
          stack.push({ to, entry: next.gas, child: 0, sload: 0, sstore: 0, sstoreGas: 0 })
        } else if (next && next.depth < l.depth) {
          const done = stack.pop()!
          const used = close(done, l.gas - l.gasCost)
          stack[stack.length - 1]!.child += used
        }
      }
      const last = logs[logs.length - 1]!
      close(stack[0]!, last.gas - last.gasCost)
      if (process.env.DETAIL === '2') {
        // one frame's own gas by opcode (a call's child gas excluded): depth FRAME_DEPTH (default 1, the game)
        const D = Number(process.env.FRAME_DEPTH ?? 1)
        const h: Record<string, number> = {}
        let inFrame = false
        for (let i = 0; i < logs.length; i++) {
          const l = logs[i]!
          if (l.depth !== D) continue
          if (D > 1 && process.env.FRAME && logs[i - 1]!.depth === D - 1) {
            const st = logs[i - 1]!.stack!
            inFrame = name(addr(st[st.length - 2]!)) === process.env.FRAME
          }
          if (D > 1 && process.env.FRAME && !inFrame) continue
          let j = i + 1
          while (j < logs.length && logs[j]!.depth > D) j++
          if (j >= logs.length) break
          h[l.op] = (h[l.op] ?? 0) + (j > i + 1 ? l.gas - logs[j]!.gas - (logs[i + 1]!.gas - (logs[j - 1]!.gas - logs[j - 1]!.gasCost)) : l.gas - logs[j]!.gas)
        }
        console.log('  game ops:', Object.entries(h).sort((a, b) => b[1] - a[1]).slice(0, 16).map(([o, g]) => `${o}:${g}`).join(' '))
      }
      for (const [k, e] of Object.entries(self)) console.log(`  ${k}: self ${e.gas} in ${e.calls} frames, ${e.sload} cold SLOADs, ${e.sstore} SSTOREs (${e.sstoreGas})`)
    }
    console.log(JSON.stringify({ case: c, move: last?.move, at: r.game?.at, winner: r.winner, total, intrinsic: cd, calldataBytes: bytes.length, ...sum, game: total - cd - inner }))
  } finally {
    await net.close()
  }
}
model.close()
