/**
 * The gateway role of `tessera node start --role client,gateway`: its flags (`--gateway-port`,
 * `--gateway-host`, `--api-key`, `--api-key-file`, `--rate-limit N/min`, `--chat-template`), their
 * checks, and the start of the OpenAI-compatible gateway (src/node/gateway/networkGateway.ts) on
 * the running node, with the node's account paying through its escrow.
 */
import { readFileSync } from 'node:fs'
import type { Deployment } from '../../chain/client.js'
import { FileNotFoundError, InvalidParameterError } from '../../errors.js'
import type { NetworkGateway } from '../../node/gateway/networkGateway.js'
import type { TesseraNode } from '../../node/node.js'
import type { Model } from '../../runtime/model.js'
import { type FlagSpec, type ParsedArgs, stringList, UsageError } from '../args.js'

export const GATEWAY_FLAGS: Record<string, FlagSpec> = {
  'gateway-port': { type: 'number', description: 'gateway: the OpenAI-compatible HTTP port (0: any free port)', default: 8080 },
  'gateway-host': { type: 'string', description: 'gateway: the address it listens on', default: '127.0.0.1' },
  'api-key': { type: 'string', description: 'gateway: a key clients must send as "Authorization: Bearer KEY" (repeatable)', multiple: true },
  'api-key-file': { type: 'string', description: 'gateway: a file of keys, one a line (# comments)' },
  'rate-limit': { type: 'string', description: 'gateway: completions each key may start a minute, e.g. 60/min' },
  'chat-template': { type: 'string', description: "gateway: a Jinja chat template file replacing every --model's own (or NAME=FILE for one model)", multiple: true },
}

export type GatewayRoleConfig = {
  port: number
  host: string
  apiKeys: string[]
  ratePerMinute?: number
  /** Template text by model name, or '*' for every model. */
  templates: Map<string, string>
}

const readText = (path: string) => {
  try {
    return readFileSync(path, 'utf8')
  } catch (e) {
    throw new FileNotFoundError(path, e)
  }
}

/** `--rate-limit` as requests a minute: `N`, `N/min`, `N/m` or `N/s` (times 60). */
export function parseRateLimit(raw: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*(min|m|minute|s|sec|second))?\s*$/i.exec(raw)
  const n = m ? Number(m[1]) * (/^s/i.test(m[2] ?? '') ? 60 : 1) : Number.NaN
  if (!(n > 0)) throw new InvalidParameterError('rate-limit', raw, 'requests a minute, e.g. 60/min')
  return n
}

/** The gateway flags, checked; undefined when the node has no gateway role (then they are refused). */
export function gatewayConfigOf(a: ParsedArgs, hasRole: boolean): GatewayRoleConfig | undefined {
  const given = Object.keys(GATEWAY_FLAGS).filter((k) => k !== 'gateway-port' && k !== 'gateway-host' && a.flags[k] !== undefined && (!Array.isArray(a.flags[k]) || a.flags[k].length > 0))
  if (!hasRole) {
    if (given.length) throw new UsageError(`--${given[0]} is for a gateway (--role client,gateway)`)
    return undefined
  }
  if (stringList(a.flags.model).length === 0) throw new UsageError('a gateway needs --model FILE (the GGUF of each model it serves: tokenizer and chat template)')
  const port = Number(a.flags['gateway-port'])
  if (!(Number.isInteger(port) && port >= 0 && port <= 65535)) throw new InvalidParameterError('gateway-port', a.flags['gateway-port'], 'a port from 0 to 65535')
  const apiKeys = stringList(a.flags['api-key'])
  if (a.flags['api-key-file'] !== undefined) {
    for (const line of readText(String(a.flags['api-key-file'])).split('\n')) {
      const k = line.replace(/#.*/, '').trim()
      if (k) apiKeys.push(k)
    }
    if (apiKeys.length === 0) throw new InvalidParameterError('api-key-file', a.flags['api-key-file'], 'a file with at least one key')
  }
  for (const k of apiKeys) if (!/^[\x21-\x7e]{8,256}$/.test(k)) throw new InvalidParameterError('api-key', '(hidden)', 'a key of 8 to 256 printable characters without spaces')
  const ratePerMinute = a.flags['rate-limit'] === undefined ? undefined : parseRateLimit(String(a.flags['rate-limit']))
  const templates = new Map<string, string>()
  for (const t of stringList(a.flags['chat-template'])) {
    const eq = t.indexOf('=')
    const [name, file] = eq > 0 && !t.slice(0, eq).includes('/') ? [t.slice(0, eq), t.slice(eq + 1)] : ['*', t]
    templates.set(name, readText(file))
  }
  return { port, host: String(a.flags['gateway-host']), apiKeys, ratePerMinute, templates }
}

/**
 * Starts the gateway on a running node: loads each `--model` (its tokenizer and chat template),
 * opens the node's account (its keystore) for requests and acknowledgements.
 */
export async function startGatewayRole(o: {
  node: TesseraNode
  dataDir: string
  passphrase: string
  rpc: string
  deployment: Deployment
  models: string[]
  config: GatewayRoleConfig
  log: (l: string) => void
}): Promise<NetworkGateway & { close(): Promise<void> }> {
  if (o.models.length === 0) throw new UsageError('a gateway needs --model FILE (the GGUF of each model it serves: tokenizer and chat template)')
  // Loaded here, not at the top: `tessera node start --help` lists this file's flags.
  const [{ connectClients }, { gatewayModelOf }, { startNetworkGateway }, { loadKeystore }, { loadModel }] = await Promise.all([
    import('../../chain/evm/clients.js'),
    import('../../node/gateway/backend.js'),
    import('../../node/gateway/networkGateway.js'),
    import('../../node/keystore.js'),
    import('../../runtime/model.js'),
  ])
  const engines: Model[] = []
  try {
    for (const p of o.models) engines.push(await loadModel(p, { hugePages: true }))
    const models = engines.map((m) => gatewayModelOf(m))
    const chatTemplates: Record<string, string> = {}
    for (const [name, text] of o.config.templates) {
      const hits = name === '*' ? models : models.filter((m) => m.name === name || m.id === name)
      if (hits.length === 0) throw new InvalidParameterError('chat-template', name, `a model name: ${models.map((m) => m.name).join(', ')}`)
      for (const m of hits) chatTemplates[m.id] = text
    }
    const key = await loadKeystore(o.dataDir, o.passphrase)
    const clients = connectClients({ transport: o.rpc, chainId: o.deployment.chainId, privateKey: key.privateKey })
    const gw = await startNetworkGateway({
      node: o.node,
      clients,
      deployment: o.deployment,
      models,
      port: o.config.port,
      host: o.config.host,
      apiKeys: o.config.apiKeys,
      ratePerMinute: o.config.ratePerMinute,
      chatTemplates,
      log: o.log,
      onSlash: (who, amount) => o.log(`gateway: ${who} was slashed (${amount} wei); no more jobs are routed to it`),
    })
    for (const w of gw.gateway.warnings) o.log(w)
    o.log(`gateway at ${gw.url}/v1 (${models.map((m) => m.id).join(', ')})${o.config.apiKeys.length ? `, ${o.config.apiKeys.length} API key(s)` : ', no API key'}`)
    return {
      ...gw,
      close: async () => {
        await gw.close()
        for (const m of engines) m.close()
      },
    }
  } catch (e) {
    for (const m of engines) m.close()
    throw e
  }
}
