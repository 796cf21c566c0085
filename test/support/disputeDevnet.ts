/**
 * A devnet whose DisputeGame runs on the dispute machine (Machine.sol and its step contracts),
 * for the game tests: `createDevnet` itself once `deployTessera` deploys the machine, until then
 * the same accounts and helpers deployed here with the machine in place of the first game's Judge.
 * The provider is staked; `topUp` keeps its free stake above what the next lost games will slash.
 */
import { createEmbeddedChain } from '../../src/chain/evm/edr.js'
import { connectClients, deployContract } from '../../src/chain/evm/clients.js'
import { DEFAULT_GAME_PARAMS, DEFAULT_SETTLEMENT_PARAMS, type Deployment, deployTessera, getStake, stake } from '../../src/chain/client.js'
import { getArtifact } from '../../src/chain/artifacts.js'
import { type Devnet, createDevnet } from '../../src/chain/devnet.js'

const COIN = 10n ** 18n

export async function createDisputeDevnet(): Promise<Devnet & { topUp(): Promise<void> }> {
  const net = /name:\s*["']Machine["']/.test(deployTessera.toString()) ? await createDevnet() : await deployHere()
  return {
    ...net,
    async topUp() {
      const s = await getStake(net.deployer, net.d, net.provider.account.address)
      if (s.active - s.locked < 3n * COIN) await stake(net.provider, net.d, { role: 'provider', amount: 10n * COIN })
    },
  }
}

async function deployHere(): Promise<Devnet> {
  const chain = await createEmbeddedChain({ accounts: 6 })
  const at = (i: number) => connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[i].privateKey })
  const c = at(0)
  const sp = DEFAULT_SETTLEMENT_PARAMS
  const gp = DEFAULT_GAME_PARAMS
  const registry = (await deployContract(c, { name: 'ModelRegistry' })).address
  const settlement = (await deployContract(c, { name: 'Settlement', args: [registry, sp] })).address
  const math = (await deployContract(c, { name: 'MachineMath' })).address
  const a = (await deployContract(c, { name: 'MachineStepsA', args: [math] })).address
  const b = (await deployContract(c, { name: 'MachineStepsB', args: [math] })).address
  const machine = (await deployContract(c, { name: 'Machine', args: [a, b] })).address
  const disputeGame = (await deployContract(c, { name: 'DisputeGame', args: [settlement, machine, gp] })).address
  const hash = await c.wallet.writeContract({ address: settlement, abi: getArtifact('Settlement').abi, functionName: 'wire', args: [disputeGame] } as never)
  await c.public.waitForTransactionReceipt({ hash })
  const str = (o: object) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, String(v)]))
  const d: Deployment = {
    chainId: chain.chainId, registry, settlement, disputeGame, deployedAtBlock: String(await c.public.getBlockNumber()),
    params: { settlement: str(sp), game: str(gp) },
  }
  const provider = at(1)
  await stake(provider, d, { role: 'provider', amount: 10n * COIN })
  return {
    chain, d, deployer: c, provider, client: at(2), challenger: at(3), auditor: at(4), modelRoot: '0x', at,
    async warp(seconds) {
      await chain.provider.request({ method: 'evm_increaseTime', params: [Number(seconds)] })
      await chain.provider.request({ method: 'evm_mine', params: [] })
    },
    close: () => chain.close(),
  }
}
