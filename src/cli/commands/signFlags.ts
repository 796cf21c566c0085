/**
 * The flags `tessera run` takes for the provider's signature on its job file. Apart from
 * ./signedReceipt.ts (which signs, with viem and the chain client) so that `run --help` loads neither.
 */
import type { FlagSpec } from '../args.js'

export const signFlags: Record<string, FlagSpec> = {
  key: { type: 'string', description: "file with the provider's hex private key that signs the receipt (default: devnet account --account)" },
  account: { type: 'number', description: 'devnet account whose (public) key signs when no --key is given', default: 1 },
  deployment: { type: 'string', description: "deployment file naming the chain and Settlement contract of the EIP-712 domain (default: a fresh devnet's)" },
  nonce: { type: 'string', description: 'request nonce, uint64', default: '0' },
  expiry: { type: 'string', description: 'request expiry, unix seconds, uint64', default: '1099511627775' },
  price: { type: 'string', description: 'request price per token in wei, uint128', default: '0' },
}
