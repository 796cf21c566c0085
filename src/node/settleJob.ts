/**
 * One paid job on the settlement layer, each role doing its part: the client deposits and signs
 * a job request (EIP-712) naming the model root, prompt root, parameters hash and seed; the
 * provider accepts it by reserving its maximum price from the client's escrow (`reserve`), runs
 * the job, and the client acknowledges the tokens it received (EIP-712 `Delivery`); the provider
 * claims payment with the receipt's remaining fields and that acknowledgement in a batch; after
 * the challenge window anyone finalizes and the provider withdraws what it is owed.
 * This is the happy path the demo runs; disputes are in src/chain/dispute.test.ts.
 */
import { type Hex, toHex } from 'viem'
import { advertise, claimBatch, deposit, finalizeBatch, getBalances, reserve, withdrawOwed } from '../chain/actions/settlement.js'
import { isModelRegistered, registerModel } from '../chain/actions/registry.js'
import { type Deployment, type JobRequest, requestDigest, signDelivery, signJobRequest } from '../chain/client.js'
import type { ChainClients } from '../chain/evm/clients.js'
import type { ConfigProof } from '../chain/weights.js'
import { fromHex, toHex0x } from '../engine/bytes.js'
import type { Receipt } from '../trace/receipt.js'

export type Roles = { provider: ChainClients; client: ChainClients; anyone: ChainClients }

/** A receipt's bare hex field as the chain takes it (checked: a receipt from elsewhere may hold anything). */
const hx = (s: string): Hex => toHex0x(fromHex(s))

/** The request a client signs for a job whose receipt will be `r` (fields known before running). */
export function requestFor(r: Pick<Receipt, 'modelRoot' | 'promptRoot' | 'paramsHash' | 'seed' | 'params' | 'nPrompt'>, provider: Hex, pricePerToken: bigint, nonce: bigint): JobRequest {
  return {
    provider, modelRoot: hx(r.modelRoot), promptRoot: hx(r.promptRoot), paramsHash: hx(r.paramsHash), seed: BigInt(r.seed),
    // the contract bills prompt + output tokens, so its cap covers both
    nonce, expiry: 2n ** 40n, maxTokens: r.nPrompt + r.params.maxTokens, pricePerToken,
  }
}

/**
 * Registers the model if needed (with its config leaf proof, `ModelTree.proveConfig()`), and settles one job for `receipt`: returns the provider's
 * earnings and the gas used by the claim. `warp` moves chain time past the challenge window
 * (the embedded chain can; a real chain makes you wait).
 */
export async function settleJob(
  d: Deployment,
  roles: Roles,
  a: { receipt: Receipt; pricePerToken: bigint; nonce: bigint; config: Pick<ConfigProof, 'config' | 'tokenizerHash' | 'path'>; warp(seconds: bigint): Promise<void> },
): Promise<{ earned: bigint; claimGas: bigint; reserveGas: bigint; batchId: bigint }> {
  const r = a.receipt
  const modelRoot = hx(r.modelRoot)
  if (!(await isModelRegistered(roles.anyone, d, modelRoot))) {
    await registerModel(roles.anyone, d, { modelRoot, ...a.config, arithVersion: toHex(r.arith, { size: 32 }) })
  }
  await advertise(roles.provider, d, { modelRoot, pricePerToken: a.pricePerToken })
  const req = requestFor(r, roles.provider.account.address, a.pricePerToken, a.nonce)
  // a job costs (prompt + output tokens) x price; the client escrows enough for the longest answer
  await deposit(roles.client, d, { amount: a.pricePerToken * BigInt(r.nPrompt + r.params.maxTokens) })
  const { r: sigR, vs } = await signJobRequest(roles.client, d.settlement, req)
  // The provider accepts before it serves: from here the client cannot withdraw what the request may cost.
  const reserved = await reserve(roles.provider, d, { req, r: sigR, vs })
  // Served; the client acknowledges what it received (here once, for the whole answer).
  const ack = await signDelivery(roles.client, d.settlement, { request: requestDigest(roles.client.chain.id, d.settlement, req), nOutput: r.nOutput, outputRoot: hx(r.outputRoot) })

  const before = (await getBalances(roles.provider, d, roles.provider.account.address)).owed
  const claim = await claimBatch(roles.provider, d, {
    items: [{ req, r: sigR, vs, outputRoot: hx(r.outputRoot), traceRoot: hx(r.traceRoot), nPrompt: r.nPrompt, nOutput: r.nOutput, nLayer: r.nLayer, ack }],
  })
  await a.warp(BigInt(d.params.settlement.challengeWindow ?? 86400) + 1n)
  await finalizeBatch(roles.anyone, d, { batchId: claim.batchId })
  const owed = (await getBalances(roles.provider, d, roles.provider.account.address)).owed
  await withdrawOwed(roles.provider, d)
  return { earned: owed - before, claimGas: claim.gasUsed, reserveGas: reserved.gasUsed, batchId: claim.batchId }
}
