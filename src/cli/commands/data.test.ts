// `tessera data add` / `data withdraw` / `model register` in process (the end-to-end run through the
// CLI's processes is test/cli/data.test.ts): the ADDR:SHARE and ROOT:WEIGHT forms, files and folders
// as documents, the offline manifest, bad shares refused before anything is sent, and a root that
// someone registered first with another manifest refused in one line.
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { getDataset, registerDataset } from '../../chain/actions/datasets.js'
import { saveDeployment } from '../../chain/client.js'
import { createDevnet, h } from '../../chain/devnet.js'
import { serveJsonRpc } from '../../chain/evm/server.js'
import { encodeGguf } from '../../engine/gguf/write.js'
import { synthModel } from '../../engine/model/synth.js'
import { writeGgufFile } from '../../runtime/ggufFile.js'
import { parseArgs } from '../args.js'
import { collectFiles, dataCommands, parseContributor } from './data.js'
import { lineageCommands, parseDatasetWeight } from './lineage.js'

const cmd = (name: string) => [...dataCommands, ...lineageCommands].find((c) => c.name === name)!
const run = (name: string, argv: string[]) => cmd(name).run(parseArgs(argv, cmd(name).flags, Number.POSITIVE_INFINITY), new AbortController().signal)
const A = '0x52908400098527886E0F7030069857D2E4169EE7'
const B = '0x8617e340b3d01fa5f11f306f4090fd50e238070d'

test('ADDR:SHARE and ROOT:WEIGHT: basis points or percentages, anything else refused by name', () => {
  assert.deepEqual(parseContributor(`${A}:60%`), { address: A, shareBps: 6000 })
  assert.deepEqual(parseContributor(`${B}:12.5%`), { address: B, shareBps: 1250 })
  assert.deepEqual(parseContributor(`${B}:4000`), { address: B, shareBps: 4000 })
  for (const bad of [`${B}`, `${B}:0`, `${B}:10001`, `${B}:101%`, `${B}:-5`, `0x1234:50%`, `${B}:1.234%`]) assert.throws(() => parseContributor(bad), { name: 'InvalidParameterError' }, bad)
  assert.deepEqual(parseDatasetWeight(`${h('x')}:70%`), { root: h('x'), weightBps: 7000 })
  for (const bad of [`${h('x')}:0`, `${A}:50%`, h('x')]) assert.throws(() => parseDatasetWeight(bad), { name: 'InvalidParameterError' }, bad)
})

test('files and folders as documents, the offline manifest, shares not summing to 100% refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-data-cmd-'))
  t.mock.method(console, 'log', () => {})
  try {
    mkdirSync(join(dir, 'docs', 'sub'), { recursive: true })
    writeFileSync(join(dir, 'docs', 'b.txt'), 'bee')
    writeFileSync(join(dir, 'docs', 'a.txt'), 'ay')
    writeFileSync(join(dir, 'docs', 'sub', 'c.txt'), 'sea')
    const files = collectFiles([join(dir, 'docs')])
    assert.deepEqual(
      files.map((f) => f.path),
      ['a.txt', 'b.txt', 'sub/c.txt'].map((x) => join(dir, 'docs', x)),
    )
    const out = join(dir, 'ds.json')
    assert.equal(await run('data add', [join(dir, 'docs'), '--licence', 'CC0-1.0', '--contributor', `${A}:70%`, '--contributor', `${B}:30%`, '--out', out, '--offline']), 0)
    const m = JSON.parse(readFileSync(out, 'utf8'))
    assert.equal(m.documents.length, 3)
    assert.equal(m.name, 'a')
    assert.deepEqual(m.contributors, [
      { address: A.toLowerCase(), shareBps: 7000 },
      { address: B, shareBps: 3000 },
    ])
    await assert.rejects(run('data add', [join(dir, 'docs'), '--licence', 'CC0-1.0', '--contributor', `${A}:70%`, '--out', join(dir, 'x.json'), '--offline']), {
      name: 'InvalidManifestError',
      message: /shares sum to 7000 basis points, not 10000/,
    })
    await assert.rejects(run('data add', [join(dir, 'docs'), '--contributor', `${A}:100%`, '--out', join(dir, 'x.json'), '--offline']), { name: 'UsageError' })
    await assert.rejects(run('data add', [join(dir, 'docs'), '--licence', 'CC0-1.0', '--out', join(dir, 'x.json'), '--offline']), { name: 'UsageError' })
    await assert.rejects(run('data add', [join(dir, 'docs'), '--licence', 'CC0-1.0', '--contributor', `${A}:100%`, '--out', out, '--offline']), { name: 'UsageError', message: /exists/ })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('data add: the same manifest again is fine, another manifest for a registered root is refused; model register twice is refused; data withdraw with nothing due', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-data-cmd-'))
  const net = await createDevnet({ accounts: 6 })
  const srv = await serveJsonRpc(net.chain.provider, { port: 0 })
  t.mock.method(console, 'log', () => {})
  try {
    const dep = join(dir, 'deployment.json')
    saveDeployment(dep, net.d)
    const conn = ['--rpc', srv.url, '--deployment', dep]
    writeFileSync(join(dir, 'a.txt'), 'the same bytes')
    const out = join(dir, 'ds.json')
    assert.equal(await run('data add', [join(dir, 'a.txt'), '--licence', 'MIT', '--contributor', `${A}:100%`, '--out', out, '--offline']), 0)
    const root = JSON.parse(readFileSync(out, 'utf8')).root
    // registered, then the same files again: already registered with this manifest, nothing sent
    const mine = join(dir, 'mine.txt')
    writeFileSync(mine, 'my own bytes')
    const addMine = [mine, '--licence', 'MIT', '--contributor', `${net.at(5).account.address}:100%`, '--out', join(dir, 'mine.json'), '--force', ...conn]
    assert.equal(await run('data add', addMine), 0)
    const mineRoot = JSON.parse(readFileSync(join(dir, 'mine.json'), 'utf8')).root
    const logs = (console.log as unknown as { mock: { calls: { arguments: unknown[] }[] } }).mock
    assert.equal(await run('data add', addMine), 0)
    assert.match(String(logs.calls.at(-1)?.arguments[0]), /already registered with this manifest/)
    // someone else registers that root first, naming itself
    await registerDataset(net.at(5), net.d, { root, manifestHash: h('their manifest'), licence: 'MIT', contributors: [{ address: net.at(5).account.address, shareBps: 10000 }] })
    await assert.rejects(run('data add', [join(dir, 'a.txt'), '--licence', 'MIT', '--contributor', `${A}:100%`, '--out', out, '--force', ...conn]), {
      name: 'ChainError',
      message: new RegExp(`dataset root ${root} is registered already, by ${net.at(5).account.address} with another manifest`),
    })
    assert.equal((await getDataset(net.client, net.d, root))?.manifestHash, h('their manifest'))
    // a model: registered once with its record; a second registration is refused by name
    const gguf = join(dir, 'm.gguf')
    writeGgufFile(gguf, encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 9 })))
    const reg = ['model register', [gguf, '--dataset', `${root}:100%`, '--run-root', h('run'), '--manifest-hash', h('manifest'), ...conn]] as const
    await assert.rejects(run(reg[0], [gguf, '--dataset', `${root}:60%`, '--run-root', h('run'), '--manifest-hash', h('manifest'), ...conn]), { name: 'InvalidParameterError', message: /not 6000/ })
    await assert.rejects(run(reg[0], [gguf, '--dataset', `${root}:100%`, ...conn]), { name: 'UsageError', message: /--run-root is needed/ })
    assert.equal(await run(reg[0], [...reg[1]]), 0)
    await assert.rejects(run(reg[0], [...reg[1]]), { name: 'ChainError', message: /is registered already, with a training record/ })
    // withdrawals: a model without a record pays no data share; a contributor with nothing due is told so
    await assert.rejects(run('data withdraw', [net.modelRoot, ...conn]), { name: 'ChainError', message: /has no training record/ })
    const gguf2 = join(dir, 'm2.gguf')
    writeGgufFile(gguf2, encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 10 })))
    assert.equal(await run(reg[0], [gguf2, '--dataset', `${mineRoot}:100%`, '--run-root', h('run2'), '--manifest-hash', h('manifest2'), ...conn]), 0)
    const m2 = String(logs.calls.at(-4)?.arguments[0]).match(/registered model (0x[0-9a-f]{64})/)?.[1]
    assert.ok(m2, 'the registered root is printed')
    assert.equal(await run('data withdraw', [m2, '--account', '5', ...conn]), 0)
    assert.match(String(logs.calls.at(-1)?.arguments[0]), /nothing to withdraw/)
  } finally {
    await srv.close()
    await net.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
