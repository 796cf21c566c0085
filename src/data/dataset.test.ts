import assert from 'node:assert/strict'
import { test } from 'node:test'
import { toHex0x } from '../engine/bytes.js'
import { leafHash, merkleRoot, sha256 } from '../engine/hash/merkle.js'
import {
  buildDataset,
  type DatasetDocument,
  type DatasetManifest,
  type DatasetMeta,
  datasetRoot,
  documentLeaf,
  documentLeafData,
  encodeManifest,
  manifestHash,
  parseManifest,
  proveDocument,
  verifyDataset,
  verifyDocumentProof,
} from './dataset.js'

const utf8 = new TextEncoder()
const doc = (name: string, text: string): DatasetDocument => ({ name, bytes: utf8.encode(text) })
const docs = [doc('a.txt', 'Call me Ishmael.\n'), doc('b.txt', 'It is a way I have of driving off the spleen.\n'), doc('c.txt', ''), doc('d/é.txt', 'Whenever I find myself growing grim about the mouth;\n'), doc('e.txt', 'then, I account it high time to get to sea as soon as I can.\n')]
const ALICE = '0x52908400098527886e0f7030069857d2e4169ee7'
const BOB = '0x8617e340b3d01fa5f11f306f4090fd50e238070d'
const meta: DatasetMeta = { name: 'test-set', licence: 'public-domain', source: 'hand-written', contributors: [{ address: ALICE, shareBps: 7000 }, { address: BOB, shareBps: 3000 }], createdBy: 'dataset.test' }

test('leaf layout: u32 name length, name, u64 byte length, SHA-256 of the bytes, all little-endian', () => {
  const data = documentLeafData('ab', utf8.encode('xyz'))
  const want = new Uint8Array([2, 0, 0, 0, 0x61, 0x62, 3, 0, 0, 0, 0, 0, 0, 0, ...sha256(utf8.encode('xyz'))])
  assert.deepEqual(data, want)
  assert.deepEqual(documentLeaf('ab', utf8.encode('xyz')), leafHash(want))
  // Golden values (computed independently with Python's hashlib from docs/DATA.md's layout)
  assert.equal(toHex0x(documentLeaf('ab', utf8.encode('xyz'))), '0x11068f2bbb69961bf7d080d46278eaa2120a7dd6eaa38e169b580eee3f193de5')
  assert.equal(toHex0x(datasetRoot(docs)), '0x15bd4677e00bbe34fee0721610842697caffe121511a01d8ff23854737f42256')
})

test('buildDataset: manifest with sizes, leaves, the root over them, canonical JSON and its hash', () => {
  const m = buildDataset(docs, meta)
  assert.equal(m.documents.length, 5)
  assert.deepEqual(
    m.documents.map((d) => d.bytes),
    docs.map((d) => d.bytes.length),
  )
  assert.equal(m.root, toHex0x(merkleRoot(docs.map((d) => documentLeaf(d.name, d.bytes)))))
  assert.deepEqual(verifyDataset(m, docs), datasetRoot(docs))
  const json = encodeManifest(m)
  assert.ok(json.startsWith('{"contributors":[{"address":"0x5290'), 'keys sorted, no whitespace')
  assert.ok(!/\s"|":\s/.test(json))
  assert.deepEqual(parseManifest(JSON.parse(json)), m, 'the JSON round-trips')
  assert.deepEqual(manifestHash(m), sha256(utf8.encode(json)))
  // the hash covers every field
  assert.notDeepEqual(manifestHash({ ...m, licence: 'CC0-1.0' }), manifestHash(m))
  assert.notDeepEqual(manifestHash({ ...m, contributors: [{ address: ALICE, shareBps: 6999 }, { address: BOB, shareBps: 3001 }] }), manifestHash(m))
  // a checksummed address is accepted and written lowercase
  const m2 = buildDataset(docs, { ...meta, contributors: [{ address: '0x52908400098527886E0F7030069857D2E4169EE7', shareBps: 10000 }] })
  assert.equal(m2.contributors[0].address, ALICE)
})

test('inclusion proof of one document, and a wrong document or index fails it', () => {
  const m = buildDataset(docs, meta)
  for (let i = 0; i < docs.length; i++) {
    const p = proveDocument(m, docs[i].name)
    assert.equal(p.index, i)
    assert.equal(p.siblings.length, 3)
    assert.ok(verifyDocumentProof(m.root, docs[i], p))
  }
  const p = proveDocument(m, 1)
  assert.ok(!verifyDocumentProof(m.root, doc('b.txt', 'It is a way I have of driving off the spleen!\n'), p))
  assert.ok(!verifyDocumentProof(m.root, { ...docs[1], name: 'B.txt' }, p))
  assert.ok(!verifyDocumentProof(m.root, docs[1], { ...p, index: 3 }))
  assert.throws(() => proveDocument(m, 'nope.txt'), { name: 'InvalidManifestError' })
})

test('attacker: reordered documents, a changed byte, a missing or extra document: the first one that differs is named', () => {
  const m = buildDataset(docs, meta)
  const swapped = [docs[0], docs[2], docs[1], docs[3], docs[4]]
  assert.throws(() => verifyDataset(m, swapped), (e: unknown) => {
    assert.equal((e as Error).name, 'DatasetMismatchError')
    assert.equal((e as { index: number }).index, 1)
    assert.equal((e as { document: string }).document, 'b.txt')
    return true
  })
  const changed = docs.map((d) => ({ ...d, bytes: d.bytes.slice() }))
  changed[3].bytes[7] ^= 1
  assert.throws(() => verifyDataset(m, changed), (e: unknown) => (e as { index: number }).index === 3 && (e as Error).name === 'DatasetMismatchError' && /leaf differs/.test((e as Error).message))
  assert.throws(() => verifyDataset(m, docs.slice(0, 4)), (e: unknown) => (e as { index: number }).index === 4 && (e as Error).name === 'DatasetMismatchError')
  assert.throws(() => verifyDataset(m, [...docs, doc('f.txt', 'x')]), (e: unknown) => (e as { document: string }).document === 'f.txt')
  // the same documents reordered are another dataset
  assert.notDeepEqual(datasetRoot(swapped), datasetRoot(docs))
})

test('attacker: a manifest whose leaves, sizes or root were edited is refused', () => {
  const m = buildDataset(docs, meta)
  const otherLeaf = toHex0x(documentLeaf('b.txt', utf8.encode('evil\n')))
  const withLeaf = { ...m, documents: m.documents.map((d, i) => (i === 1 ? { ...d, leaf: otherLeaf } : d)) }
  assert.throws(() => parseManifest(withLeaf), { name: 'InvalidManifestError', field: 'root' })
  // a consistent forgery (leaf and root recomputed) parses, but the real documents do not match it
  const forged = buildDataset([docs[0], doc('b.txt', 'evil\n'), ...docs.slice(2)], meta)
  assert.throws(() => verifyDataset(forged, docs), { name: 'DatasetMismatchError', index: 1 })
  const withSize = { ...m, documents: m.documents.map((d, i) => (i === 0 ? { ...d, bytes: d.bytes + 1 } : d)) }
  assert.throws(() => verifyDataset(withSize, docs), { name: 'DatasetMismatchError', index: 0 })
  assert.throws(() => parseManifest({ ...m, root: m.root.toUpperCase() }), { name: 'InvalidManifestError', field: 'root' })
  assert.throws(() => parseManifest({ ...m, extra: 1 }), { name: 'InvalidManifestError', field: 'extra' })
  assert.throws(() => parseManifest({ ...m, format: 'tessera-dataset/2' }), { name: 'InvalidManifestError', field: 'format' })
})

test('attacker: bad contributors: shares not summing to 10000, a duplicate, a bad address, each one clear error', () => {
  const bad = (contributors: unknown, field: string) =>
    assert.throws(() => buildDataset(docs, { ...meta, contributors: contributors as DatasetMeta['contributors'] }), (e: unknown) => {
      assert.equal((e as Error).name, 'InvalidManifestError')
      assert.equal((e as { field: string }).field, field)
      assert.ok(!(e as Error).message.includes('\n'), 'one line')
      return true
    })
  bad([{ address: ALICE, shareBps: 7000 }, { address: BOB, shareBps: 2999 }], 'contributors')
  bad([{ address: ALICE, shareBps: 7000 }, { address: BOB, shareBps: 3001 }], 'contributors')
  bad([{ address: ALICE, shareBps: 5000 }, { address: ALICE, shareBps: 5000 }], 'contributors[1].address')
  bad([{ address: ALICE, shareBps: 5000 }, { address: ALICE.toUpperCase().replace('0X', '0x'), shareBps: 5000 }], 'contributors[1].address')
  bad([{ address: '0x1234', shareBps: 10000 }], 'contributors[0].address')
  bad([{ address: `${ALICE}00`, shareBps: 10000 }], 'contributors[0].address')
  bad([{ address: ALICE.replace('0x', ''), shareBps: 10000 }], 'contributors[0].address')
  bad([{ address: '0x52908400098527886E0F7030069857D2E4169Ee7', shareBps: 10000 }], 'contributors[0].address') // checksum
  bad([{ address: `0x${'0'.repeat(40)}`, shareBps: 10000 }], 'contributors[0].address')
  bad([{ address: ALICE, shareBps: 10000.5 }], 'contributors[0].shareBps')
  bad([{ address: ALICE, shareBps: 0 }, { address: BOB, shareBps: 10000 }], 'contributors[0].shareBps')
  bad([{ address: ALICE, shareBps: 20000 }, { address: BOB, shareBps: -10000 }], 'contributors[0].shareBps')
  bad([], 'contributors')
  bad(undefined, 'contributors')
  bad([null], 'contributors[0]')
  bad([{ address: ALICE, shareBps: 10000, extra: 1 }], 'contributors[0].extra')
})

test('bad metadata and document names are refused naming the field', () => {
  const bad = (m: Partial<DatasetMeta>, d: DatasetDocument[], field: string) => assert.throws(() => buildDataset(d, { ...meta, ...m }), { name: 'InvalidManifestError', field })
  bad({ licence: 'Apache 2.0' }, docs, 'licence')
  bad({ licence: '' }, docs, 'licence')
  bad({ name: ' ' }, docs, 'name')
  bad({ source: 'a\nb' }, docs, 'source')
  bad({}, [doc('a', 'x'), doc('a', 'y')], 'documents[1].name')
  bad({}, [doc('', 'x')], 'documents[0].name')
  bad({}, [doc('a\tb', 'x')], 'documents[0].name')
  bad({}, [doc('x'.repeat(1025), 'x')], 'documents[0].name')
  bad({}, [doc('a\ud800b', 'x')], 'documents[0].name')
  for (const licence of ['MIT', 'CC-BY-4.0', 'MIT OR Apache-2.0', 'GPL-2.0-or-later WITH Classpath-exception-2.0', 'LicenseRef-mine', 'public-domain']) {
    assert.equal(buildDataset(docs, { ...meta, licence }).licence, licence)
  }
  assert.throws(() => parseManifest(null), { name: 'InvalidManifestError' })
  assert.throws(() => parseManifest('{}'), { name: 'InvalidManifestError' })
})

test('an empty dataset has the root of no leaves (ZERO) and verifies against no documents', () => {
  const m: DatasetManifest = buildDataset([], meta)
  assert.equal(m.root, `0x${'0'.repeat(64)}`)
  assert.deepEqual(verifyDataset(m, []), new Uint8Array(32))
})
