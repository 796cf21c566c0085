// Builds the optional native addons with node-gyp into build/native/build/Release/: tessera_q8.node (the
// matmuls, Q8_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K, and the trace hashes: q8.cc), tessera_attention.node
// (attention.cc), tessera_train.node (train.cc), the three including common.h, and tessera_secp.node (secp.cc:
// secp256k1 signing and checks with libsecp256k1, whose C source comes from the npm package secp256k1,
// node_modules/secp256k1/src/secp256k1/; binding.gyp's `libsecp256k1` variable is set here to where it
// resolves). Optional: off x86-64, or when node-gyp or a C++ compiler is missing, it prints one warning
// line and the WASM kernels stay the path; it never fails the build. Without the libsecp256k1 source
// only tessera_secp is left out (one warning line; viem/noble stay the signatures' path). node-gyp
// works offline with Node's own headers (--nodedir: npm's config, else the include/node directory
// next to the running node).
// Its stamp records a skip too, so `npm test` does not retry a machine without a compiler each run.
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative, sep } from 'node:path'
import { filesUnder, inputsDigest, root, staleReason, writeStamp } from './lib/inputs.mjs'

// The addon is built against this Node's ABI (process.versions.modules): another Node needs a rebuild.
// libsecp256k1's sources count too (a changed or newly installed copy rebuilds; a missing one is a
// different input from a present one).
const inputs = () => {
  const lib = libsecp256k1()
  const rel = lib && relative(root, lib).split(sep).join('/')
  const libFiles = rel ? ['src', 'include'].flatMap((d) => filesUnder(`${rel}/${d}`, (f) => /\.[ch]$/.test(f))) : []
  return inputsDigest(
    [
      'src/runtime/native/binding.gyp',
      'src/runtime/native/q8.cc',
      'src/runtime/native/attention.cc',
      'src/runtime/native/train.cc',
      'src/runtime/native/secp.cc',
      'src/runtime/native/common.h',
      'scripts/build/20-native.mjs',
      ...libFiles,
    ],
    [process.arch, process.versions.modules, lib ? 'libsecp256k1' : 'no libsecp256k1'],
  )
}

/** libsecp256k1's source directory (the one holding src/secp256k1.c), or undefined when it is not installed. */
function libsecp256k1() {
  let pkg
  try {
    pkg = dirname(createRequire(join(root, 'package.json')).resolve('secp256k1/package.json'))
  } catch {
    return undefined
  }
  const dir = join(pkg, 'src', 'secp256k1')
  return existsSync(join(dir, 'src', 'secp256k1.c')) && existsSync(join(dir, 'include', 'secp256k1_recovery.h')) ? dir : undefined
}

/** Why the native kernel needs a build (or another try): '' if it is current. */
export function stale() {
  return staleReason('native', inputs())
}

function nodeGyp() {
  try {
    return createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js')
  } catch {}
  const npmCli = process.env.npm_execpath
  const candidates = [
    npmCli && join(dirname(npmCli), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ]
  return candidates.find((p) => p && existsSync(p))
}

function nodeDir() {
  const npm = spawnSync('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8' })
  const fromNpm = npm.status === 0 ? npm.stdout.trim() : ''
  if (fromNpm && fromNpm !== 'undefined' && existsSync(join(fromNpm, 'include', 'node', 'node_api.h'))) return fromNpm
  const local = join(dirname(process.execPath), '..')
  return existsSync(join(local, 'include', 'node', 'node_api.h')) ? local : undefined
}

export default async function buildNative() {
  const digest = inputs()
  const skipped = tryBuild()
  writeStamp('native', digest, skipped ?? 'built')
}

/** Builds the addon; returns why it was skipped (after one warning line), or undefined when built. */
function tryBuild() {
  const warn = (why) => {
    console.warn(`build: native kernels (matmuls, attention, training) skipped (${why}); the WASM and TypeScript kernels stay the path`)
    return why
  }
  if (process.arch !== 'x64') return warn(`${process.arch} is not x86-64`)
  const gyp = nodeGyp()
  if (!gyp) return warn('node-gyp not found')
  const dir = join(root, 'build', 'native')
  mkdirSync(dir, { recursive: true })
  for (const f of ['common.h', 'q8.cc', 'attention.cc', 'train.cc', 'secp.cc']) copyFileSync(join(root, 'src', 'runtime', 'native', f), join(dir, f))
  // binding.gyp is JSON (a subset of gyp's syntax): the copy points at libsecp256k1, or leaves tessera_secp out
  const gypFile = JSON.parse(readFileSync(join(root, 'src', 'runtime', 'native', 'binding.gyp'), 'utf8'))
  const lib = libsecp256k1()
  // through a link inside the build directory: gyp's make generator mangles an absolute source path,
  // and a relative one out of the directory puts the objects under build/Release/node_modules/
  const link = join(dir, 'libsecp256k1')
  rmSync(link, { force: true, recursive: true })
  if (lib) {
    symlinkSync(lib, link, 'junction')
    gypFile.variables.libsecp256k1 = 'libsecp256k1'
  } else {
    gypFile.targets = gypFile.targets.filter((t) => t.target_name !== 'tessera_secp')
    console.warn("build: native secp256k1 skipped (libsecp256k1 source not found: node_modules/secp256k1/src/secp256k1); viem/noble stay the signatures' path")
  }
  writeFileSync(join(dir, 'binding.gyp'), `${JSON.stringify(gypFile, null, 2)}\n`)
  const nd = nodeDir()
  const args = [gyp, 'rebuild', '--loglevel=error', ...(nd ? [`--nodedir=${nd}`] : [])]
  const r = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8' })
  if (r.status !== 0) {
    const err = `${r.stderr ?? ''}${r.stdout ?? ''}`.split('\n').find((l) => /error/i.test(l)) ?? `exit ${r.status}`
    return warn(`node-gyp failed: ${err.trim()}`)
  }
}
