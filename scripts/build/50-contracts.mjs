// Compiles every Solidity file under src/chain/contracts/ with the pinned solc-js (offline, standard
// JSON, optimizer on) into build/contracts.json: { solcVersion, sourcesHash, contracts: { Name: {
// source, abi, bytecode, deployedBytecode } } }. Contract names must be unique across files, so
// code can ask for a contract by name alone. A compile error fails the build with solc's messages.
// The output is skipped when sourcesHash (SHA-256 over paths + contents + settings) is unchanged,
// so tests and `npm run build` can call this step cheaply. Run directly: node scripts/build/50-contracts.mjs
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative, sep } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const contractsDir = join(root, 'src', 'chain', 'contracts')
const outFile = join(root, 'build', 'contracts.json')

// viaIR stays off: it triples compile time in solc-js; contracts keep their stacks shallow instead.
const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
}

function findSol(dir) {
  let out = []
  let names
  try { names = readdirSync(dir) } catch { return out }
  for (const name of names.sort()) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out = out.concat(findSol(p))
    else if (name.endsWith('.sol')) out.push(p)
  }
  return out
}

/** Source unit names are paths relative to src/chain/contracts with `/` separators. */
function readSources() {
  const sources = {}
  for (const file of findSol(contractsDir)) {
    sources[relative(contractsDir, file).split(sep).join('/')] = { content: readFileSync(file, 'utf8') }
  }
  return sources
}

export function sourcesHash(sources, version) {
  const h = createHash('sha256').update(version).update(JSON.stringify(SETTINGS))
  for (const name of Object.keys(sources).sort()) h.update(name).update('\0').update(sources[name].content).update('\0')
  return h.digest('hex')
}

export default function buildContracts({ force = false, quiet = false } = {}) {
  const solc = createRequire(import.meta.url)('solc')
  const version = solc.version()
  const sources = readSources()
  const hash = sourcesHash(sources, version)
  if (!force) {
    try {
      if (JSON.parse(readFileSync(outFile, 'utf8')).sourcesHash === hash) {
        // Touched so that loaders comparing mtimes see it as fresh again.
        const now = new Date()
        utimesSync(outFile, now, now)
        return
      }
    } catch { /* missing or unreadable: compile */ }
  }
  const input = { language: 'Solidity', sources, settings: SETTINGS }
  // Imports resolve relative to src/chain/contracts (all sources are already in the input, so a
  // callback is only reached for a path outside the tree, which is an error).
  const output = JSON.parse(solc.compile(JSON.stringify(input), {
    import: (path) => ({ error: `import ${path} is outside src/chain/contracts` }),
  }))
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error')
  const warnings = (output.errors ?? []).filter((e) => e.severity !== 'error')
  if (!quiet) for (const w of warnings) console.warn(w.formattedMessage ?? w.message)
  if (errors.length) {
    throw new Error(`solc ${version}: ${errors.length} error(s)\n` + errors.map((e) => e.formattedMessage ?? e.message).join('\n'))
  }
  const contracts = {}
  for (const [source, byName] of Object.entries(output.contracts ?? {})) {
    for (const [name, c] of Object.entries(byName)) {
      if (contracts[name]) throw new Error(`contract name ${name} is declared in both ${contracts[name].source} and ${source}`)
      contracts[name] = {
        source,
        abi: c.abi,
        bytecode: '0x' + c.evm.bytecode.object,
        deployedBytecode: '0x' + c.evm.deployedBytecode.object,
      }
    }
  }
  mkdirSync(dirname(outFile), { recursive: true })
  // Write then rename so a concurrent reader (tests running in parallel) never sees half a file.
  const tmp = `${outFile}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify({ solcVersion: version, sourcesHash: hash, contracts }))
  renameSync(tmp, outFile)
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    buildContracts({ force: process.argv.includes('--force') })
  } catch (err) {
    console.error(err.message)
    process.exit(1)
  }
}
