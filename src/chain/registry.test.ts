/**
 * ModelRegistry checks what it is told: a model registers only with its own config leaf (leaf 0
 * of the model root), so the layer count and every other field the game reads are the model's.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { encodeFunctionData, type Hex, hexToBytes, sha256, toHex } from 'viem'
import { configLeafDataV3, encodeModelConfigV3 } from '../engine/gguf/configLeaf.js'
import { computeGgufModelRoot } from '../engine/gguf/modelRoot.js'
import { bufferSource, readGguf } from '../engine/gguf/read.js'
import { encodeGguf } from '../engine/gguf/write.js'
import { modelConfigFromGguf } from '../engine/model/config.js'
import { synthModel } from '../engine/model/synth.js'
import { createTokenizer } from '../engine/tokenizer/index.js'
import { toHex as bytesHex, leafHash, nodeHash } from '../trace/merkle.js'
import { getArtifact } from './artifacts.js'
import { getModelConfig, getModelWindow, registerModel } from './actions/registry.js'
import { fakeModel } from './devnet.js'
import { type ChainClients, connectClients, deployContract } from './evm/clients.js'
import { createEmbeddedChain, type EmbeddedChain } from './evm/edr.js'
import { buildModelTree, type ConfigProof } from './weights.js'

let chain: EmbeddedChain
let c: ChainClients
let d: { registry: Hex; settlement: Hex; disputeGame: Hex }
const arithVersion = toHex('tessera-arith/1', { size: 32 })
const registryAbi = () => getArtifact('ModelRegistry').abi

before(async () => {
  chain = await createEmbeddedChain({ accounts: 1 })
  c = connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[0].privateKey })
  const registry = (await deployContract(c, { name: 'ModelRegistry' })).address
  d = { registry, settlement: registry, disputeGame: registry }
})
after(async () => chain?.close())

const rejectsWith = (p: Promise<unknown>, errorName: string) =>
  assert.rejects(p, (e: { name: string; errorName?: string }) => {
    assert.equal(e.name, 'ContractRevertError')
    assert.equal(e.errorName, errorName)
    return true
  })

function tree(preset: string, slidingWindow?: number) {
  const bytes = Buffer.concat([...encodeGguf(synthModel({ preset, type: 'q8_0', seed: 1, slidingWindow }))])
  const src = bufferSource(bytes)
  const gguf = readGguf(src)
  const config = modelConfigFromGguf(gguf.metadata, gguf.tensors)
  const t = buildModelTree(src, gguf, config, createTokenizer(gguf.metadata))
  return { t, engineRoot: `0x${bytesHex(computeGgufModelRoot(src, gguf, config).modelRoot)}` }
}

test('proveConfig opens the model root\'s config leaf', () => {
  const { t, engineRoot } = tree('tiny')
  assert.equal(t.modelRoot, engineRoot)
  const p = t.proveConfig()
  assert.equal(p.leafData, `0x${Buffer.from('tessera-config/3').toString('hex')}${bytesHex(encodeModelConfigV3(p.config))}${p.tokenizerHash.slice(2)}`)
  assert.equal(p.path.length, Math.ceil(Math.log2(t.names.length + 1)))
})

test('a config that lies about any field, the tokenizer or the path reverts BadConfigProof; the true one registers', async () => {
  const { t } = tree('tiny-qwen2')
  const p: ConfigProof = t.proveConfig()
  const reg = (over: Partial<ConfigProof>) => registerModel(c, d, { modelRoot: t.modelRoot, ...p, ...over, arithVersion })
  await rejectsWith(reg({ config: { ...p.config, nLayer: p.config.nLayer + 1 } }), 'BadConfigProof')
  await rejectsWith(reg({ config: { ...p.config, vocab: p.config.vocab - 1 } }), 'BadConfigProof')
  await rejectsWith(reg({ config: { ...p.config, tiedEmbeddings: !p.config.tiedEmbeddings } }), 'BadConfigProof')
  await rejectsWith(reg({ config: { ...p.config, eogTokens: p.config.eogTokens.slice(1) } }), 'BadConfigProof')
  await rejectsWith(reg({ tokenizerHash: `0x${'11'.repeat(32)}` }), 'BadConfigProof')
  await rejectsWith(reg({ path: p.path.slice(0, -1) }), 'BadConfigProof')
  await rejectsWith(registerModel(c, d, { modelRoot: `0x${'22'.repeat(32)}`, ...p, arithVersion }), 'BadConfigProof')

  await reg({})
  const stored = await getModelConfig(c, d, t.modelRoot)
  assert.deepEqual({ ...stored, eogTokens: [...stored.eogTokens] }, { ...p.config, eogTokens: [...p.config.eogTokens] })
  const m = (await c.public.readContract({ address: d.registry, abi: registryAbi(), functionName: 'get', args: [t.modelRoot] })) as { nLayer: number; configHash: Hex; tokenizerHash: Hex }
  assert.deepEqual([m.nLayer, m.configHash, m.tokenizerHash], [p.config.nLayer, sha256(encodeModelConfigV3(p.config)), p.tokenizerHash])
  assert.equal(await c.public.readContract({ address: d.registry, abi: registryAbi(), functionName: 'nLayerOf', args: [t.modelRoot] }), p.config.nLayer)
  // INVARIANT: entries are immutable once written.
  await rejectsWith(reg({}), 'ModelAlreadyRegistered')
  await rejectsWith(getModelConfig(c, d, `0x${'33'.repeat(32)}`), 'UnknownModel')
})

test('a model the dispute machine cannot decide (a width not a multiple of 8) is refused: UnsupportedMachineShape', async () => {
  // A config leaf proven under its root like any other (fakeModel's two-leaf tree), only its shape is wrong.
  for (const over of [{ dim: 60 }, { headDim: 12 }, { ffDim: 100 }, { nKvHead: 0 }, { nHead: 6, nKvHead: 4 }, { arch: 4 }, { arch: 0 }]) {
    const good = fakeModel(`shape-${JSON.stringify(over)}`, 2)
    const config = { ...good.config, ...over }
    const tensors = good.path[0]
    const modelRoot = toHex(nodeHash(leafHash(configLeafDataV3(config, hexToBytes(good.tokenizerHash))), hexToBytes(tensors)))
    await rejectsWith(registerModel(c, d, { modelRoot, config, tokenizerHash: good.tokenizerHash, path: good.path, arithVersion }), 'UnsupportedMachineShape')
  }
  const ok = fakeModel('shape-ok', 2)
  await registerModel(c, d, { ...ok, arithVersion })
  // qwen3 (arch 3) is a machine architecture
  const q3 = fakeModel('shape-qwen3', 2)
  const config = { ...q3.config, arch: 3 }
  const modelRoot = toHex(nodeHash(leafHash(configLeafDataV3(config, hexToBytes(q3.tokenizerHash))), hexToBytes(q3.path[0])))
  await registerModel(c, d, { modelRoot, config, tokenizerHash: q3.tokenizerHash, path: q3.path, arithVersion })
})

test('the arithmetic: v1 and v2 register and arithOf reads them back; an arithmetic the judge does not know is refused (UnknownArith)', async () => {
  const arithOf = (root: Hex) => c.public.readContract({ address: d.registry, abi: registryAbi(), functionName: 'arithOf', args: [root] })
  // a registrant naming an arithmetic the machine does not implement (v3, no version, a typo, v1 with a trailing byte)
  for (const bad of [toHex('tessera-arith/3', { size: 32 }), `0x${'00'.repeat(32)}` as Hex, toHex('tessera-arith/01', { size: 32 }), toHex('tessera-arith/1\u0001', { size: 32 })]) {
    const m = fakeModel(`arith-${bad}`, 2)
    await rejectsWith(registerModel(c, d, { ...m, arithVersion: bad }), 'UnknownArith')
    assert.equal(await arithOf(m.modelRoot), `0x${'00'.repeat(32)}`, 'nothing recorded')
  }
  for (const v of ['tessera-arith/1', 'tessera-arith/2']) {
    const m = fakeModel(`arith-ok-${v}`, 2)
    await registerModel(c, d, { ...m, arithVersion: toHex(v, { size: 32 }) })
    assert.equal(await arithOf(m.modelRoot), toHex(v, { size: 32 }))
  }
})

test('a sliding-window model registers with the window its config leaf commits to (windowOf); a window the root does not commit to reverts BadConfigProof', async () => {
  const w = tree('tiny', 8).t
  const plain = tree('tiny').t
  const wp = w.proveConfig()
  const pp = plain.proveConfig()
  assert.equal(wp.config.slidingWindow, 8)
  assert.ok(wp.leafData.startsWith(`0x${Buffer.from('tessera-config/3+window').toString('hex')}08000000`), 'tag, then W as u32 LE')
  const { slidingWindow: _, ...unwindowed } = wp.config
  // the windowed root with no window, or another one; the plain root with a window (the same weights)
  await rejectsWith(registerModel(c, d, { modelRoot: w.modelRoot, ...wp, config: unwindowed, arithVersion }), 'BadConfigProof')
  await rejectsWith(registerModel(c, d, { modelRoot: w.modelRoot, ...wp, config: { ...wp.config, slidingWindow: 9 }, arithVersion }), 'BadConfigProof')
  await rejectsWith(registerModel(c, d, { modelRoot: plain.modelRoot, ...pp, config: { ...pp.config, slidingWindow: 8 }, arithVersion }), 'BadConfigProof')
  assert.equal(await getModelWindow(c, d, w.modelRoot), 0, 'nothing recorded')
  await registerModel(c, d, { modelRoot: w.modelRoot, ...wp, arithVersion })
  await registerModel(c, d, { modelRoot: plain.modelRoot, ...pp, arithVersion })
  assert.equal(await getModelWindow(c, d, w.modelRoot), 8)
  assert.equal(await getModelWindow(c, d, plain.modelRoot), 0)
  // the stored config is the struct (the window is its own field)
  assert.deepEqual(await getModelConfig(c, d, w.modelRoot), unwindowed)
})

test('the arithmetic and the window share one storage slot: arithOf and windowOf read the same key; neither shows in the other', async () => {
  const read = (fn: 'arithOf' | 'windowOf' | 'get', root: Hex) => c.public.readContract({ address: d.registry, abi: registryAbi(), functionName: fn, args: [root] } as never) as Promise<unknown>
  const v2 = toHex('tessera-arith/2', { size: 32 })
  // a model whose config leaf commits to window W (a fake root: its config leaf beside one other leaf)
  const windowed = (label: string, window: number) => {
    const m = fakeModel(label, 2)
    const config = { ...m.config, slidingWindow: window }
    return { ...m, config, modelRoot: toHex(nodeHash(leafHash(configLeafDataV3(config, hexToBytes(m.tokenizerHash))), hexToBytes(m.path[0]))) }
  }
  // the widest window a config leaf can commit to fills every bit the arithmetic's slot lends it
  const cases = [
    { m: windowed('spec-max', 2 ** 32 - 1), arith: v2, window: 2 ** 32 - 1 },
    { m: windowed('spec-3', 3), arith: arithVersion, window: 3 },
    { m: fakeModel('spec-none', 2), arith: v2, window: 0 },
  ]
  for (const { m, arith, window } of cases) {
    await registerModel(c, d, { ...m, arithVersion: arith })
    assert.equal(await read('arithOf', m.modelRoot), arith)
    assert.equal(await read('windowOf', m.modelRoot), window)
    assert.equal((await read('get', m.modelRoot) as { arithVersion: Hex }).arithVersion, arith)
  }
  // the storage keys each view loads (SLOADs of debug_traceCall): one, and the same one, so a
  // dispute step that reads the window (Machine) and then the arithmetic (MachineStepsB) pays one cold slot
  const keys = async (fn: 'arithOf' | 'windowOf') => {
    const data = encodeFunctionData({ abi: registryAbi(), functionName: fn, args: [cases[0].m.modelRoot] } as never)
    const t = (await chain.provider.request({ method: 'debug_traceCall', params: [{ to: d.registry, data }, 'latest', { disableMemory: true }] })) as { structLogs: { op: string; stack: string[] }[] }
    return t.structLogs.filter((l) => l.op === 'SLOAD').map((l) => l.stack.at(-1))
  }
  const [a, w] = [await keys('arithOf'), await keys('windowOf')]
  assert.equal(a.length, 1)
  assert.deepEqual(w, a)
})
