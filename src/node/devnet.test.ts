// The devnet's registration of the model it serves (registerDevnetModel, what startDevnet runs
// before any node starts), on an embedded chain in process: the shipped default model gets its
// lineage (two public-domain datasets whose roots are the training run's, their weights, the run's
// manifest hash and run root), read back by `tessera model lineage` with every link it checks
// holding; a second start registers nothing; a model with no record beside it is registered alone;
// a record that contradicts its file is refused in one line. The whole devnet (processes, banner,
// lineage over its JSON-RPC) is test/network/devnet.test.ts.
import assert from 'node:assert/strict'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { getDataset, getTrainingRecord } from '../chain/actions/datasets.js'
import { isModelRegistered } from '../chain/actions/registry.js'
import { saveDeployment } from '../chain/client.js'
import { createDevnet } from '../chain/devnet.js'
import { devAccount } from '../chain/evm/edr.js'
import { serveJsonRpc } from '../chain/evm/server.js'
import { parseArgs } from '../cli/args.js'
import { lineageCommands } from '../cli/commands/lineage.js'
import { DEFAULT_MODEL_PATH } from '../runtime/defaultModel.js'
import { loadModel } from '../runtime/model.js'
import { DATA_CONTRIBUTOR_ACCOUNT, readRunRecord, registerDevnetModel, weightsBps } from './devnet.js'
import { gatewayModelOf } from './gateway/backend.js'

const shipped = join(DEFAULT_MODEL_PATH, '..')
const runJson = JSON.parse(readFileSync(join(shipped, 'run.json'), 'utf8'))
const manifestJson = JSON.parse(readFileSync(join(shipped, 'manifest.json'), 'utf8'))

async function modelOf(path: string) {
  const m = await loadModel(path)
  try {
    const g = gatewayModelOf(m)
    return { path, root: g.root, name: g.name }
  } finally {
    m.close()
  }
}

test('weights as basis points sum to exactly 10,000', () => {
  assert.deepEqual(weightsBps([1, 1]), [5000, 5000])
  assert.deepEqual(weightsBps([1, 1, 1]), [3334, 3333, 3333])
  assert.deepEqual(weightsBps([3, 1]), [7500, 2500])
  assert.throws(() => weightsBps([1, 0]), { name: 'DevnetError' })
})

test('the default model is registered with its lineage, which tessera model lineage reads back; a second start sends nothing', async (t) => {
  const net = await createDevnet()
  const srv = await serveJsonRpc(net.chain.provider, { port: 0 })
  const dir = mkdtempSync(join(tmpdir(), 'tessera-devnet-lineage-'))
  const lines: string[] = []
  try {
    const model = await modelOf(DEFAULT_MODEL_PATH)
    assert.equal(model.root, runJson.models.find((m: { file: string }) => m.file === 'model-q8_0.gguf').modelRoot)
    assert.equal(await registerDevnetModel(net.client, net.d, model, (l) => lines.push(l)), 'trained')
    assert.equal(lines.length, 3, lines.join('\n'))
    const rec = await getTrainingRecord(net.client, net.d, model.root)
    assert.deepEqual(rec, {
      manifestHash: runJson.manifestHash,
      runRoot: runJson.runRoot,
      datasets: manifestJson.data.map((x: { root: string }) => ({ root: x.root, weightBps: 5000 })),
    })
    for (const x of manifestJson.data) {
      const ds = await getDataset(net.client, net.d, x.root)
      assert.equal(ds?.licence, 'public-domain')
      assert.deepEqual(ds?.contributors, [{ address: devAccount(DATA_CONTRIBUTOR_ACCOUNT).address, shareBps: 10000 }])
    }
    // a restart of the devnet on the same chain: nothing more is sent
    assert.equal(await registerDevnetModel(net.client, net.d, model, (l) => lines.push(l)), 'already')
    assert.equal(lines.length, 3)

    // `tessera model lineage FILE --training-manifest manifest.json` against that chain: every link it checks holds
    const dep = join(dir, 'deployment.json')
    saveDeployment(dep, net.d)
    const out: string[] = []
    t.mock.method(console, 'log', (s: string) => out.push(s))
    const cmd = lineageCommands.find((c) => c.name === 'model lineage')!
    const argv = [DEFAULT_MODEL_PATH, '--training-manifest', join(shipped, 'manifest.json'), '--rpc', srv.url, '--deployment', dep]
    const code = await cmd.run(parseArgs(argv, cmd.flags, 1), new AbortController().signal)
    const text = out.join('\n')
    assert.equal(code, 0, text)
    for (const x of manifestJson.data) assert.match(text, new RegExp(`dataset \\d ${x.root}, weight 50.00%`))
    assert.match(text, new RegExp(`run root\\s+${runJson.runRoot}`))
    assert.match(text, new RegExp(`manifest hash\\s+${runJson.manifestHash}`))
    assert.match(text, /ok\s+training manifest .*is the record's manifest hash/)
    assert.match(text, /ok\s+the GGUF's tessera.train.run_root matches the record/)
    assert.doesNotMatch(text, /FAILED/)
  } finally {
    await srv.close()
    await net.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a model with no record beside it is registered alone; a record that contradicts its file is refused in one line', async () => {
  const net = await createDevnet()
  const dir = mkdtempSync(join(tmpdir(), 'tessera-devnet-lineage-'))
  try {
    // the default model's file, copied without its record
    const alone = join(dir, 'model-q8_0.gguf')
    copyFileSync(DEFAULT_MODEL_PATH, alone)
    const model = await modelOf(alone)
    assert.match(String(readRunRecord(alone, model.root)), /no run.json and manifest.json beside/)
    // a manifest.json that is not the one run.json hashed
    writeFileSync(join(dir, 'run.json'), JSON.stringify(runJson))
    writeFileSync(join(dir, 'manifest.json'), `${readFileSync(join(shipped, 'manifest.json'), 'utf8')} `)
    assert.throws(() => readRunRecord(alone, model.root), { name: 'DevnetError', message: /names the manifest hash 0x[0-9a-f]{64}, .* hashes to 0x[0-9a-f]{64}$/ })
    // run.json giving the file another root
    writeFileSync(join(dir, 'run.json'), JSON.stringify({ ...runJson, models: [{ file: 'model-q8_0.gguf', modelRoot: `0x${'11'.repeat(32)}` }] }))
    assert.throws(() => readRunRecord(alone, model.root), { name: 'DevnetError', message: /gives model-q8_0.gguf the model root 0x1111/ })
    rmSync(join(dir, 'run.json'))
    const lines: string[] = []
    assert.equal(await registerDevnetModel(net.client, net.d, model, (l) => lines.push(l)), 'registered')
    assert.match(lines.join('\n'), /without a training record: no run.json and manifest.json beside/)
    assert.ok(await isModelRegistered(net.client, net.d, model.root))
    assert.equal(await getTrainingRecord(net.client, net.d, model.root), null)
  } finally {
    await net.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
