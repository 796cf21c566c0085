/**
 * Chain commands: run the embedded devnet, deploy the contracts anywhere, stake, unstake and show
 * balances. Without --rpc they talk to the local devnet (`tessera chain start`) with its funded
 * development accounts; with --rpc they need --key (a file holding a hex private key).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import type { Address, Hex } from 'viem'
import { type Command, type ParsedArgs, UsageError } from '../args.js'
import { load } from '../lazy.js'
import { checkOutPath } from '../files.js'
import { BaseError, FileNotFoundError, InvalidParameterError } from '../../errors.js'
import type { BeaconOption, Deployment, deployTessera } from '../../chain/client.js'

/** viem, EDR and the chain client, loaded when a command runs (not for its --help). */
async function chainLibs() {
  const [
    { formatEther, getAddress, parseEther },
    { getBalances, stake, unstake },
    { deployTessera, loadDeployment, saveDeployment },
    { connectClients },
    { createEmbeddedChain, devAccount },
    { serveJsonRpc },
    beacon,
  ] = await Promise.all([
    import('viem'),
    import('../../chain/actions/settlement.js'),
    import('../../chain/client.js'),
    import('../../chain/evm/clients.js'),
    import('../../chain/evm/edr.js'),
    import('../../chain/evm/server.js'),
    import('../../chain/beacon.js'),
  ])
  const { createDevBeacon, DRAND_QUICKNET, serveBeacon, toContractPublicKey } = beacon
  return {
    formatEther,
    getAddress,
    parseEther,
    getBalances,
    stake,
    unstake,
    deployTessera,
    loadDeployment,
    saveDeployment,
    connectClients,
    createEmbeddedChain,
    devAccount,
    serveJsonRpc,
    createDevBeacon,
    DRAND_QUICKNET,
    serveBeacon,
    toContractPublicKey,
  }
}
type ChainLibs = Awaited<ReturnType<typeof chainLibs>>

const DEFAULT_DIR = '.tessera/chain'
const DEFAULT_RPC = 'http://127.0.0.1:8545'

export const connFlags = {
  rpc: { type: 'string', description: 'JSON-RPC endpoint', default: DEFAULT_RPC },
  key: { type: 'string', description: 'file with the hex private key (required unless --rpc is the local devnet)' },
  account: { type: 'number', description: 'devnet account index to use when no --key is given', default: 1 },
  deployment: { type: 'string', description: 'deployment file with contract addresses', default: join(DEFAULT_DIR, 'deployment.json') },
  'rpc-timeout': { type: 'number', description: 'seconds to wait for the JSON-RPC endpoint to answer', default: 5 },
} as const

function privateKeyFrom(args: ParsedArgs, devAccount: ChainLibs['devAccount']): Hex {
  const keyFile = args.flags.key as string | undefined
  if (keyFile) {
    if (!existsSync(keyFile)) throw new FileNotFoundError(keyFile)
    const k = readFileSync(keyFile, 'utf8').trim()
    const hex = (k.startsWith('0x') ? k : `0x${k}`) as Hex
    if (!/^0x[0-9a-fA-F]{64}$/.test(hex)) throw new InvalidParameterError('key', keyFile, 'a file holding a 32-byte hex private key')
    return hex
  }
  const rpc = String(args.flags.rpc)
  if (!/^https?:\/\/(127\.0\.0\.1|localhost)[:/]/.test(rpc + '/')) throw new UsageError('--key is required with a remote --rpc')
  return devAccount(Number(args.flags.account)).privateKey
}

/** The chain cannot be reached or used: one line a person can act on (amounts in coins). */
export class ChainError extends BaseError {
  override name = 'ChainError'
}

/** Asks `rpc` for its chain id, turning "nothing there" and "no answer" into one clear line. */
async function chainIdOf(rpc: string, timeoutSec: number, signal?: AbortSignal): Promise<number> {
  const hint = rpc === DEFAULT_RPC ? ' (is `tessera chain start` running?)' : ''
  if (!(timeoutSec > 0)) throw new InvalidParameterError('rpc-timeout', timeoutSec, 'a number of seconds > 0')
  const timeout = AbortSignal.timeout(timeoutSec * 1000)
  let res: Response
  try {
    res = await fetch(rpc, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    })
  } catch (e) {
    signal?.throwIfAborted()
    if (timeout.aborted) throw new ChainError(`no answer from ${rpc} within ${timeoutSec} s${hint}`, { cause: e })
    const code = (e as { cause?: { code?: string } }).cause?.code
    throw new ChainError(`cannot reach the chain at ${rpc}${code ? ` (${code})` : ''}${hint}`, { cause: e })
  }
  let body: { result?: unknown }
  try {
    body = (await res.json()) as { result?: unknown }
  } catch (e) {
    throw new ChainError(`${rpc} is not a JSON-RPC endpoint (HTTP ${res.status})`, { cause: e })
  }
  if (typeof body.result !== 'string' || !/^0x[0-9a-f]+$/i.test(body.result)) throw new ChainError(`${rpc} did not give its chain id`)
  return Number(BigInt(body.result))
}

export async function connect(args: ParsedArgs, signal?: AbortSignal) {
  const rpc = String(args.flags.rpc)
  const { connectClients, devAccount } = await chainLibs()
  const privateKey = privateKeyFrom(args, devAccount)
  const chainId = await chainIdOf(rpc, Number(args.flags['rpc-timeout']), signal)
  return connectClients({ transport: rpc, chainId, privateKey })
}

/** Fails before any work if nothing can listen on 127.0.0.1:`port`. */
async function checkPortFree(port: number): Promise<void> {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidParameterError('port', port, 'an integer from 0 to 65535')
  await new Promise<void>((resolve, reject) => {
    const probe = createServer()
    probe.once('error', (e: NodeJS.ErrnoException) => reject(portError(port, e)))
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()))
  })
}

function portError(port: number, e: NodeJS.ErrnoException): Error {
  if (e.code === 'EADDRINUSE') return new ChainError(`port ${port} is in use (another chain running?)`, { details: 'stop it or pick another with --port', cause: e })
  if (e.code === 'EACCES') return new ChainError(`port ${port} needs more privileges`, { details: 'pick one above 1023 with --port', cause: e })
  return e
}

function amountFlag(args: ParsedArgs, parseEther: ChainLibs['parseEther']): bigint {
  const raw = args.flags.amount
  if (raw === undefined) throw new UsageError('--amount is required')
  try {
    const v = parseEther(String(raw))
    if (v <= 0n) throw new Error()
    return v
  } catch {
    throw new InvalidParameterError('amount', raw, 'a positive amount in coins, e.g. 1.5')
  }
}

/** The deployment parameters of a `--params` file: { settlement, game, audits } with numbers as strings or numbers. */
function deployParams(file: string | undefined): Parameters<typeof deployTessera>[1] {
  if (file === undefined) return {}
  if (!existsSync(file)) throw new FileNotFoundError(file)
  let raw: Record<string, Record<string, string | number>>
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    throw new InvalidParameterError('params', file, 'a JSON file of { settlement, game, audits }')
  }
  const smallInts = new Set(['auditBps', 'rewardBps', 'premiumBps', 'collusionBps', 'dataBps', 'maxRedraws'])
  const conv = (o: Record<string, string | number> | undefined) => o && Object.fromEntries(Object.entries(o).map(([k, v]) => [k, smallInts.has(k) ? Number(v) : BigInt(v)]))
  return { settlement: conv(raw.settlement), game: conv(raw.game), audits: conv(raw.audits) } as Parameters<typeof deployTessera>[1]
}

/** Mines an empty block if the latest is `seconds` old (a real chain's blocks keep coming; contracts read block time). */
async function mineIfQuiet(provider: { request(a: { method: string; params?: unknown[] }): Promise<unknown> }, seconds: number): Promise<void> {
  const block = (await provider.request({ method: 'eth_getBlockByNumber', params: ['latest', false] })) as { timestamp: string }
  if (Date.now() / 1000 - Number(BigInt(block.timestamp)) >= seconds) await provider.request({ method: 'evm_mine', params: [] })
}

const start: Command = {
  name: 'chain start',
  summary: 'Run the embedded chain with Tessera deployed, over JSON-RPC on 127.0.0.1',
  usage: 'chain start [--port 8545] [--data-dir .tessera/chain] [--params FILE] [--block-time SEC] [--beacon-port PORT]',
  flags: {
    port: { type: 'number', description: 'JSON-RPC port on 127.0.0.1', default: 8545 },
    'data-dir': { type: 'string', description: 'where the chain journal and deployment file live', default: DEFAULT_DIR },
    accounts: { type: 'number', description: 'number of funded development accounts', default: 10 },
    params: { type: 'string', description: 'JSON file of deployment parameters { settlement, game, audits } (numbers as strings), e.g. a short audit and challenge window for tests' },
    'block-time': {
      type: 'number',
      description: 'mine an empty block when none came for this many seconds (chain time then follows the clock: audit draws wait for it); 0: only transactions mine',
      default: 0,
    },
    'beacon-port': { type: 'number', description: "also serve the devnet beacon's rounds (drand HTTP API) on 127.0.0.1 at this port" },
  },
  async run(args, signal) {
    const { connectClients, createDevBeacon, createEmbeddedChain, deployTessera, loadDeployment, saveDeployment, serveBeacon, serveJsonRpc } = await load(signal, chainLibs())
    const dir = String(args.flags['data-dir'])
    const port = Number(args.flags.port)
    await checkPortFree(port)
    mkdirSync(dir, { recursive: true })
    const chain = await createEmbeddedChain({ dataDir: dir, accounts: Number(args.flags.accounts) })
    try {
      signal.throwIfAborted()
      const depFile = join(dir, 'deployment.json')
      const c = connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[0].privateKey })
      let dep: Deployment
      if (chain.replayed > 0 && existsSync(depFile)) dep = loadDeployment(depFile, chain.chainId)
      else {
        dep = await deployTessera(c, deployParams(args.flags.params as string | undefined))
        saveDeployment(depFile, dep)
      }
      signal.throwIfAborted()
      const b = dep.params.beacon
      const beaconSrv =
        args.flags['beacon-port'] !== undefined && b?.devSeed
          ? await serveBeacon(createDevBeacon({ seed: b.devSeed, genesisTime: Number(b.genesisTime), period: Number(b.period) }), { port: Number(args.flags['beacon-port']) })
          : undefined
      const srv = await serveJsonRpc(chain.provider, { port }).catch((e) => {
        throw portError(port, e)
      })
      try {
        console.log(`tessera chain: ${srv.url} (chain id ${chain.chainId}, ${chain.replayed} journal entries replayed)`)
        console.log(`contracts: registry ${dep.registry}, datasets ${dep.datasets ?? '-'}, settlement ${dep.settlement}, disputeGame ${dep.disputeGame} (${depFile})`)
        console.log('development accounts (address, private key; these keys are public: never use them for real value):')
        chain.accounts.forEach((a, i) => console.log(`  [${i}] ${a.address}  ${a.privateKey}`))
        if (beaconSrv) console.log(`beacon: ${beaconSrv.url} (the devnet's key: public, devnets only)`)
        const blockTime = Number(args.flags['block-time'])
        if (!(blockTime >= 0)) throw new InvalidParameterError('block-time', blockTime, 'seconds >= 0')
        const miner = blockTime > 0 ? setInterval(() => void mineIfQuiet(chain.provider, blockTime).catch(() => {}), blockTime * 1000) : undefined
        // Serves until Ctrl-C (the signal), then closes the server and the chain's journal.
        if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
        clearInterval(miner)
      } finally {
        await beaconSrv?.close()
        await srv.close()
      }
    } finally {
      await chain.close()
    }
    return 0
  },
}

const deploy: Command = {
  name: 'chain deploy',
  summary: 'Deploy the Tessera contracts to a chain and write the deployment file',
  usage: 'chain deploy [--rpc URL --key FILE] [--beacon quicknet|dev|ADDRESS] [--out FILE [--force]]',
  flags: {
    ...connFlags,
    beacon: {
      type: 'string',
      description:
        "the audit draws' randomness: quicknet (drand's League of Entropy beacon; the default with a remote --rpc), dev (the devnet's beacon, whose key is public: the default on a local chain) or the address of a deployed Beacon",
    },
    out: { type: 'string', description: 'where to write the deployment file', default: 'deployment.json' },
    force: { type: 'boolean', description: 'overwrite the --out file if it exists' },
  },
  async run(args, signal) {
    checkOutPath(String(args.flags.out), args.flags.force === true)
    const libs = await load(signal, chainLibs())
    const { deployTessera, saveDeployment } = libs
    const beacon = beaconOption(args, libs)
    const c = await connect(args, signal)
    const dep = await deployTessera(c, { beacon })
    saveDeployment(String(args.flags.out), dep)
    console.log(`deployed on chain ${dep.chainId}: registry ${dep.registry}, settlement ${dep.settlement}, disputeGame ${dep.disputeGame}`)
    console.log(`wrote ${args.flags.out}`)
    return 0
  },
}

/** The beacon `chain deploy` wires Audits to (docs/CHAIN.md "Beacon"). */
function beaconOption(args: ParsedArgs, { DRAND_QUICKNET, getAddress, toContractPublicKey }: ChainLibs): BeaconOption | undefined {
  const local = /^https?:\/\/(127\.0\.0\.1|localhost)[:/]/.test(`${String(args.flags.rpc)}/`)
  const b = String(args.flags.beacon ?? (local ? 'dev' : 'quicknet'))
  if (b === 'dev') return undefined
  if (b === 'quicknet') return { publicKey: toContractPublicKey(DRAND_QUICKNET.public_key), genesisTime: DRAND_QUICKNET.genesis_time, period: DRAND_QUICKNET.period }
  if (/^0x[0-9a-fA-F]{40}$/.test(b)) return { address: getAddress(b) }
  throw new InvalidParameterError('beacon', b, 'quicknet, dev or the 0x address of a deployed Beacon')
}

const stakeCmd: Command = {
  name: 'stake',
  group: 'chain',
  summary: 'Bond coins as a provider or auditor',
  usage: 'stake --amount COINS [--role provider|auditor]',
  flags: { ...connFlags, amount: { type: 'string', description: 'amount in coins' }, role: { type: 'string', description: 'provider or auditor', default: 'provider' } },
  async run(args, signal) {
    const role = String(args.flags.role)
    if (role !== 'provider' && role !== 'auditor') throw new InvalidParameterError('role', role, 'provider or auditor')
    const { formatEther, getBalances, loadDeployment, parseEther, stake } = await load(signal, chainLibs())
    const amount = amountFlag(args, parseEther)
    const c = await connect(args, signal)
    const d = loadDeployment(String(args.flags.deployment), c.chain.id)
    // Staking sends the coins: say so in coins before the chain reverts with a wei dump.
    const wallet = await c.public.getBalance({ address: c.account.address })
    if (wallet === 0n) throw new ChainError(`account ${c.account.address} has no coins`, { details: 'fund it first (a devnet account: --account N)' })
    if (wallet <= amount) throw new ChainError(`cannot stake ${formatEther(amount)} coin: account ${c.account.address} holds ${formatEther(wallet)}`)
    await stake(c, d, { role, amount })
    const b = await getBalances(c, d, c.account.address)
    console.log(`${c.account.address} staked as ${role}: active ${formatEther(b.stake.active)}`)
    return 0
  },
}

const unstakeCmd: Command = {
  name: 'unstake',
  group: 'chain',
  summary: 'Start unbonding stake (withdrawable after the unbonding delay)',
  usage: 'unstake --amount COINS',
  flags: { ...connFlags, amount: { type: 'string', description: 'amount in coins' } },
  async run(args, signal) {
    const { formatEther, getBalances, loadDeployment, parseEther, unstake } = await load(signal, chainLibs())
    const c = await connect(args, signal)
    const d = loadDeployment(String(args.flags.deployment), c.chain.id)
    await unstake(c, d, { amount: amountFlag(args, parseEther) })
    const s = (await getBalances(c, d, c.account.address)).stake
    console.log(`unbonding ${formatEther(s.unbonding)}, withdrawable after ${new Date(Number(s.unbondAt) * 1000).toISOString()}`)
    return 0
  },
}

const balance: Command = {
  name: 'balance',
  group: 'chain',
  summary: 'Show coins, escrow, earnings and stake of an account',
  usage: 'balance [--address 0x...]',
  flags: { ...connFlags, address: { type: 'string', description: 'account to show (default: the signer)' } },
  async run(args, signal) {
    const { formatEther, getAddress, getBalances, loadDeployment } = await load(signal, chainLibs())
    const c = await connect(args, signal)
    const d = loadDeployment(String(args.flags.deployment), c.chain.id)
    let who: Address
    try {
      who = args.flags.address ? getAddress(String(args.flags.address)) : c.account.address
    } catch {
      throw new InvalidParameterError('address', args.flags.address, 'a 20-byte hex address')
    }
    const b = await getBalances(c, d, who)
    const role = ['none', 'provider', 'auditor'][b.stake.role] ?? 'unknown'
    console.log(`${who}`)
    console.log(`  wallet     ${formatEther(b.wallet)}`)
    console.log(`  escrow     ${formatEther(b.escrow)}`)
    console.log(`  owed       ${formatEther(b.owed + b.owedByGame)}`)
    console.log(`  stake      ${formatEther(b.stake.active)} (${role}), of which locked by pending claims ${formatEther(b.stake.locked)}, unbonding ${formatEther(b.stake.unbonding)}`)
    return 0
  },
}

export const chainCommands: Command[] = [start, deploy, stakeCmd, unstakeCmd, balance]
