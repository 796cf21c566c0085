/**
 * Runs the one-step test harness contracts (src/chain/contracts/test/) on the embedded EVM for the
 * differential fuzz tests and the gas table in docs/ONESTEP.md. Harnesses are installed with
 * `hardhat_setCode` (no deployment transaction, no constructor) and only ever read with
 * `eth_call`, so a batch of a few hundred cases costs one request and leaves no state behind.
 */
import { type Abi, type Hex, decodeFunctionResult, encodeFunctionData } from 'viem'
import { getArtifact } from '../../src/chain/artifacts.js'
import { createEmbeddedChain, type EmbeddedChain } from '../../src/chain/evm/edr.js'

export type HarnessChain = {
  chain: EmbeddedChain
  /** eth_call of `fn(...args)` on the harness contract `name`, decoded with its ABI. */
  call<T = unknown>(name: string, fn: string, args: readonly unknown[]): Promise<T>
  close(): Promise<void>
}

/** Starts an embedded chain with the named harness contracts installed. */
export async function startHarnesses(names: readonly string[]): Promise<HarnessChain> {
  const chain = await createEmbeddedChain({ accounts: 1 })
  const at = new Map<string, { address: Hex; abi: Abi }>()
  for (const [i, name] of names.entries()) {
    const a = getArtifact(name)
    const address = `0x${(0x7e5 * 0x10000 + i).toString(16).padStart(40, '0')}` as Hex
    await chain.provider.request({ method: 'hardhat_setCode', params: [address, a.deployedBytecode] })
    at.set(name, { address, abi: a.abi })
  }
  return {
    chain,
    async call<T>(name: string, fn: string, args: readonly unknown[]): Promise<T> {
      const c = at.get(name)
      if (!c) throw new TypeError(`harness ${name} was not started`)
      const data = encodeFunctionData({ abi: c.abi, functionName: fn, args } as never)
      const out = (await chain.provider.request({
        method: 'eth_call',
        params: [{ to: c.address, data, gas: '0x3000000' }, 'latest'],
      })) as Hex
      return decodeFunctionResult({ abi: c.abi, functionName: fn, data: out } as never) as T
    },
    close: () => chain.close(),
  }
}

/** Min, mean and max of gas samples, for the tables in docs/ONESTEP.md. */
export function gasStats(samples: readonly bigint[]): { min: number; mean: number; max: number } {
  let min = Infinity
  let max = 0
  let sum = 0
  for (const g of samples) {
    const n = Number(g)
    if (n < min) min = n
    if (n > max) max = n
    sum += n
  }
  return { min, mean: Math.round(sum / Math.max(samples.length, 1)), max }
}
