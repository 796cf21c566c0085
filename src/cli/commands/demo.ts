/**
 * `tessera demo`: the main job end to end on the embedded defaults — Tessera's shipped model
 * (models/default/, trained by `tessera train`; or a synthesized one with --preset) answers a
 * prompt with a receipt, the job is replayed to verify it bit for bit, and settled on the
 * embedded chain.
 */
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Command } from '../args.js'

const demo: Command = {
  name: 'demo',
  summary: 'Answer a prompt with the shipped model and a receipt, verify it by replay, settle it on the embedded chain',
  usage: 'demo [--preset NAME [--type TYPE] [--dir DIR]] [--prompt TEXT] [--threads T]',
  flags: {
    preset: { type: 'string', description: 'synthesize this preset (random weights) instead of using the shipped model, e.g. smol-135m' },
    type: { type: 'string', description: 'tensor type of the synthesized model', default: 'q8_0' },
    dir: { type: 'string', description: 'where a synthesized model is kept', default: '.tessera/demo' },
    prompt: { type: 'string', description: 'prompt text', default: 'Call me Ishmael. Some years ago' },
    'max-tokens': { type: 'number', description: 'tokens to generate', default: 32 },
    threads: { type: 'number', description: 'kernel threads', default: 2 },
  },
  async run(a) {
    // Everything below is loaded only when the demo runs (see main.ts on start-up cost).
    const [
      { encodeGguf },
      { formatEther },
      { stake },
      { deployTessera },
      { connectClients },
      { createEmbeddedChain },
      { proveModelConfig },
      { synthModel },
      { settleJob },
      { writeGgufFile },
      runtime,
      { problemsText },
    ] = await Promise.all([
      import('../../engine/gguf/write.js'),
      import('viem'),
      import('../../chain/actions/settlement.js'),
      import('../../chain/client.js'),
      import('../../chain/evm/clients.js'),
      import('../../chain/evm/edr.js'),
      import('../../dispute/model.js'),
      import('../../engine/model/synth.js'),
      import('../../node/settleJob.js'),
      import('../../runtime/ggufFile.js'),
      import('../../runtime/model.js'),
      import('../../trace/job.js'),
    ])
    const { generate, loadModel, verify } = runtime
    const preset = a.flags.preset as string | undefined
    let path: string
    if (preset === undefined) {
      path = (await import('../../runtime/defaultModel.js')).DEFAULT_MODEL_PATH
      console.error(`1/4 using the shipped model ${path}`)
      console.error('    1.1M parameters trained by `tessera train` on Moby-Dick and State of the Union addresses (docs/TRAINING.md):')
      console.error('    it continues 19th-century English; it is not a chatbot')
    } else {
      const type = a.flags.type as string
      const dir = a.flags.dir as string
      path = join(dir, `${preset}-${type}.gguf`)
      if (!existsSync(path)) {
        mkdirSync(dir, { recursive: true })
        console.error(`1/4 synthesizing ${preset} (${type}) into ${path} ...`)
        const spec = synthModel({ preset, type, seed: 1 })
        const bytes = writeGgufFile(path, encodeGguf(spec))
        console.error(`    ${(bytes / 1e6).toFixed(1)} MB written`)
      } else console.error(`1/4 using ${path}`)
      console.error('    note: a synthetic model has random weights, so its text is nonsense; the point is the receipt')
      console.error('    (a commitment to every step of the computation) and the replay that checks it bit for bit')
    }

    console.error(`2/4 loading and generating (greedy, ${a.flags.threads} threads)`)
    const model = await loadModel(path, { threads: a.flags.threads as number })
    try {
      const prompt = a.flags.prompt as string
      process.stdout.write(`\n${prompt}`)
      const r = generate(model, { prompt, maxTokens: a.flags['max-tokens'] as number, temperature: 0, onText: (t) => process.stdout.write(t) })
      process.stdout.write('\n\n')
      console.log('receipt:', JSON.stringify(r.receipt, null, 2))

      console.error('3/4 verifying by teacher-forced replay')
      const v = verify(model, { receipt: r.receipt, promptTokens: r.promptTokens, outputTokens: r.outputTokens, leaves: r.leaves })
      console.log(v.valid ? `verified: ${r.outputTokens.length} tokens, trace root ${r.receipt.traceRoot}` : `NOT verified: ${problemsText(v)}`)
      if (!v.valid) return 1

      console.error('4/4 settling the job on the embedded chain (register model, request, claim, finalize)')
      const chain = await createEmbeddedChain({ accounts: 3 })
      try {
        const at = (i: number) => connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[i].privateKey })
        const [anyone, provider, client] = [at(0), at(1), at(2)]
        const d = await deployTessera(anyone)
        await stake(provider, d, { role: 'provider', amount: 10n ** 18n })
        const config = proveModelConfig(path, model.transformer.config, model.tokenizer)
        const price = 10n ** 12n
        const s = await settleJob(
          d,
          { provider, client, anyone },
          {
            receipt: r.receipt,
            pricePerToken: price,
            nonce: 0n,
            config,
            warp: async (sec) => {
              await chain.provider.request({ method: 'evm_increaseTime', params: [Number(sec)] })
              await chain.provider.request({ method: 'evm_mine', params: [] })
            },
          },
        )
        console.log(`settled: batch ${s.batchId}, provider earned ${formatEther(s.earned)} coin for ${r.receipt.nPrompt + r.receipt.nOutput} tokens (claim gas ${s.claimGas})`)
      } finally {
        await chain.close()
      }
      return 0
    } finally {
      model.close()
    }
  },
}

export const demoCommands: Command[] = [demo]
