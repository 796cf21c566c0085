/**
 * The provider's signature on a job file (receipt v2, docs/CHAIN.md "Formats"): `tessera run`
 * signs the receipt with EIP-712 as an answer to a request built from it, and `tessera verify`
 * checks that signature and names the signer. Its flags are in ./signFlags.ts, so that `tessera run
 * --help` loads neither viem nor the chain client.
 */
import { existsSync, readFileSync } from 'node:fs'
import { type Address, getAddress, getContractAddress, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { type JobRequest, loadDeployment, recoverReceiptSigner, requestDigest, signReceipt } from '../../chain/client.js'
import { devAccount } from '../../chain/evm/edr.js'
import { FileNotFoundError, InvalidParameterError } from '../../errors.js'
import type { Receipt } from '../../trace/receipt.js'
import { receiptFieldsOf, requestFromJson, requestToJson, type SignedReceipt } from '../../node/transcript.js'
import type { ParsedArgs } from '../args.js'

/** The devnet's chain id and the Settlement address of the first deployment on a fresh devnet (`tessera chain start`: account 0 deploys the registry, then Settlement). */
export function devnetDomain(): { chainId: number; settlement: Address } {
  return { chainId: 31337, settlement: getContractAddress({ from: devAccount(0).address, nonce: 1n }) }
}

function uintFlag(a: ParsedArgs, name: string, bits: number): bigint {
  const s = String(a.flags[name])
  if (!/^\d+$/.test(s) || BigInt(s) >= 1n << BigInt(bits)) throw new InvalidParameterError(name, s, `an integer in [0, 2^${bits})`)
  return BigInt(s)
}

/** Reads the signing flags (before the job runs, so a bad flag fails fast): the key, the domain and the request's terms. */
export function signerOf(a: ParsedArgs): { key: Hex; domain: { chainId: number; settlement: Address }; terms: { nonce: bigint; expiry: bigint; pricePerToken: bigint } } {
  let key: Hex
  const keyFile = a.flags.key
  if (typeof keyFile === 'string') {
    if (!existsSync(keyFile)) throw new FileNotFoundError(keyFile)
    const k = readFileSync(keyFile, 'utf8').trim()
    key = (k.startsWith('0x') ? k : `0x${k}`) as Hex
    if (!/^0x[0-9a-fA-F]{64}$/.test(key)) throw new InvalidParameterError('key', keyFile, 'a file holding a 32-byte hex private key')
  } else {
    const i = a.flags.account as number
    if (!(Number.isInteger(i) && i >= 0)) throw new InvalidParameterError('account', i, 'a devnet account index >= 0')
    key = devAccount(i).privateKey
  }
  const d = typeof a.flags.deployment === 'string' ? loadDeployment(a.flags.deployment) : devnetDomain()
  return { key, domain: { chainId: d.chainId, settlement: d.settlement }, terms: { nonce: uintFlag(a, 'nonce', 64), expiry: uintFlag(a, 'expiry', 64), pricePerToken: uintFlag(a, 'price', 128) } }
}

/**
 * The provider signs a receipt: the request it answers is built from the receipt (provider = the
 * signer, maxTokens = nPrompt + the params' maxTokens, as `requestFor` in src/node/settleJob.ts)
 * with the given nonce, expiry and price.
 */
export async function signJob(r: Receipt, s: ReturnType<typeof signerOf>): Promise<SignedReceipt> {
  const account = privateKeyToAccount(s.key)
  const request: JobRequest = {
    provider: account.address, modelRoot: `0x${r.modelRoot}`, promptRoot: `0x${r.promptRoot}`, paramsHash: `0x${r.paramsHash}`,
    seed: BigInt(r.seed), nonce: s.terms.nonce, expiry: s.terms.expiry, maxTokens: r.nPrompt + r.params.maxTokens, pricePerToken: s.terms.pricePerToken,
  }
  const rd = requestDigest(s.domain.chainId, s.domain.settlement, request)
  const signature = await signReceipt(account, s.domain.chainId, s.domain.settlement, receiptFieldsOf(r, rd))
  return { ...s.domain, request: requestToJson(request), requestDigest: rd, signer: account.address, signature }
}

/**
 * Checks a receipt's signature: the signed request fixes the receipt's model, prompt root, params
 * and seed and allows its token count; the request digest is the request's; the signature over
 * the receipt recovers the request's provider. Returns the provider, or the first problem.
 */
export async function checkSignature(r: Receipt, s: SignedReceipt | undefined): Promise<{ ok: true; signer: Address } | { ok: false; problem: string }> {
  if (!s) return { ok: false, problem: `the receipt is not signed (a receipt v2 job file carries the provider's EIP-712 signature under "signed")` }
  let req: JobRequest
  try {
    req = requestFromJson(s.request)
  } catch {
    return { ok: false, problem: 'the signed request is malformed' }
  }
  const same: [string, string, string][] = [
    ['modelRoot', req.modelRoot, r.modelRoot],
    ['promptRoot', req.promptRoot, r.promptRoot],
    ['paramsHash', req.paramsHash, r.paramsHash],
    ['seed', String(req.seed), r.seed],
  ]
  for (const [name, a, b] of same) if (String(a).replace(/^0x/, '').toLowerCase() !== String(b).toLowerCase()) return { ok: false, problem: `the signed request's ${name} is not the receipt's` }
  if (r.nPrompt + r.nOutput > req.maxTokens) return { ok: false, problem: `the receipt's ${r.nPrompt + r.nOutput} tokens exceed the signed request's maxTokens ${req.maxTokens}` }
  let rd: Hex
  let signer: Address
  try {
    rd = requestDigest(s.chainId, s.settlement, req)
    signer = await recoverReceiptSigner(s.chainId, s.settlement, receiptFieldsOf(r, rd), s.signature)
  } catch {
    return { ok: false, problem: 'the receipt signature or its request is malformed' }
  }
  if (rd !== s.requestDigest) return { ok: false, problem: "the request digest is not the signed request's" }
  if (signer !== getAddress(req.provider)) return { ok: false, problem: `the receipt signature is not the provider's (it recovers ${signer}, the request names ${getAddress(req.provider)})` }
  if (signer !== getAddress(s.signer)) return { ok: false, problem: `the receipt signature recovers ${signer}, not the stated signer ${s.signer}` }
  return { ok: true, signer }
}
