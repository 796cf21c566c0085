// Two real libp2p hosts whose keys are a devnet's provider and client accounts (a node's identity
// key is its chain account): the job-protocol tests' "over real hosts" cases.
import type { Devnet } from '../../src/chain/devnet.js'
import type { ChainClients } from '../../src/chain/evm/clients.js'
import { createHost, type Host } from '../../src/p2p/host.js'
import { identityFromKey } from '../../src/p2p/identity.js'

/** [provider's host, client's host] on 127.0.0.1, each keyed by its devnet account; stop both when done. */
export async function jobHosts(net: Devnet): Promise<[Host, Host]> {
  const key = (c: ChainClients) => net.chain.accounts.find((a) => a.address === c.account.address)!.privateKey
  const limits = { inboundConnectionThreshold: 100 }
  const [hp, hc] = await Promise.all([
    createHost({ privateKey: identityFromKey(key(net.provider)).libp2pKey, limits }),
    createHost({ privateKey: identityFromKey(key(net.client)).libp2pKey, limits }),
  ])
  return [hp, hc]
}
