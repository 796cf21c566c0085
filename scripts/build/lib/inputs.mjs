// What a build step was built from, so that `node scripts/build.mjs --stale` (what `npm test` runs
// first) can skip a step whose inputs are unchanged. A step's inputs are files (their paths and
// contents, not their mtimes: a checkout or a touch does not make a step stale) plus any strings
// that change its output (a compiler version, flags). After a build the step writes the digest
// into build/stamps/<step>.json; the step is stale when that file is missing or its digest differs.
// (This folder is not a step: scripts/build.mjs runs only the .mjs files directly in scripts/build/.)
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

/** Every file under `dir` (relative to the root) whose name passes `keep`, sorted; none if `dir` is missing. */
export function filesUnder(dir, keep = () => true) {
  let out = []
  let names
  try {
    names = readdirSync(join(root, dir))
  } catch {
    return out
  }
  for (const name of names.sort()) {
    const p = join(dir, name)
    if (statSync(join(root, p)).isDirectory()) out = out.concat(filesUnder(p, keep))
    else if (keep(name)) out.push(p.split(sep).join('/'))
  }
  return out
}

/** SHA-256 over the given files' paths (relative to the root, `/`-separated) and contents, and the extra strings. */
export function inputsDigest(files, extra = []) {
  const h = createHash('sha256')
  for (const s of extra) h.update(s).update('\0')
  for (const f of files)
    h.update(f)
      .update('\0')
      .update(readFileSync(join(root, f)))
      .update('\0')
  return h.digest('hex')
}

const stampFile = (step) => join(root, 'build', 'stamps', `${step}.json`)

/** Why `step` needs a build ('' when its stamp matches `digest`). */
export function staleReason(step, digest) {
  let stamp
  try {
    stamp = JSON.parse(readFileSync(stampFile(step), 'utf8'))
  } catch {
    return 'never built here'
  }
  return stamp.digest === digest ? '' : 'its sources changed'
}

/** Records that `step` was built from `digest` (`note`: anything worth keeping, e.g. why it was skipped). */
export function writeStamp(step, digest, note = '') {
  const file = stampFile(step)
  mkdirSync(dirname(file), { recursive: true })
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify({ digest, note }))
  renameSync(tmp, file)
}
