/**
 * Data provenance end to end on the embedded chain, through the CLI (docs/DATA.md "On chain"):
 * `tessera data add` builds and registers a dataset; a model trained on it is registered with its
 * training record; jobs on it are claimed through the normal claim path and finalized; the
 * contributors withdraw their shares with `tessera data withdraw`; `tessera model lineage` prints
 * dataset -> training run -> model -> jobs served, checks each link it can, says which it could
 * not, and fails on a manifest that is not the registered one.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { dataEarned, dataOwedTo, getDataset, getTrainingRecord } from '../../src/chain/actions/datasets.js'
import { claimBatch, deposit, finalizeBatch, getBatch } from '../../src/chain/actions/settlement.js'
import { jobAmount, saveDeployment } from '../../src/chain/client.js'
import { createDevnet, h, makeItem, makeRequest } from '../../src/chain/devnet.js'
import { serveJsonRpc } from '../../src/chain/evm/server.js'
import { buildModelTree } from '../../src/chain/weights.js'
import { fromHex, toHex0x } from '../../src/engine/bytes.js'
import { readGguf } from '../../src/engine/gguf/read.js'
import { gv } from '../../src/engine/gguf/types.js'
import { encodeGguf } from '../../src/engine/gguf/write.js'
import { sha256 } from '../../src/engine/hash/merkle.js'
import { modelConfigFromGguf } from '../../src/engine/model/config.js'
import { synthModel } from '../../src/engine/model/synth.js'
import { openGgufSource, writeGgufFile } from '../../src/runtime/ggufFile.js'
import { cli } from '../support/cli.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-data-'))
after(() => rmSync(dir, { recursive: true, force: true }))

test('data add registers a dataset; jobs on a model trained on it pay its contributors; model lineage prints and checks the chain', async () => {
  const net = await createDevnet({ accounts: 8 })
  const srv = await serveJsonRpc(net.chain.provider, { port: 0 })
  try {
    const { d, client, provider } = net
    const depFile = join(dir, 'deployment.json')
    saveDeployment(depFile, d)
    const conn = ['--rpc', srv.url, '--deployment', depFile]
    const [c5, c6] = [net.at(5), net.at(6)]

    // 1. the dataset, built and registered by the CLI
    writeFileSync(join(dir, 'a.txt'), 'Call me Ishmael.\n')
    writeFileSync(join(dir, 'b.txt'), 'Some years ago, never mind how long precisely.\n')
    const manifestFile = join(dir, 'ds.json')
    const add = await cli(
      'data',
      'add',
      join(dir, 'a.txt'),
      join(dir, 'b.txt'),
      '--licence',
      'public-domain',
      '--name',
      'ishmael',
      '--contributor',
      `${c5.account.address}:60%`,
      '--contributor',
      `${c6.account.address}:4000`,
      '--out',
      manifestFile,
      '--account',
      '7',
      ...conn,
    )
    assert.equal(add.code, 0, add.err)
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as { root: `0x${string}`; contributors: { address: string; shareBps: number }[] }
    assert.match(add.out, new RegExp(`root\\s+${manifest.root}`))
    const onChain = await getDataset(client, d, manifest.root)
    assert.deepEqual(
      onChain?.contributors.map((x) => [x.address.toLowerCase(), x.shareBps]),
      [
        [c5.account.address.toLowerCase(), 6000],
        [c6.account.address.toLowerCase(), 4000],
      ],
    )
    assert.equal(onChain?.registrant, net.at(7).account.address)
    // 2. a model "trained" on it: a tiny GGUF carrying its run's keys, registered with the training record
    const trainingManifest = join(dir, 'manifest.json')
    writeFileSync(trainingManifest, '{"format":"tessera-train-run/1","datasets":["ishmael"]}')
    const manifestHash = toHex0x(sha256(new Uint8Array(readFileSync(trainingManifest))))
    const runRoot = h('run root')
    const spec = synthModel({ preset: 'tiny', type: 'q8_0', seed: 5 })
    spec.metadata.set('tessera.train.run_root', gv.str(runRoot))
    spec.metadata.set('tessera.train.manifest_hash', gv.str(manifestHash))
    const modelFile = join(dir, 'trained.gguf')
    writeGgufFile(modelFile, encodeGguf(spec))
    const src = openGgufSource(modelFile)
    const gguf = readGguf(src)
    const tree = buildModelTree(src, gguf, modelConfigFromGguf(gguf.metadata, gguf.tensors))
    const proof = tree.proveConfig()
    src.close()
    const modelRoot = tree.modelRoot
    // registered by the CLI: the run root and manifest hash from the GGUF's own keys
    const reg = await cli('model', 'register', modelFile, '--dataset', `${manifest.root}:100%`, '--account', '0', ...conn)
    assert.equal(reg.code, 0, reg.err)
    assert.match(reg.out, new RegExp(`registered model ${modelRoot} with its training record`))
    assert.deepEqual(await getTrainingRecord(client, d, modelRoot), { manifestHash, runRoot, datasets: [{ root: manifest.root, weightBps: 10_000 }] })

    // 3. three jobs on it, claimed in one batch through the normal path and finalized after the window
    await deposit(client, d, { amount: 10n ** 18n })
    const items = []
    for (let i = 0; i < 3; i++) items.push(await makeItem(net, client, makeRequest(net, { modelRoot, nonce: BigInt(100 + i) }), { nLayer: proof.config.nLayer }))
    const { batchId } = await claimBatch(provider, d, { items })
    const share = items.reduce((s, it) => s + (jobAmount(it) * BigInt(d.params.settlement.dataBps)) / 10_000n, 0n)
    assert.equal(await dataEarned(client, d, modelRoot), share)
    await net.warp(BigInt(d.params.settlement.challengeWindow) + 1n)
    await finalizeBatch(provider, d, { batchId })
    assert.equal((await getBatch(client, d, batchId)).status, 2)

    // 4. the contributors withdraw with the CLI: 60% and 40% of the share
    for (const [who, idx, bps] of [
      [c5, 5, 6000n],
      [c6, 6, 4000n],
    ] as const) {
      const due = await dataOwedTo(client, d, { modelRoot, datasetIndex: 0, contributor: who.account.address })
      assert.equal(due, (share * bps) / 10_000n)
      const w = await cli('data', 'withdraw', modelRoot, '--account', String(idx), ...conn)
      assert.equal(w.code, 0, w.err)
      assert.match(w.out, /withdrew 0\.\d+ from dataset 0/)
      assert.equal(await dataOwedTo(client, d, { modelRoot, datasetIndex: 0, contributor: who.account.address }), 0n)
    }

    // 5. lineage from the file, with both manifests: every checkable link holds
    const lin = await cli('model', 'lineage', modelFile, '--dataset-manifest', manifestFile, '--training-manifest', trainingManifest, ...conn)
    assert.equal(lin.code, 0, `${lin.out}\n${lin.err}`)
    const out = lin.out
    assert.match(out, new RegExp(`^model ${modelRoot}`, 'm'))
    assert.match(out, new RegExp(`dataset 0 ${manifest.root}, weight 100\\.00%`))
    assert.match(out, /training run\n {2}manifest hash/)
    assert.match(out, /3 jobs claimed in 1 batches/)
    assert.match(out, /ok\s+dataset 0 manifest .*is the registered one/)
    assert.match(out, /ok\s+training manifest .* is the record's manifest hash/)
    assert.match(out, /ok\s+the GGUF's tessera\.train\.run_root matches the record/)
    assert.match(out, /not checked that these weights are what the run produced/)
    assert.match(out, /ok\s+every claimed job credited its data share \(3 of 3 jobs/)
    assert.doesNotMatch(out, /FAILED/)

    // 6. a manifest that is not the registered one (another split of the same root) fails the link
    const forged = JSON.parse(readFileSync(manifestFile, 'utf8'))
    forged.contributors = [{ address: c6.account.address.toLowerCase(), shareBps: 10000 }]
    const forgedFile = join(dir, 'forged.json')
    writeFileSync(forgedFile, JSON.stringify(forged))
    const bad = await cli('model', 'lineage', modelRoot, '--dataset-manifest', forgedFile, ...conn)
    assert.equal(bad.code, 1, bad.out)
    assert.match(bad.out, /FAILED\s+dataset 0 manifest .* is NOT the registered one/)
    assert.match(bad.out, /not checked model root against the weights/)
    assert.ok(fromHex(manifest.root).length === 32)
  } finally {
    await srv.close()
    await net.close()
  }
})
