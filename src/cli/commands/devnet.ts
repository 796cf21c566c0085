/**
 * `tessera devnet` (what `npm start` runs): a whole network on 127.0.0.1 in one terminal — the
 * embedded chain, the devnet beacon, providers, cheating providers, auditors and an OpenAI-compatible
 * gateway (src/node/devnet.ts) — then a banner saying how to use it, until Ctrl-C.
 */
import { CHEAT_KINDS, type CheatKind } from '../../dispute/cheatKinds.js'
import { InvalidParameterError } from '../../errors.js'
import type { RunningDevnet } from '../../node/devnet.js'
import type { Command } from '../args.js'
import { load } from '../lazy.js'
import { checkInputFile } from '../files.js'

const time = () => new Date().toISOString().slice(11, 19)

/** What a person needs to use the devnet, ready to paste. */
export function bannerLines(net: RunningDevnet, startedMs: number): string[] {
  const url = net.gatewayUrl
  const model = net.model.name
  const pad = (s: string) => s.padEnd(13)
  const lines = [
    '',
    `tessera devnet is up (${(startedMs / 1000).toFixed(1)} s${net.replayed > 0 ? ', resumed' : ''})`,
    `  ${pad('gateway')}${url}   (OpenAI-compatible; any API key)`,
    `  ${pad('model')}${model}   (id ${net.model.id})`,
  ]
  if (net.explorerUrl) lines.push(`  ${pad('explorer')}${net.explorerUrl}   (providers, jobs, disputes, live)`)
  if (net.model.shipped)
    lines.push(`  ${pad('')}Tessera's own 1.1M-parameter model, trained on Moby-Dick and State of the Union addresses: expect 19th-century English, not a chatbot (--model FILE for another GGUF)`)
  lines.push(
    `  ${pad('chain')}${net.rpcUrl} (chain id ${net.chainId}; contracts in ${net.deploymentFile})`,
    `  ${pad('beacon')}${net.beaconUrl}`,
    `  ${pad('gateway key')}${net.gatewayAddress} (pays the jobs from its escrow)`,
    ...net.nodes.map((n) => `  ${pad(n.role)}${n.name} ${n.address} pid ${n.pid}`),
    `  ${pad('data')}${net.dataDir} (node logs: nodes/NAME/node.log; status: tessera node status --data ${net.dataDir}/nodes/NAME)`,
    '',
    'Try it:',
    `  curl ${url}/chat/completions -H 'content-type: application/json' \\`,
    `    -d '{"model":"${model}","messages":[{"role":"user","content":"Hello"}],"max_tokens":32}'`,
    '',
    '  # Python (pip install openai)',
    '  from openai import OpenAI',
    `  client = OpenAI(base_url="${url}", api_key="x")`,
    `  r = client.chat.completions.create(model="${model}", messages=[{"role": "user", "content": "Hello"}], max_tokens=32)`,
    '  print(r.choices[0].message.content, r.model_extra["tessera"]["provider"])',
    '',
    '  // JavaScript (npm install openai)',
    "  import OpenAI from 'openai'",
    `  const client = new OpenAI({ baseURL: '${url}', apiKey: 'x' })`,
    `  const r = await client.chat.completions.create({ model: '${model}', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 32 })`,
    '  console.log(r.choices[0].message.content, r.tessera.provider)',
    '',
    `Every answer carries a signed receipt (the "tessera" object; GET ${url}/receipts/ID returns its job file for tessera verify).`,
    `Ctrl-C stops every node; the next start with the same --data resumes the chain.`,
  )
  return lines
}

const devnet: Command = {
  name: 'devnet',
  summary: 'Run a whole network on this machine: chain, providers, auditors and an OpenAI-compatible gateway',
  usage: 'devnet [--providers N] [--auditors M] [--cheaters K] [--model FILE] [--port P] [--data DIR]',
  flags: {
    providers: { type: 'number', description: 'honest providers', default: 2 },
    auditors: { type: 'number', description: 'auditors', default: 1 },
    cheaters: { type: 'number', description: 'cheating providers (they commit wrong traces; the auditors catch them)', default: 0 },
    cheat: { type: 'string', description: `how the cheaters cheat (${CHEAT_KINDS.join(', ')})`, default: 'silu' },
    model: { type: 'string', short: 'm', description: 'GGUF model the providers serve (default: the shipped model, models/default/model-q8_0.gguf)' },
    port: { type: 'number', description: 'gateway port on 127.0.0.1 (0: a free one)', default: 8080 },
    data: { type: 'string', description: "the devnet's folder (chain journal, node keystores and stores, logs)", default: '.tessera/devnet' },
    'audit-bps': { type: 'number', description: 'share of jobs the audit draw picks, in basis points (fresh chains only)', default: 5000 },
    'ready-timeout': { type: 'number', description: 'seconds to wait for every node and offer', default: 120 },
  },
  async run(args, signal) {
    const cheat = String(args.flags.cheat)
    if (!CHEAT_KINDS.includes(cheat as CheatKind)) throw new InvalidParameterError('cheat', cheat, CHEAT_KINDS.join(', '))
    const model = args.flags.model as string | undefined
    if (model !== undefined) checkInputFile(model)
    const port = Number(args.flags.port)
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidParameterError('port', args.flags.port, 'an integer from 0 to 65535')
    const readyTimeout = Number(args.flags['ready-timeout'])
    if (!(readyTimeout > 0)) throw new InvalidParameterError('ready-timeout', args.flags['ready-timeout'], 'seconds > 0')
    const log = (line: string) => console.error(`${time()} ${line}`)
    const t0 = performance.now()
    // Children are this same CLI (compiled, or through tsx when run from source).
    const cli = [process.execPath, ...process.execArgv, process.argv[1]]
    const { startDevnet } = await load(signal, import('../../node/devnet.js'))
    const net = await startDevnet({
      dataDir: String(args.flags.data),
      providers: Number(args.flags.providers),
      auditors: Number(args.flags.auditors),
      cheaters: Number(args.flags.cheaters),
      cheat: cheat as CheatKind,
      model,
      port,
      cli,
      auditBps: Number(args.flags['audit-bps']),
      readyTimeoutMs: readyTimeout * 1000,
      log,
      signal,
    })
    try {
      console.log(bannerLines(net, performance.now() - t0).join('\n'))
      if (!signal.aborted)
        await new Promise<void>((resolve) => {
          signal.addEventListener('abort', () => resolve(), { once: true })
          process.once('SIGTERM', () => resolve())
        })
      log('stopping the devnet ...')
    } finally {
      await net.stop()
    }
    log('stopped')
    return 0
  },
}

export const devnetCommands: Command[] = [devnet]
