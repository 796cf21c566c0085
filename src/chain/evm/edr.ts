/**
 * The embedded chain: an in-process EVM (`@nomicfoundation/edr`, the engine inside Hardhat) behind
 * a small EIP-1193 provider, so viem and every other client talk to it like to any JSON-RPC node.
 * EDR's API changes between minor versions, so this is the only file that imports it.
 *
 * State survives restarts through a journal: EDR has no state dump, so every state-changing
 * request (raw transactions, time travel, mining, balance/code overrides) is appended to
 * `<dataDir>/journal.jsonl` together with the timestamp of the block it produced, and replayed
 * on start with those timestamps pinned. Replay reproduces the same blocks, hashes and state.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as edr from '@nomicfoundation/edr'
import { type Address, type Hex, getAddress, keccak256, toHex } from 'viem'
import { privateKeyToAddress } from 'viem/accounts'
import { fromHex } from '../../engine/bytes.js'
import { BaseError } from '../../errors.js'

/** The minimal EIP-1193 surface that viem's `custom()` transport needs. */
export type Eip1193Provider = {
  request(args: { method: string; params?: unknown[] | object }): Promise<unknown>
}

/** A pre-funded development account: its private key is public knowledge, never use it for value. */
export type DevAccount = { address: Address; privateKey: Hex }

export type EmbeddedChainOptions = {
  /** Chain id (default 31337, the usual devnet id wallets recognise). */
  chainId?: number
  /** Number of pre-funded accounts (default 10). */
  accounts?: number
  /** Balance of each account in wei (default 10^24 = one million coins). */
  balance?: bigint
  /** Where the journal lives; without it the chain is in memory only. */
  dataDir?: string
  /** Genesis timestamp in seconds (default now; a restored chain keeps its original one). */
  genesisTime?: number
}

export type EmbeddedChain = {
  provider: Eip1193Provider
  accounts: DevAccount[]
  chainId: number
  /** Number of journal entries replayed on start (0 for a fresh chain). */
  replayed: number
  close(): Promise<void>
}

/** A JSON-RPC error from the chain, carrying the standard `code` and revert `data` viem decodes. */
export class RpcRequestError extends BaseError {
  override name = 'RpcRequestError'
  readonly code: number
  readonly data?: unknown
  constructor(method: string, code: number, message: string, data?: unknown) {
    super(message, { details: `${method} (code ${code})` })
    this.code = code
    this.data = data
  }
}

/** The journal cannot be replayed (edited, truncated, or written by an incompatible version). */
export class ChainJournalError extends BaseError {
  override name = 'ChainJournalError'
}

/**
 * Development keys are derived, not random, so every devnet has the same funded accounts:
 * key_i = keccak256("tessera-devnet-account-" || i). Never send real value to them.
 */
export function devAccount(index: number): DevAccount {
  const privateKey = keccak256(toHex(`tessera-devnet-account-${index}`))
  return { privateKey, address: privateKeyToAddress(privateKey) }
}

// Requests that change state and therefore go into the journal.
const JOURNALED = new Set([
  'eth_sendRawTransaction', 'eth_sendTransaction', 'evm_increaseTime', 'evm_setNextBlockTimestamp',
  'evm_mine', 'hardhat_mine', 'hardhat_setBalance', 'hardhat_setCode', 'hardhat_setNonce',
  'hardhat_setStorageAt', 'evm_setAutomine',
])
// Requests whose effect is to mine a block: replay pins that block's timestamp.
const MINES = new Set(['eth_sendRawTransaction', 'eth_sendTransaction', 'evm_mine'])

type JournalHeader = { tessera: 'chain-journal/1'; chainId: number; accounts: number; balance: string; genesisTime: number }
type JournalEntry = { m: string; p: unknown[]; t?: number }

let context: edr.EdrContext | undefined
let contextReady: Promise<void> | undefined

/** EDR allows one context per process; providers share it. */
async function edrContext(): Promise<edr.EdrContext> {
  if (!context) {
    context = new edr.EdrContext()
    contextReady = context.registerProviderFactory(edr.L1_CHAIN_TYPE, edr.l1ProviderFactory())
  }
  await contextReady
  return context
}

/**
 * Starts an embedded chain with pre-funded accounts, restoring it from `opts.dataDir` when a
 * journal is there. Takes ~20 ms fresh; a restore replays the journal (~1-3k requests/s).
 *
 * @example
 *   const chain = await createEmbeddedChain()
 *   const client = createPublicClient({ transport: custom(chain.provider) })
 *   await client.getBalance({ address: chain.accounts[0].address })  // 10n ** 24n
 *   await chain.close()
 */
export async function createEmbeddedChain(opts: EmbeddedChainOptions = {}): Promise<EmbeddedChain> {
  const journalPath = opts.dataDir ? join(opts.dataDir, 'journal.jsonl') : undefined
  let header: JournalHeader = {
    tessera: 'chain-journal/1',
    chainId: opts.chainId ?? 31337,
    accounts: opts.accounts ?? 10,
    balance: String(opts.balance ?? 10n ** 24n),
    genesisTime: opts.genesisTime ?? Math.floor(Date.now() / 1000),
  }
  let entries: JournalEntry[] = []
  if (journalPath && existsSync(journalPath)) {
    const lines = readFileSync(journalPath, 'utf8').split('\n').filter((l) => l.trim() !== '')
    try {
      header = JSON.parse(lines[0])
      entries = lines.slice(1).map((l) => JSON.parse(l))
    } catch (err) {
      throw new ChainJournalError(`cannot parse ${journalPath}`, { cause: err })
    }
    if (header.tessera !== 'chain-journal/1') throw new ChainJournalError(`${journalPath} is not a chain journal v1`)
  }

  const accounts = Array.from({ length: header.accounts }, (_, i) => devAccount(i))
  const hardfork = edr.SpecId.Prague
  const genesisState = edr.l1GenesisState(hardfork)
  for (const a of accounts) genesisState.push({ address: fromHex(a.address), balance: BigInt(header.balance) })

  const ctx = await edrContext()
  const inner = await ctx.createProvider(
    edr.L1_CHAIN_TYPE,
    {
      allowBlocksWithSameTimestamp: false,
      allowUnlimitedContractSize: false,
      bailOnCallFailure: true,
      bailOnTransactionFailure: false,
      chainId: BigInt(header.chainId),
      coinbase: new Uint8Array(20),
      defaultTransactionGasLimit: 30_000_000n,
      genesisState,
      hardfork: edr.l1HardforkToString(hardfork),
      initialBaseFeePerGas: 1_000_000_000n,
      minGasPrice: 0n,
      mining: { autoMine: true, memPool: { order: edr.MineOrdering.Priority } },
      network: { genesisBlockGasLimit: 60_000_000n, genesisBlockTime: BigInt(header.genesisTime) },
      networkId: BigInt(header.chainId),
      observability: {},
      ownedAccounts: accounts.map((a) => a.privateKey),
      precompileOverrides: [],
    },
    { enable: false, decodeConsoleLogInputsCallback: () => [], printLineCallback: () => {} },
    { subscriptionCallback: () => {} },
    new edr.ContractDecoder(),
  )

  let nextId = 1
  let closed = false
  async function raw(method: string, params: unknown[]): Promise<unknown> {
    if (closed) throw new RpcRequestError(method, -32000, 'embedded chain is closed')
    const res = await inner.handleRequest(JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }))
    const data = typeof res.data === 'string' ? JSON.parse(res.data) : res.data
    if (data.error) {
      let code: number = data.error.code
      // EDR answers unknown methods with -32004; viem expects the standard -32601 (method not
      // found) to skip optional calls like eth_fillTransaction, and otherwise retries for seconds.
      if (code === -32004 || /not supported/i.test(data.error.message ?? '')) code = -32601
      // Reverts: EDR nests the return data in an object; clients (viem, ethers) expect geth's shape,
      // code 3 with the raw revert bytes as `data`, to decode custom errors.
      let errData = data.error.data
      if (errData && typeof errData === 'object' && typeof errData.data === 'string' && errData.data.startsWith('0x')) {
        errData = errData.data
        code = 3
      }
      throw new RpcRequestError(method, code, data.error.message ?? 'JSON-RPC error', errData)
    }
    return data.result
  }

  async function latestBlock(): Promise<{ number: number; timestamp: number }> {
    const block = (await raw('eth_getBlockByNumber', ['latest', false])) as { number: Hex; timestamp: Hex }
    return { number: Number(BigInt(block.number)), timestamp: Number(BigInt(block.timestamp)) }
  }

  // Replay: pin every mined block's timestamp so blocks (and every deadline the contracts
  // computed from block.timestamp) come out identical. Snapshots are not journaled (they are
  // in-session tools), so evm_revert truncates the journal instead of being replayed.
  for (const e of entries) {
    if (e.t !== undefined && MINES.has(e.m)) await raw('evm_setNextBlockTimestamp', [toHex(e.t)])
    try {
      await raw(e.m, e.p)
    } catch (err) {
      throw new ChainJournalError(`journal replay failed at ${e.m}`, { cause: err })
    }
  }

  const snapshots = new Map<string, number>()
  if (journalPath && !existsSync(journalPath)) {
    mkdirSync(opts.dataDir!, { recursive: true })
    writeFileSync(journalPath, JSON.stringify(header) + '\n')
  }
  const journal = entries.slice()

  function rewriteJournal() {
    if (!journalPath) return
    writeFileSync(journalPath, [header, ...journal].map((x) => JSON.stringify(x)).join('\n') + '\n')
  }

  // Requests are serialised: replay order must equal execution order, and a timestamp read
  // after a mining request must belong to that request's block.
  let queue: Promise<unknown> = Promise.resolve()
  const provider: Eip1193Provider = {
    request({ method, params }) {
      const p = Array.isArray(params) ? params : params === undefined ? [] : [params]
      const run = async () => {
        const before = MINES.has(method) && journalPath ? (await latestBlock()).number : 0
        const result = await raw(method, p)
        if (method === 'evm_snapshot') snapshots.set(String(result), journal.length)
        if (method === 'evm_revert' && result === true) {
          const len = snapshots.get(String(p[0]))
          if (len !== undefined && len < journal.length) {
            journal.length = len
            rewriteJournal()
          }
        }
        if (journalPath && JOURNALED.has(method)) {
          const entry: JournalEntry = { m: method, p }
          if (MINES.has(method) && journalPath) {
            // Pin only when this request mined a block (with automine off it may not have).
            const after = await latestBlock()
            if (after.number > before) entry.t = after.timestamp
          }
          journal.push(entry)
          if (journalPath) appendFileSync(journalPath, JSON.stringify(entry) + '\n')
        }
        return result
      }
      const next = queue.then(run, run)
      queue = next.catch(() => undefined)
      return next
    },
  }

  return {
    provider,
    accounts: accounts.map((a) => ({ address: getAddress(a.address), privateKey: a.privateKey })),
    chainId: header.chainId,
    replayed: entries.length,
    async close() {
      await queue
      closed = true
    },
  }
}
