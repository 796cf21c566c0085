/**
 * A dataset: ordered documents (a name and bytes each) under one Merkle root, with a manifest that
 * says what the data is (licence, source) and who is paid for it (contributors and their shares).
 * docs/DATA.md has the byte layouts; in short:
 *
 *   document leaf data = u32 nameLength | name (UTF-8) | u64 byteLength | SHA-256(bytes)
 *   leaf               = leafHash(document leaf data)          (engine/hash/merkle.ts: SHA-256(0x00 | data))
 *   root               = merkleRoot(leaves in document order)  (padded to a power of two with ZERO)
 *   manifestHash       = SHA-256(canonicalJson(manifest))      (keys sorted, no whitespace, UTF-8)
 *
 * Integers little-endian, as in the model root (engine/gguf/modelRoot.ts). The leaf carries the
 * content's hash rather than the content so that a document can be proved on chain with 32 bytes
 * in place of its text; the byte length is in the leaf so that the manifest's sizes are committed
 * too. The order of the documents is part of the root: the same documents reordered are another
 * dataset (a training run consumes them in that order).
 *
 * Example:
 *   const docs = [{ name: 'a.txt', bytes: utf8('hello') }]
 *   const m = buildDataset(docs, { name: 'greetings', licence: 'CC0-1.0', source: 'hand-written',
 *     contributors: [{ address: '0x52908400098527886e0f7030069857d2e4169ee7', shareBps: 10000 }], createdBy: 'me' })
 *   verifyDataset(m, docs) // the root (bytes); throws DatasetMismatchError naming the first wrong document
 */
import { isAddress } from 'viem'
import { equalBytes, fromHex, type Hex0x, toHex0x } from '../engine/bytes.js'
import { canonicalJson } from '../engine/gguf/modelRoot.js'
import { buildLevels, type Hash, leafHash, merkleProof, merkleRoot, sha256, verifyProof } from '../engine/hash/merkle.js'
import { DatasetMismatchError, InvalidManifestError } from './errors.js'

/** The manifest format written in every manifest; a reader refuses any other. */
export const DATASET_FORMAT = 'tessera-dataset/1'

/** Shares are basis points of the contributors' part of a payout: they sum to exactly this. */
export const TOTAL_BPS = 10000

/** Longest document name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 1024

/** One document of a dataset. */
export type DatasetDocument = { name: string; bytes: Uint8Array }

/** A contributor and their share of the dataset's payouts, in basis points (all sum to 10000). */
export type Contributor = { address: Hex0x; shareBps: number }

/** What a dataset's builder says about it; the documents give the rest. */
export type DatasetMeta = {
  /** A short name for people, e.g. "moby-dick-train". */
  name: string
  /** An SPDX licence id or expression (e.g. "CC-BY-4.0", "MIT OR Apache-2.0"), or "public-domain". */
  licence: string
  /** Where the documents came from: a URL, a package@version, a description. */
  source: string
  contributors: readonly Contributor[]
  /** Who built the manifest: an address or a tool and version. */
  createdBy: string
}

/** One document as the manifest lists it: name, size in bytes and leaf (hex). */
export type ManifestDocument = { name: string; bytes: number; leaf: Hex0x }

export type DatasetManifest = {
  format: typeof DATASET_FORMAT
  name: string
  licence: string
  source: string
  documents: ManifestDocument[]
  root: Hex0x
  contributors: Contributor[]
  createdBy: string
}

/** An inclusion proof of one document under a dataset root. */
export type DocumentProof = { index: number; leaf: Hex0x; siblings: Hex0x[] }

const utf8 = new TextEncoder()

/** The data hashed into a document's leaf (before `leafHash`). */
export function documentLeafData(name: string, bytes: Uint8Array): Uint8Array {
  const nameBytes = utf8.encode(name)
  const out = new Uint8Array(4 + nameBytes.length + 8 + 32)
  const dv = new DataView(out.buffer)
  dv.setUint32(0, nameBytes.length, true)
  out.set(nameBytes, 4)
  dv.setBigUint64(4 + nameBytes.length, BigInt(bytes.length), true)
  out.set(sha256(bytes), 12 + nameBytes.length)
  return out
}

/** The leaf of one document: `leafHash(documentLeafData(name, bytes))`. */
export function documentLeaf(name: string, bytes: Uint8Array): Hash {
  return leafHash(documentLeafData(name, bytes))
}

/** Root over documents in their order (names checked as `buildDataset` checks them). */
export function datasetRoot(docs: readonly DatasetDocument[]): Hash {
  checkNames(docs.map((d) => d.name))
  return merkleRoot(docs.map((d) => documentLeaf(d.name, d.bytes)))
}

/** The manifest of `docs` in their order, with `meta`; throws InvalidManifestError naming a bad field. */
export function buildDataset(docs: readonly DatasetDocument[], meta: DatasetMeta): DatasetManifest {
  checkNames(docs.map((d) => d.name))
  const documents = docs.map((d) => ({ name: d.name, bytes: d.bytes.length, leaf: toHex0x(documentLeaf(d.name, d.bytes)) }))
  const manifest: DatasetManifest = {
    format: DATASET_FORMAT,
    name: meta.name,
    licence: meta.licence,
    source: meta.source,
    documents,
    root: toHex0x(merkleRoot(documents.map((d) => fromHex(d.leaf)))),
    contributors: meta.contributors as Contributor[], // parseManifest checks and copies them
    createdBy: meta.createdBy,
  }
  return parseManifest(manifest)
}

/** The canonical JSON text of a manifest (what is hashed, and what `tessera data add` writes). */
export function encodeManifest(manifest: DatasetManifest): string {
  return canonicalJson(parseManifest(manifest))
}

/** SHA-256 of the manifest's canonical JSON (UTF-8): the value registered beside the root. */
export function manifestHash(manifest: DatasetManifest): Hash {
  return sha256(utf8.encode(encodeManifest(manifest)))
}

/**
 * Checks that `docs` are exactly the documents `manifest` commits to, in order, and that the
 * manifest itself keeps every rule (its root is the root of its leaves). Returns the root; throws
 * DatasetMismatchError naming the first document that differs, or InvalidManifestError.
 */
export function verifyDataset(manifest: DatasetManifest, docs: readonly DatasetDocument[]): Hash {
  const m = parseManifest(manifest)
  const n = Math.min(m.documents.length, docs.length)
  for (let i = 0; i < n; i++) {
    const want = m.documents[i]
    const got = docs[i]
    if (got.name !== want.name) {
      const at = m.documents.findIndex((d) => d.name === got.name)
      const where = at < 0 ? 'is not in the manifest' : `is the manifest's document ${at}`
      throw new DatasetMismatchError(i, want.name, `is missing here: found ${JSON.stringify(got.name)} in its place, which ${where}`)
    }
    if (got.bytes.length !== want.bytes) throw new DatasetMismatchError(i, want.name, `has ${got.bytes.length} bytes, the manifest says ${want.bytes}`)
    if (!equalBytes(documentLeaf(got.name, got.bytes), fromHex(want.leaf))) throw new DatasetMismatchError(i, want.name, 'has other content than the manifest commits to (leaf differs)')
  }
  if (docs.length > m.documents.length) throw new DatasetMismatchError(n, docs[n].name, `is extra: the manifest lists ${m.documents.length} documents`)
  if (docs.length < m.documents.length) throw new DatasetMismatchError(n, m.documents[n].name, `is missing: ${docs.length} documents given, the manifest lists ${m.documents.length}`)
  return fromHex(m.root)
}

/** Proof that the document `nameOrIndex` of `manifest` is under its root (from the manifest's leaves alone). */
export function proveDocument(manifest: DatasetManifest, nameOrIndex: string | number): DocumentProof {
  const m = parseManifest(manifest)
  const index = typeof nameOrIndex === 'number' ? nameOrIndex : m.documents.findIndex((d) => d.name === nameOrIndex)
  if (!Number.isInteger(index) || index < 0 || index >= m.documents.length) throw new InvalidManifestError('documents', `has no document ${JSON.stringify(nameOrIndex)}`)
  const levels = buildLevels(m.documents.map((d) => fromHex(d.leaf)))
  return { index, leaf: m.documents[index].leaf, siblings: merkleProof(levels, index).map(toHex0x) }
}

/** True when `doc` is the document at `proof.index` under `root`. */
export function verifyDocumentProof(root: Uint8Array | Hex0x, doc: DatasetDocument, proof: DocumentProof): boolean {
  const leaf = documentLeaf(doc.name, doc.bytes)
  if (!equalBytes(leaf, fromHex(proof.leaf))) return false
  const r = typeof root === 'string' ? fromHex(root) : root
  return verifyProof(r, leaf, proof.index, proof.siblings.map(fromHex))
}

const HEX32 = /^0x[0-9a-f]{64}$/
const LICENCE_ID = '(?:LicenseRef-)?[A-Za-z0-9][A-Za-z0-9.+-]*'
const LICENCE = new RegExp(`^${LICENCE_ID}(?: (?:AND|OR|WITH) ${LICENCE_ID})*$`)
const KEYS = ['contributors', 'createdBy', 'documents', 'format', 'licence', 'name', 'root', 'source']

/**
 * A manifest from parsed JSON (or a built one), with every rule checked: the format, non-empty
 * text fields, the licence's form, unique well-formed document names, sizes and leaves, the root
 * over the leaves, contributor addresses (0x + 20 bytes; a mixed-case address must carry its
 * EIP-55 checksum; written lowercase), no duplicate contributor, each share a whole number of
 * basis points from 1 to 10000 and all of them summing to 10000. Throws InvalidManifestError
 * naming the first field that breaks a rule.
 */
export function parseManifest(value: unknown): DatasetManifest {
  const bad = (field: string, problem: string): never => {
    throw new InvalidManifestError(field, problem)
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return bad('manifest', 'is not an object')
  const v = value as Record<string, unknown>
  for (const k of Object.keys(v)) if (!KEYS.includes(k)) bad(k, 'is not a manifest field')
  if (v.format !== DATASET_FORMAT) bad('format', `is ${JSON.stringify(v.format)}, expected ${JSON.stringify(DATASET_FORMAT)}`)
  const text = (field: string): string => {
    const s = v[field]
    if (typeof s !== 'string' || s.trim() === '') return bad(field, 'is not a non-empty string')
    if (/\p{Cc}/u.test(s)) bad(field, 'contains a control character')
    return s
  }
  const name = text('name')
  const licence = text('licence')
  if (licence !== 'public-domain' && !LICENCE.test(licence)) bad('licence', `${JSON.stringify(licence)} is not an SPDX licence id or expression, nor "public-domain"`)
  const source = text('source')
  const createdBy = text('createdBy')

  if (!Array.isArray(v.documents)) return bad('documents', 'is not an array')
  const documents: ManifestDocument[] = v.documents.map((d: unknown, i: number) => {
    const f = `documents[${i}]`
    if (d === null || typeof d !== 'object') return bad(f, 'is not an object')
    const o = d as Record<string, unknown>
    for (const k of Object.keys(o)) if (k !== 'name' && k !== 'bytes' && k !== 'leaf') bad(`${f}.${k}`, 'is not a document field')
    if (typeof o.name !== 'string') return bad(`${f}.name`, 'is not a string')
    if (typeof o.bytes !== 'number' || !Number.isSafeInteger(o.bytes) || o.bytes < 0) return bad(`${f}.bytes`, 'is not a byte count')
    if (typeof o.leaf !== 'string' || !HEX32.test(o.leaf)) return bad(`${f}.leaf`, 'is not 32 bytes of lowercase 0x hex')
    return { name: o.name, bytes: o.bytes, leaf: o.leaf as Hex0x }
  })
  checkNames(documents.map((d) => d.name))
  if (typeof v.root !== 'string' || !HEX32.test(v.root)) bad('root', 'is not 32 bytes of lowercase 0x hex')
  const root = toHex0x(merkleRoot(documents.map((d) => fromHex(d.leaf))))
  if (v.root !== root) bad('root', `is ${v.root}, but the documents' leaves give ${root}`)

  if (!Array.isArray(v.contributors) || v.contributors.length === 0) return bad('contributors', 'is not a non-empty array')
  const seen = new Set<string>()
  let sum = 0
  const contributors: Contributor[] = v.contributors.map((c: unknown, i: number) => {
    const f = `contributors[${i}]`
    if (c === null || typeof c !== 'object') return bad(f, 'is not an object')
    const o = c as Record<string, unknown>
    for (const k of Object.keys(o)) if (k !== 'address' && k !== 'shareBps') bad(`${f}.${k}`, 'is not a contributor field')
    const a = o.address
    if (typeof a !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(a)) return bad(`${f}.address`, `${JSON.stringify(a)} is not an address (0x and 40 hex digits)`)
    if (a !== a.toLowerCase() && a.slice(2) !== a.slice(2).toUpperCase() && !isAddress(a, { strict: true })) bad(`${f}.address`, `${a} has a wrong EIP-55 checksum`)
    const address = a.toLowerCase() as Hex0x
    if (/^0x0{40}$/.test(address)) bad(`${f}.address`, 'is the zero address')
    if (seen.has(address)) bad(`${f}.address`, `${address} is listed twice`)
    seen.add(address)
    const s = o.shareBps
    if (typeof s !== 'number' || !Number.isInteger(s) || s < 1 || s > TOTAL_BPS) return bad(`${f}.shareBps`, `${JSON.stringify(s)} is not a whole number of basis points from 1 to ${TOTAL_BPS}`)
    sum += s
    return { address, shareBps: s }
  })
  if (sum !== TOTAL_BPS) bad('contributors', `shares sum to ${sum} basis points, not ${TOTAL_BPS}`)
  return { format: DATASET_FORMAT, name, licence, source, documents, root: root as Hex0x, contributors, createdBy }
}

/** Document names: non-empty, at most MAX_NAME_BYTES of UTF-8, no control characters, unique. */
function checkNames(names: readonly string[]): void {
  const seen = new Map<string, number>()
  names.forEach((name, i) => {
    const f = `documents[${i}].name`
    if (typeof name !== 'string' || name === '') throw new InvalidManifestError(f, 'is empty')
    if (utf8.encode(name).length > MAX_NAME_BYTES) throw new InvalidManifestError(f, `is longer than ${MAX_NAME_BYTES} bytes`)
    if (/\p{Cc}/u.test(name)) throw new InvalidManifestError(f, 'contains a control character')
    if (/\p{Cs}/u.test(name)) throw new InvalidManifestError(f, 'is not well-formed Unicode (a lone surrogate)')
    const prev = seen.get(name)
    if (prev !== undefined) throw new InvalidManifestError(f, `${JSON.stringify(name)} is also document ${prev}`)
    seen.set(name, i)
  })
}
