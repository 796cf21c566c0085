/**
 * viem clients for Tessera's chain, over the embedded EDR provider or any JSON-RPC URL, and a
 * helper to deploy a compiled contract by name. One shape for both so that tests, the CLI and
 * the node never care which chain they talk to.
 */
import {
  type Account, type Address, type Chain, type Hex, type PublicClient, type Transport, type WalletClient,
  createPublicClient, createWalletClient, custom, defineChain, http,
} from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { getArtifact } from '../artifacts.js'
import { BaseError } from '../../errors.js'
import type { Eip1193Provider } from './edr.js'
import { rememberSigningKey } from './secp.js'

export type ChainClients = {
  chain: Chain
  public: PublicClient<Transport, Chain>
  wallet: WalletClient<Transport, Chain, Account>
  account: Account
}

/** A transaction that was mined but reverted, or a deployment that produced no contract. */
export class TransactionFailedError extends BaseError {
  override name = 'TransactionFailedError'
}

/** The chain definition viem needs for a given id (the devnet, or any production chain by id). */
export function tesseraChain(chainId: number, rpcUrl = 'http://127.0.0.1:8545'): Chain {
  return defineChain({
    id: chainId,
    name: chainId === 31337 ? 'tessera-devnet' : `chain-${chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  })
}

/**
 * Public + wallet clients for one signer. `transport` is an EIP-1193 provider (the embedded
 * chain) or an http(s) URL. Polling is fast because the devnet mines instantly.
 *
 * @example
 *   const chain = await createEmbeddedChain()
 *   const c = connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[0].privateKey })
 */
export function connectClients(opts: { transport: Eip1193Provider | string; chainId: number; privateKey: Hex }): ChainClients {
  const url = typeof opts.transport === 'string' ? opts.transport : undefined
  const chain = tesseraChain(opts.chainId, url)
  const transport = typeof opts.transport === 'string' ? http(opts.transport) : custom(opts.transport, { retryCount: 0 })
  const account = privateKeyToAccount(opts.privateKey)
  // signHash may sign for it natively (secp.ts), with the same bytes
  rememberSigningKey(account, opts.privateKey)
  const pollingInterval = url ? 1000 : 10
  return {
    chain,
    account,
    public: createPublicClient({ chain, transport, pollingInterval }) as PublicClient<Transport, Chain>,
    wallet: oneSenderAtATime(createWalletClient({ chain, transport, account, pollingInterval }), `${opts.chainId}:${account.address}`),
  }
}

/** The last submission of each account (chain id and address), across every ChainClients of this process. */
const sendQueues = new Map<string, Promise<unknown>>()

/**
 * Submits one transaction at a time per account: a node's concurrent jobs (a reserve each, claims,
 * dispute moves) would otherwise read the same pending nonce and all but one be refused. Each
 * submission waits for the previous one to be accepted by the node (not mined), so the next reads
 * the nonce after it.
 */
function oneSenderAtATime<W extends object>(wallet: W, key: string): W {
  return new Proxy(wallet, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver)
      if (prop !== 'writeContract' && prop !== 'sendTransaction' && prop !== 'deployContract') return v
      return (...args: unknown[]) => {
        const sent = (sendQueues.get(key) ?? Promise.resolve()).then(() => (v as (...a: unknown[]) => Promise<unknown>).apply(target, args))
        sendQueues.set(key, sent.catch(() => undefined))
        return sent
      }
    },
  })
}

/**
 * Deploys the compiled contract `name` (from build/contracts.json) with constructor `args`,
 * waits for it to be mined and returns its address and the deployment's gas.
 *
 * @example
 *   const { address } = await deployContract(clients, { name: 'SoftFloatHarness' })
 */
export async function deployContract(
  clients: ChainClients,
  opts: { name: string; args?: readonly unknown[]; value?: bigint },
): Promise<{ address: Address; gasUsed: bigint; hash: Hex }> {
  const art = getArtifact(opts.name)
  const hash = await clients.wallet.deployContract({
    abi: art.abi, bytecode: art.bytecode, args: opts.args ?? [], value: opts.value,
  } as Parameters<typeof clients.wallet.deployContract>[0])
  const receipt = await clients.public.waitForTransactionReceipt({ hash })
  if (receipt.status !== 'success' || !receipt.contractAddress) {
    throw new TransactionFailedError(`deploying ${opts.name} failed`, { details: `tx ${hash}` })
  }
  return { address: receipt.contractAddress, gasUsed: receipt.gasUsed, hash }
}
