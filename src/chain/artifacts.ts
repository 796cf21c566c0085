/**
 * Compiled contracts: build/contracts.json, written by scripts/build/50-contracts.mjs (solc-js,
 * offline) when `npm run build` runs, and brought up to date by `npm test` before any test. This
 * module only reads it; it never compiles. In a source checkout it first checks that the file was
 * built from the .sol files there (the build records each file's SHA-256), so a changed contract
 * fails in one line naming the command to run, instead of running the old bytecode or sitting in
 * a hidden rebuild. An installed package has no contract sources and just reads the file.
 */
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Abi, Hex } from 'viem'
import { BaseError } from '../errors.js'

export type Artifact = { source: string; abi: Abi; bytecode: Hex; deployedBytecode: Hex }
export type Artifacts = {
  solcVersion: string
  sourcesHash: string
  /** SHA-256 (hex) of each source's content, by path under src/chain/contracts. */
  sources: Record<string, string>
  contracts: Record<string, Artifact>
}

/** No build/contracts.json, or no contract of that name in it. */
export class ArtifactNotFoundError extends BaseError {
  override name = 'ArtifactNotFoundError'
}

/** build/contracts.json was compiled from other contract sources than the checkout's. */
export class ArtifactStaleError extends BaseError {
  override name = 'ArtifactStaleError'
}

// Both src/chain/artifacts.ts and dist/chain/artifacts.js sit two levels below the package root.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const BUILD_HINT = 'run `npm run build` (or `node scripts/build/50-contracts.mjs` for the contracts alone)'

/** The .sol files under `dir`, by path relative to it with `/` separators (as the build names them). */
function solFiles(dir: string, base = dir): string[] {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return []
  }
  return names.flatMap((name) => {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) return solFiles(p, base)
    return name.endsWith('.sol') ? [relative(base, p).split(sep).join('/')] : []
  })
}

/** The first difference between the sources a build recorded and the files in `contractsDir`, if any. */
function staleSource(built: Record<string, string> | undefined, contractsDir: string): string | undefined {
  const here = solFiles(contractsDir)
  if (here.length === 0) return undefined // an installed package: no sources to compare with
  if (!built) return 'it records no source digests (built by an older build script)'
  for (const name of here) {
    if (!(name in built)) return `${name} is new`
    const digest = createHash('sha256').update(readFileSync(join(contractsDir, name))).digest('hex')
    if (digest !== built[name]) return `${name} changed`
  }
  const gone = Object.keys(built).find((name) => !here.includes(name))
  return gone === undefined ? undefined : `${gone} was removed`
}

/**
 * Reads compiled contracts from `file`, refusing them when `contractsDir` holds contract sources
 * other than the ones they were compiled from. Throws one-line errors naming the build command.
 */
export function readArtifacts(file: string, contractsDir: string): Artifacts {
  if (!existsSync(file)) throw new ArtifactNotFoundError(`${file} is missing`, { details: BUILD_HINT })
  let built: Artifacts
  try {
    built = JSON.parse(readFileSync(file, 'utf8')) as Artifacts
  } catch (e) {
    throw new ArtifactNotFoundError(`${file} is not readable JSON`, { details: BUILD_HINT, cause: e })
  }
  if (!built || typeof built.contracts !== 'object') throw new ArtifactNotFoundError(`${file} has no contracts`, { details: BUILD_HINT })
  const why = staleSource(built.sources, contractsDir)
  if (why) throw new ArtifactStaleError(`${file} is out of date: ${why} in ${contractsDir}`, { details: BUILD_HINT })
  return built
}

let cached: Artifacts | undefined

/** All compiled contracts (build/contracts.json, checked against src/chain/contracts once per process). */
export function loadArtifacts(): Artifacts {
  cached ??= readArtifacts(join(root, 'build', 'contracts.json'), join(root, 'src', 'chain', 'contracts'))
  return cached
}

/** One compiled contract by name (names are unique across the contract tree). */
export function getArtifact(name: string): Artifact {
  const a = loadArtifacts().contracts[name]
  if (!a) throw new ArtifactNotFoundError(`no compiled contract named ${name}`, { details: `known: ${Object.keys(loadArtifacts().contracts).join(', ')}` })
  return a
}
