/**
 * `tessera request`: a one-shot client. It starts a light libp2p host, finds the offers for a
 * model (gossip and the DHT, a bounded wait), deposits escrow if its free escrow cannot pay the
 * tries, runs the job with failover over the offers sorted by price (src/node/requestJob.ts),
 * streams the text to stdout and writes the job file that `tessera verify --receipt` checks.
 */
import '../../p2p/polyfill.js'
import { existsSync, writeFileSync } from 'node:fs'
import { type Address, type Hex, formatEther, getAddress } from 'viem'
import { deposit, getBalances } from '../../chain/actions/settlement.js'
import { loadDeployment } from '../../chain/client.js'
import { connectClients } from '../../chain/evm/clients.js'
import { useNativeSecp } from '../../chain/evm/secp.js'
import { devAccount } from '../../chain/evm/edr.js'
import { registrationArith } from '../../dispute/model.js'
import { BaseError, InvalidParameterError } from '../../errors.js'
import { dialJob } from '../../node/jobProtocol.js'
import { loadKeystore, passphraseFrom } from '../../node/keystore.js'
import { type JobOffer, type JobTry, randomNonces, requestJob } from '../../node/requestJob.js'
import { askPeersForOffers } from '../../node/node.js'
import { jobFileOf } from '../../node/transcript.js'
import { createHost, type Host } from '../../p2p/host.js'
import { identityFromKey } from '../../p2p/identity.js'
import { OfferDiscovery, type SignedOffer } from '../../p2p/offers.js'
import { jobParams, loadModel } from '../../runtime/model.js'
import { loadNativeSecp } from '../../runtime/native/secp.js'
import { toHex } from '../../trace/merkle.js'
import { type ParsedArgs, stringList, UsageError } from '../args.js'
import { checkOutPath } from '../files.js'
import { keyFile } from './node.js'

/** No offer for the model was found in time. */
export class NoOffersError extends BaseError {
  override name = 'NoOffersError'
}

/** The JobOffer of a signed offer: dialled by its announced address (or its peer id). */
export function jobOfferOf(host: Pick<Host, 'dial'>, s: SignedOffer, root: Hex): JobOffer {
  const price = BigInt(s.offer.models.find((m) => m.root.toLowerCase() === root.toLowerCase())?.pricePerToken ?? '0')
  const target = s.offer.addrs.find((a) => a.endsWith(`/p2p/${s.offer.peerId}`)) ?? s.offer.peerId
  return { provider: getAddress(s.offer.provider), pricePerToken: price, connect: (signal) => dialJob(host, target, signal) }
}

/** `tessera request` (its flags: ./requestCommand.ts, loaded without this module's libraries for --help). */
export async function runRequest(args: ParsedArgs, signal: AbortSignal): Promise<number> {
  const bootstrap = stringList(args.flags.bootstrap)
  if (bootstrap.length === 0) throw new UsageError('missing --bootstrap', { details: 'see --help' })
  const modelArg = args.flags.model as string | undefined
  if (!modelArg) throw new UsageError('missing --model', { details: 'see --help' })
  const maxTokens = Number(args.flags['max-tokens'])
  if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > 65536) throw new InvalidParameterError('max-tokens', maxTokens, 'a whole number from 1 to 65536')
  const seedRaw = String(args.flags.seed)
  if (!/^\d+$/.test(seedRaw) || BigInt(seedRaw) >= 1n << 64n) throw new InvalidParameterError('seed', seedRaw, 'an integer in [0, 2^64)')
  const waitS = Number(args.flags.wait)
  if (!(waitS > 0 && waitS <= 600)) throw new InvalidParameterError('wait', waitS, 'seconds from 0 to 600')
  const tries = Number(args.flags.tries)
  if (!Number.isInteger(tries) || tries < 1 || tries > 16) throw new InvalidParameterError('tries', tries, 'a whole number from 1 to 16')
  const stall = Number(args.flags.stall)
  if (!(stall > 0 && stall <= 3600)) throw new InvalidParameterError('stall', stall, 'seconds from 0 to 3600')
  let only: Address | undefined
  if (args.flags.provider !== undefined) {
    try {
      only = getAddress(String(args.flags.provider))
    } catch {
      throw new InvalidParameterError('provider', args.flags.provider, 'an address')
    }
  }
  const out = args.flags.out as string | undefined
  if (out) checkOutPath(out, args.flags.force === true)
  const json = args.flags.json === true

  // the model root and the prompt's tokens
  let root: Hex
  let prompt: number[]
  if (/^0x[0-9a-fA-F]{64}$/.test(modelArg)) {
    root = modelArg.toLowerCase() as Hex
    const ids = args.flags['prompt-tokens'] as string | undefined
    if (ids === undefined) throw new UsageError('a model root needs --prompt-tokens (tokenizing --prompt needs the model file)')
    prompt = ids.split(',').map((s) => Number(s.trim()))
    if (prompt.length === 0 || prompt.some((t) => !Number.isInteger(t) || t < 0)) throw new InvalidParameterError('prompt-tokens', ids, 'comma-separated token ids')
  } else {
    if (!existsSync(modelArg)) throw new InvalidParameterError('model', modelArg, 'a GGUF file or a 0x model root (64 hex digits)')
    const text = args.flags.prompt as string | undefined
    const ids = args.flags['prompt-tokens'] as string | undefined
    if (text === undefined && ids === undefined) throw new UsageError('missing --prompt', { details: 'see --help' })
    const m = await loadModel(modelArg)
    try {
      root = `0x${toHex(m.modelRoot)}` as Hex
      prompt = text !== undefined ? m.tokenizer.encode(text) : ids!.split(',').map((s) => Number(s.trim()))
    } finally {
      m.close()
    }
  }
  const params = jobParams({ maxTokens, temperature: Number(args.flags.temperature) })

  // the paying account
  const rpc = String(args.flags.rpc)
  let privateKey: Hex
  if (args.flags.data) privateKey = (await loadKeystore(String(args.flags.data), await passphraseFrom({ file: args.flags['passphrase-file'] as string | undefined }))).privateKey
  else if (args.flags.key) privateKey = keyFile(String(args.flags.key), 'key')
  else if (/^https?:\/\/(127\.0\.0\.1|localhost)[:/]/.test(`${rpc}/`)) privateKey = devAccount(Number(args.flags.account)).privateKey
  else throw new UsageError('--data or --key is required with a remote --rpc')
  const d = loadDeployment(String(args.flags.deployment))
  // the request's and acknowledgements' signatures by the native secp256k1 when it is built (the same bytes)
  useNativeSecp(loadNativeSecp())
  const c = connectClients({ transport: rpc, chainId: d.chainId, privateKey })
  // the arithmetic the model is registered under: a receipt naming another is refused (undefined: not registered, not checked)
  const arith = await registrationArith(c, d, root)

  const host = await createHost({ privateKey: identityFromKey(privateKey).libp2pKey, bootstrap, limits: { inboundConnectionThreshold: 100 } })
  const discovery = new OfferDiscovery({ host })
  try {
    discovery.start()
    void askPeersForOffers(host, discovery, bootstrap)
    // offers: gossip as it comes, and one DHT lookup; stop at --min-offers, after 2 s with no new offer, or at --wait
    const minOffers = Number(args.flags['min-offers'])
    const deadline = Date.now() + waitS * 1000
    const current = () => discovery.book.offersFor(root).filter((s) => !only || getAddress(s.offer.provider) === only)
    const dht = discovery.findOffers(root, { timeoutMs: Math.min(waitS * 1000, 8_000) }).catch(() => [])
    let lastCount = 0
    let lastChange = Date.now()
    while (Date.now() < deadline) {
      signal.throwIfAborted()
      const n = current().length
      if (n !== lastCount) [lastCount, lastChange] = [n, Date.now()]
      if (n >= minOffers && ((n > 0 && Date.now() - lastChange > 2_000) || minOffers > 1)) break
      await new Promise((r) => setTimeout(r, 100))
    }
    await Promise.race([dht, new Promise((r) => setTimeout(r, 100))])
    const offers = current()
    if (offers.length === 0) throw new NoOffersError(`no offer for model ${root} within ${waitS} s`, { details: `${discovery.book.size} offers seen; peers ${host.peers().length}` })

    // escrow for every try: each provider reserves (prompt + max tokens) x its price when it accepts
    const jobOffers = offers.map((s) => jobOfferOf(host, s, root))
    const used = jobOffers.slice(0, tries)
    const total = BigInt(prompt.length + maxTokens)
    const need = used.reduce((sum, o) => sum + total * o.pricePerToken, 0n)
    const b = await getBalances(c, d, c.account.address)
    if (b.escrow < need) {
      const more = need - b.escrow
      if (b.wallet <= more) throw new InvalidParameterError('key', c.account.address, `an account holding more than ${formatEther(more)} coin for escrow (it holds ${formatEther(b.wallet)})`)
      await deposit(c, d, { amount: more })
      if (!json) process.stderr.write(`deposited ${formatEther(more)} coin of escrow\n`)
    }
    const {
      transcript,
      tries: done,
      acked,
    } = await requestJob({
      clients: c,
      deployment: d,
      offers: used,
      modelRoot: root,
      prompt,
      params,
      seed: BigInt(seedRaw),
      nonces: randomNonces(),
      maxTries: tries,
      stallMs: stall * 1000,
      arith,
      signal,
      onText: json ? undefined : (s) => process.stdout.write(s),
    })
    if (!json) process.stdout.write('\n')
    // the provider's claim needs the acknowledgement: it goes out before the host stops
    const acknowledged = await acked
    if (!acknowledged && !json) process.stderr.write('the delivery acknowledgement could not be sent: the provider cannot claim this job\n')
    if (out) writeFileSync(out, `${JSON.stringify(jobFileOf(transcript), null, 2)}\n`)
    const trySummary = (t: JobTry) => ({ provider: t.provider, outcome: t.outcome, code: t.code, tokens: t.tokens })
    if (json) {
      console.log(
        JSON.stringify({
          text: transcript.text,
          tokens: transcript.output,
          stopReason: transcript.stopReason,
          provider: transcript.request.provider,
          requestDigest: transcript.requestDigest,
          offers: offers.map((s) => ({ provider: s.offer.provider, pricePerToken: jobOfferOf(host, s, root).pricePerToken.toString() })),
          tries: done.map(trySummary),
          acknowledged,
        }),
      )
    } else if (done.length > 1) process.stderr.write(`served by ${transcript.request.provider} after ${done.length} tries\n`)
    return 0
  } finally {
    discovery.stop()
    await Promise.race([host.stop(), new Promise((r) => setTimeout(r, 2_000).unref())])
  }
}
