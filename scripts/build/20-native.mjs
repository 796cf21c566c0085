// Builds the optional native addons with node-gyp into build/native/build/Release/: tessera_q8.node (the
// matmuls, Q8_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K, and the trace hashes: q8.cc), tessera_attention.node
// (attention.cc), tessera_train.node (train.cc), the three including common.h, and tessera_secp.node (secp.cc:
// secp256k1 signing and checks with node's OpenSSL). Optional: off x86-64, or when node-gyp or a C++
// compiler is missing, it prints one warning line and the WASM kernels stay the path; it never
// fails the build. node-gyp works offline with Node's own headers (--nodedir: npm's config, else
// the include/node directory next to the running node).
// Its stamp records a skip too, so `npm test` does not retry a machine without a compiler each run.
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { inputsDigest, root, staleReason, writeStamp } from './lib/inputs.mjs'

// The addon is built against this Node's ABI (process.versions.modules): another Node needs a rebuild.
const inputs = () =>
  inputsDigest(
    [
      'src/runtime/native/binding.gyp',
      'src/runtime/native/q8.cc',
      'src/runtime/native/attention.cc',
      'src/runtime/native/train.cc',
      'src/runtime/native/secp.cc',
      'src/runtime/native/common.h',
      'scripts/build/20-native.mjs',
    ],
    [process.arch, process.versions.modules],
  )

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
  for (const f of ['binding.gyp', 'common.h', 'q8.cc', 'attention.cc', 'train.cc', 'secp.cc']) copyFileSync(join(root, 'src', 'runtime', 'native', f), join(dir, f))
  const nd = nodeDir()
  const args = [gyp, 'rebuild', '--loglevel=error', ...(nd ? [`--nodedir=${nd}`] : [])]
  const r = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8' })
  if (r.status !== 0) {
    const err = `${r.stderr ?? ''}${r.stdout ?? ''}`.split('\n').find((l) => /error/i.test(l)) ?? `exit ${r.status}`
    return warn(`node-gyp failed: ${err.trim()}`)
  }
}
