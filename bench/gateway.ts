/**
 * The gateway benchmark: time to first token and tokens/s through the OpenAI-compatible gateway
 * (local backend: the engine in this process, each receipt signed) against the engine called
 * directly (`generateAsync`), at 1, 8 and 32 concurrent streams, on the same prompts and seeds (so
 * the same tokens), and the gateway's own overhead.
 *
 * - direct: N concurrent `generateAsync` calls started together; TTFT is the time from the round's
 *   start to a stream's first `onText`, tokens/s the output tokens of all streams over the wall
 *   time of the round.
 * - gateway: N concurrent streaming `POST /v1/completions` (token-id prompts: the same prompt the
 *   engine gets, no template) read as raw SSE over keep-alive HTTP; TTFT is the time to the first
 *   content event, tokens/s as above (the streams' usage chunks count the tokens).
 * - overhead: (1) the same requests against a gateway whose backend answers at once with a fixed
 *   text (no engine): request to first content event and to [DONE], the gateway's whole cost per
 *   request (HTTP, JSON, validation, SSE); (2) the median TTFT through the gateway minus direct,
 *   one stream at a time. Target: under 5 ms at the median.
 *
 * Usage: node --import tsx bench/gateway.ts [--model FILE.gguf] [--tokens 32] [--rounds 3] [--concurrency 1,8,32]
 * (default model: a tiny synthesized Q8_0 under .tessera/bench/). Note the machine's load (printed).
 */
import { existsSync, mkdirSync } from 'node:fs'
import { Agent, request as httpRequest } from 'node:http'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { privateKeyToAccount } from 'viem/accounts'
import { signReceipt } from '../src/chain/client.js'
import { devAccount } from '../src/chain/evm/edr.js'
import { devnetDomain } from '../src/cli/commands/signedReceipt.js'
import { encodeGguf } from '../src/engine/gguf/write.js'
import { synthModel } from '../src/engine/model/synth.js'
import { type GatewayBackend, localBackend } from '../src/node/gateway/backend.js'
import { startGateway } from '../src/node/gateway/server.js'
import { receiptFieldsOf } from '../src/node/transcript.js'
import { writeGgufFile } from '../src/runtime/ggufFile.js'
import { generateAsync, loadModel, type Model } from '../src/runtime/model.js'
import { arg, benchArgs, median } from './util.js'

benchArgs({
  summary: 'Time to first token and tokens/s through the OpenAI-compatible gateway against the engine called directly, at several concurrencies, and the gateway\'s own overhead. Prints tables; writes nothing.',
  usage: 'npm run bench:gateway [-- flags]   (node --import tsx bench/gateway.ts [flags])',
  flags: {
    model: { value: 'FILE.gguf', help: 'the model (default: a tiny synthesized Q8_0 under .tessera/bench/)' },
    tokens: { value: 'N', help: 'output tokens per stream (default 32)' },
    rounds: { value: 'N', help: 'rounds per level (default 3)' },
    concurrency: { value: 'LIST', help: 'concurrent streams (default 1,8,32)' },
  },
})

const TOKENS = Number(arg('tokens', '32'))
const ROUNDS = Number(arg('rounds', '3'))
const LEVELS = arg('concurrency', '1,8,32').split(',').map(Number)

function modelPath(): string {
  const given = arg('model', '')
  if (given) return given
  const dir = '.tessera/bench'
  const path = join(dir, 'gateway-tiny-q8_0.gguf')
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true })
    writeGgufFile(path, encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 11 })))
  }
  return path
}

/** A prompt of 16 token ids, different per stream. */
const promptOf = (m: Model, i: number) => Array.from({ length: 16 }, (_, k) => 3 + ((i * 31 + k * 7) % (m.tokenizer.vocabSize - 3)))
const params = { temperature: 0.8, topP: 1, maxTokens: TOKENS }

type Round = { ttft: number[]; tokens: number; ms: number }

async function directRound(m: Model, n: number, round: number): Promise<Round> {
  const t0 = performance.now()
  const ttft: number[] = []
  let tokens = 0
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      // every stream is asked at the round's start, as the gateway's requests are
      const s0 = t0
      let first: number | undefined
      const r = await generateAsync(m, { prompt: promptOf(m, i), seed: BigInt(round * 1000 + i), ...params, onText: () => (first ??= performance.now() - s0) })
      ttft.push(first ?? performance.now() - s0)
      tokens += r.outputTokens.length
    }),
  )
  return { ttft, tokens, ms: performance.now() - t0 }
}

const agent = new Agent({ keepAlive: true, maxSockets: 256 })

/** One streaming completion; resolves with its TTFT (first content event) and its token count (usage). */
function streamOnce(url: string, body: unknown): Promise<{ ttft: number; tokens: number; total: number }> {
  return new Promise((resolve, reject) => {
    const s0 = performance.now()
    let first: number | undefined
    let buf = ''
    let tokens = 0
    const req = httpRequest(`${url}/v1/completions`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume()
        return reject(new Error(`HTTP ${res.statusCode}`))
      }
      res.setEncoding('utf8')
      res.on('data', (d: string) => {
        buf += d
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const ev = buf.slice(6, i)
          buf = buf.slice(i + 2)
          if (ev === '[DONE]') continue
          const j = JSON.parse(ev) as { choices: { text?: string }[]; usage?: { completion_tokens: number } }
          if (first === undefined && j.choices[0]?.text) first = performance.now() - s0
          if (j.usage) tokens = j.usage.completion_tokens
        }
      })
      res.on('end', () => resolve({ ttft: first ?? performance.now() - s0, tokens, total: performance.now() - s0 }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
}

async function gatewayRound(url: string, m: Model, n: number, round: number): Promise<Round> {
  const t0 = performance.now()
  const rs = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      streamOnce(url, { model: 'bench', prompt: promptOf(m, i), seed: round * 1000 + i, temperature: 0.8, top_p: 1, max_tokens: TOKENS, stream: true, stream_options: { include_usage: true } }),
    ),
  )
  return { ttft: rs.map((r) => r.ttft), tokens: rs.reduce((a, r) => a + r.tokens, 0), ms: performance.now() - t0 }
}

/** A backend that answers at once with TOKENS pieces of text: the gateway's cost alone. */
function instantBackend(real: GatewayBackend): GatewayBackend {
  return {
    models: real.models,
    async run(req, onText) {
      const out = Array.from({ length: TOKENS }, (_, i) => 3 + (i % 50))
      for (let i = 0; i < TOKENS; i++) onText(' tok')
      return {
        outputTokens: out, text: ' tok'.repeat(TOKENS), stopReason: 'length', usage: { promptTokens: req.promptTokens.length, completionTokens: TOKENS },
        bundle: { receipt: undefined as never },
      }
    },
  }
}

const f1 = (x: number) => x.toFixed(1)
const f2 = (x: number) => x.toFixed(2)

async function main() {
  const path = modelPath()
  const m = await loadModel(path)
  const signer = { account: privateKeyToAccount(devAccount(1).privateKey), ...devnetDomain() }
  const backend = localBackend([{ model: m, name: 'bench' }], signer)
  const gw = await startGateway({ backend, maxConcurrent: 256 })
  const bare = await startGateway({ backend: instantBackend(backend), maxConcurrent: 256 })
  console.log(`gateway benchmark: ${path}, ${TOKENS} tokens a stream, ${ROUNDS} rounds per level (medians), ${cpus().length} CPUs, load ${loadavg().map(f2).join(' ')}`)
  try {
    // warm-up: both paths once
    await directRound(m, 2, 99)
    await gatewayRound(gw.url, m, 2, 99)
    const rows: string[] = []
    let ttftDelta1 = Number.NaN
    for (const n of LEVELS) {
      const d: Round[] = []
      const g: Round[] = []
      // one stream at a time is noisy on a loaded machine: more rounds there
      for (let r = 0; r < (n === 1 ? Math.max(ROUNDS, 20) : ROUNDS); r++) {
        // alternated, so drifts in machine load hit both
        d.push(await directRound(m, n, r))
        g.push(await gatewayRound(gw.url, m, n, r))
      }
      const ttftD = median(d.flatMap((x) => x.ttft))
      const ttftG = median(g.flatMap((x) => x.ttft))
      const tpsD = median(d.map((x) => (x.tokens * 1000) / x.ms))
      const tpsG = median(g.map((x) => (x.tokens * 1000) / x.ms))
      if (n === 1) ttftDelta1 = ttftG - ttftD
      rows.push(`| ${n} | ${f1(ttftD)} | ${f1(ttftG)} | ${f2(ttftG / ttftD)} | ${f1(tpsD)} | ${f1(tpsG)} | ${f2(tpsG / tpsD)} |`)
    }
    console.log('')
    console.log('| streams | TTFT direct ms | TTFT gateway ms | ratio | tok/s direct | tok/s gateway | ratio |')
    console.log('|---:|---:|---:|---:|---:|---:|---:|')
    for (const r of rows) console.log(r)

    // the gateway alone (instant backend), one request at a time
    const first: number[] = []
    const whole: number[] = []
    for (let i = 0; i < 20; i++) await streamOnce(bare.url, { model: 'bench', prompt: promptOf(m, i), max_tokens: TOKENS, stream: true })
    for (let i = 0; i < 200; i++) {
      const r = await streamOnce(bare.url, { model: 'bench', prompt: promptOf(m, i), max_tokens: TOKENS, stream: true, stream_options: { include_usage: true } })
      first.push(r.ttft)
      whole.push(r.total)
    }
    const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b)
    const p90 = (xs: number[]) => sorted(xs)[Math.floor(xs.length * 0.9)]
    console.log('')
    console.log(`gateway overhead, instant backend (200 requests, 1 at a time): to first token median ${f2(median(first))} ms (p90 ${f2(p90(first))}), to [DONE] median ${f2(median(whole))} ms (p90 ${f2(p90(whole))})`)
    console.log(`TTFT through the gateway minus direct, 1 stream: ${f2(ttftDelta1)} ms at the median (target: under 5 ms)`)
    // what a served job costs beyond the engine (the local backend does it, as a provider does): signing its receipt
    const sample = await generateAsync(m, { prompt: promptOf(m, 0), seed: 1n, ...params })
    const fields = receiptFieldsOf(sample.receipt, `0x${'11'.repeat(32)}`)
    const signMs: number[] = []
    for (let i = 0; i < 30; i++) {
      const t = performance.now()
      await signReceipt(signer.account, signer.chainId, signer.settlement, fields)
      signMs.push(performance.now() - t)
    }
    console.log(`receipt signing (EIP-712, secp256k1) per job, in the gateway's numbers and not the direct ones: median ${f2(median(signMs))} ms`)
    console.log(`load after: ${loadavg().map(f2).join(' ')}`)
  } finally {
    await gw.close()
    await bare.close()
    agent.destroy()
    m.close()
  }
}

await main()
