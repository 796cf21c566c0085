/**
 * Typed actions of the dispute machine (IMachine, docs/MACHINE.md) that a player sends itself: a
 * matmul's program depends on its weight type, which the machine learns once per model and tensor
 * from the model root's tensor leaf (`proveWeightType`, anyone may send it); until then the game's
 * moves on that op revert `UnknownWeightType`.
 */
import type { Address, ContractFunctionArgs, Hex } from 'viem'
import type { iMachineAbi } from '#abi'
import { getArtifact } from '../artifacts.js'
import { ContractRevertError, type Deployment, decodeRevert } from '../client.js'
import type { ChainClients } from '../evm/clients.js'
import type { ModelTree } from '../weights.js'

type ProveArgs = ContractFunctionArgs<typeof iMachineAbi, 'nonpayable', 'proveWeightType'>

/** The machine the game calls (DisputeGame.machine()). */
export async function machineOf(c: ChainClients, d: Pick<Deployment, 'disputeGame'>): Promise<Address> {
  return (await c.public.readContract({ address: d.disputeGame, abi: getArtifact('DisputeGame').abi, functionName: 'machine', args: [] } as never)) as Address
}

/** Whether the machine knows tensor `name`'s weight type for `modelRoot`, and which. */
export async function weightType(c: ChainClients, a: { machine: Address; modelRoot: Hex; name: string }): Promise<{ known: boolean; ggmlType: number }> {
  try {
    const [known, ggmlType] = (await c.public.readContract({ address: a.machine, abi: getArtifact('IMachine').abi, functionName: 'weightType', args: [a.modelRoot, nameBytes(a.name)] } as never)) as [boolean, number]
    return { known, ggmlType }
  } catch (err) {
    throw decodeRevert(err, 'Machine', 'weightType')
  }
}

/**
 * Proves tensor `name`'s weight type from its tensor leaf under the model root (once per model).
 *
 * @example
 *   await proveWeightType(provider, { machine, tree, name: 'blk.0.attn_q.weight' })
 */
export async function proveWeightType(c: ChainClients, a: { machine: Address; tree: ModelTree; name: string; signal?: AbortSignal }) {
  a.signal?.throwIfAborted()
  const t = a.tree.proveTensor(a.name)
  const args: ProveArgs = [a.tree.modelRoot, t.name, t.tensorIndex, t.ggmlType, t.rows, t.cols, t.rowRoot, t.tensorPath]
  try {
    const { request } = (await c.public.simulateContract({ address: a.machine, abi: getArtifact('IMachine').abi, functionName: 'proveWeightType', args, account: c.account } as never)) as unknown as { request: never }
    const hash = await c.wallet.writeContract(request)
    const receipt = await c.public.waitForTransactionReceipt({ hash })
    if (receipt.status !== 'success') throw new ContractRevertError('Machine', 'proveWeightType', 'Reverted', [hash])
    return { receipt, gasUsed: receipt.gasUsed }
  } catch (err) {
    throw decodeRevert(err, 'Machine', 'proveWeightType')
  }
}

function nameBytes(name: string): Hex {
  return `0x${Buffer.from(name, 'utf8').toString('hex')}`
}
