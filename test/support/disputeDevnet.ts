/**
 * A devnet for the game tests (`createDevnet`: DisputeGame on the dispute machine, the provider
 * staked) with `topUp`, which keeps the provider's free stake above what the next lost games
 * will slash, so one devnet can host a whole property run.
 */
import { getStake, stake } from '../../src/chain/actions/settlement.js'
import { type Devnet, createDevnet } from '../../src/chain/devnet.js'

const COIN = 10n ** 18n

export async function createDisputeDevnet(): Promise<Devnet & { topUp(): Promise<void> }> {
  const net = await createDevnet()
  return {
    ...net,
    async topUp() {
      const s = await getStake(net.deployer, net.d, net.provider.account.address)
      if (s.active - s.locked < 3n * COIN) await stake(net.provider, net.d, { role: 'provider', amount: 10n * COIN })
    },
  }
}
