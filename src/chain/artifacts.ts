/**
 * Compiled contracts: build/contracts.json, written by scripts/build/50-contracts.mjs (solc-js,
 * offline). In a source checkout a stale or missing file is rebuilt on first use, so tests and
 * `tsx` runs always see the current .sol files; an installed package just reads the file.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Abi, Hex } from 'viem'
import { BaseError } from '../errors.js'

export type Artifact = { source: string; abi: Abi; bytecode: Hex; deployedBytecode: Hex }
export type Artifacts = { solcVersion: string; sourcesHash: string; contracts: Record<string, Artifact> }

/** No build/contracts.json, or no contract of that name in it. */
export class ArtifactNotFoundError extends BaseError {
  override name = 'ArtifactNotFoundError'
}

// Both src/chain/artifacts.ts and dist/chain/artifacts.js sit two levels below the package root.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const outFile = join(root, 'build', 'contracts.json')
const contractsDir = join(root, 'src', 'chain', 'contracts')
const buildScript = join(root, 'scripts', 'build', '50-contracts.mjs')

function newestSol(dir: string): number {
  let newest = 0
  let names: string[]
  try { names = readdirSync(dir) } catch { return 0 }
  for (const name of names) {
    const p = join(dir, name)
    const st = statSync(p)
    if (st.isDirectory()) newest = Math.max(newest, newestSol(p))
    else if (name.endsWith('.sol')) newest = Math.max(newest, st.mtimeMs)
  }
  return newest
}

let cached: Artifacts | undefined

/** All compiled contracts, rebuilding them first when a .sol file is newer than the output. */
export function loadArtifacts(): Artifacts {
  if (cached) return cached
  const built = existsSync(outFile) ? statSync(outFile).mtimeMs : 0
  if (existsSync(buildScript) && existsSync(contractsDir) && newestSol(contractsDir) > built) {
    try {
      execFileSync(process.execPath, [buildScript], { stdio: ['ignore', 'ignore', 'pipe'] })
    } catch (err) {
      const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? ''
      throw new ArtifactNotFoundError('contracts do not compile', { details: stderr.trim().slice(0, 4000), cause: err })
    }
  }
  if (!existsSync(outFile)) throw new ArtifactNotFoundError(`${outFile} is missing`, { details: 'run `npm run build`' })
  cached = JSON.parse(readFileSync(outFile, 'utf8')) as Artifacts
  return cached
}

/** One compiled contract by name (names are unique across the contract tree). */
export function getArtifact(name: string): Artifact {
  const a = loadArtifacts().contracts[name]
  if (!a) throw new ArtifactNotFoundError(`no compiled contract named ${name}`, { details: `known: ${Object.keys(loadArtifacts().contracts).join(', ')}` })
  return a
}
