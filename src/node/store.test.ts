import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { jobBookOf, openStore, sortableKey, type Store } from './store.js'
import type { Transcript } from './transcript.js'

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-store-'))
  try {
    await fn(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

type Item = { req: { nonce: bigint; seed: bigint; provider: string }; amounts: bigint[]; blob?: Uint8Array; byClient: Record<string, bigint>; note: string }
const SCHEMA = { bigint: ['req.nonce', 'req.seed', 'amounts[]', 'byClient.*'], bytes: ['blob'] }
const item = (n: bigint): Item => ({
  req: { nonce: n, seed: 2n ** 64n - 1n, provider: '0xab' },
  amounts: [1n, 10n ** 30n],
  blob: new Uint8Array([0, 1, 255]),
  byClient: { '0x01': 5n, '0x02': 0n },
  // a string that looks like a number stays a string: the schema decides, not the value's look
  note: '12345',
})

test('records round-trip with their bigints, bytes and number-like strings as they were', async () => {
  await withDir(async (dir) => {
    const store = await openStore(dir)
    try {
      const claims = store.sublevel<Item>('claims', SCHEMA)
      await claims.put('a', item(7n))
      assert.deepEqual(await claims.get('a'), item(7n))
      assert.equal(await claims.get('missing'), undefined)
      // sublevels are separate key spaces
      assert.equal(await store.sublevel('jobs').get('a'), undefined)
      await claims.del('a')
      assert.equal(await claims.get('a'), undefined)
    } finally {
      await store.close()
    }
  })
})

test('a bigint or bytes at a path the schema does not name is refused at write time', async () => {
  await withDir(async (dir) => {
    const store = await openStore(dir)
    try {
      const loose = store.sublevel<unknown>('meta', { bigint: ['a'] })
      await assert.rejects(loose.put('k', { a: 1n, b: 2n }), { name: 'StoreSchemaError' })
      assert.throws(() => loose.putOp('k', { c: new Uint8Array(1) }), { name: 'StoreSchemaError' })
      assert.equal(await loose.get('k'), undefined)
      // a stored value that is not a decimal where the schema expects a bigint fails loudly on read
      await store.sublevel<unknown>('meta').put('k', { a: 'x1' })
      await assert.rejects(loose.get('k'), { name: 'StoreSchemaError' })
    } finally {
      await store.close()
    }
  })
})

test('data survives close and reopen', async () => {
  await withDir(async (dir) => {
    let store = await openStore(dir)
    await store.sublevel<Item>('transcripts', SCHEMA).put('0x01', item(1n))
    await store.close()
    store = await openStore(dir)
    try {
      assert.deepEqual(await store.sublevel<Item>('transcripts', SCHEMA).get('0x01'), item(1n))
    } finally {
      await store.close()
    }
  })
})

test('a second open of the same folder, in this process or another, gets StoreLockedError naming it', async () => {
  await withDir(async (dir) => {
    const store = await openStore(dir)
    try {
      await assert.rejects(openStore(dir), (err: Error & { dir?: string }) => {
        assert.equal(err.name, 'StoreLockedError')
        assert.equal(err.dir, dir)
        assert.ok(err.message.includes(dir))
        return true
      })
      const child = `import('${join(import.meta.dirname, 'store.ts')}').then(m => m.openStore(${JSON.stringify(dir)})).then(() => console.log('opened'), e => console.log(e.name))`
      const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', child], { encoding: 'utf8', timeout: 20_000 })
      assert.equal(out.trim(), 'StoreLockedError')
    } finally {
      await store.close()
    }
    // once closed, the folder opens again
    const again = await openStore(dir)
    await again.close()
  })
})

test('batch commits across sublevels all or nothing', async () => {
  await withDir(async (dir) => {
    const store = await openStore(dir)
    try {
      const claims = store.sublevel<Item>('claims', SCHEMA)
      const meta = store.sublevel<{ n: bigint }>('meta', { bigint: ['n'] })
      await claims.put('pending:1', item(1n))
      await store.batch([claims.delOp('pending:1'), claims.putOp('intent:1', item(1n)), meta.putOp('count', { n: 1n })])
      assert.equal(await claims.get('pending:1'), undefined)
      assert.deepEqual(await claims.get('intent:1'), item(1n))
      assert.deepEqual(await meta.get('count'), { n: 1n })
      // a batch with a bad record (here one the store refuses: a value of undefined) writes nothing
      const bad = { type: 'put', sublevel: 'claims', key: 'x', value: undefined as unknown as string } as const
      await assert.rejects(store.batch([meta.putOp('count', { n: 2n }), claims.delOp('intent:1'), bad]))
      assert.deepEqual(await meta.get('count'), { n: 1n })
      assert.deepEqual(await claims.get('intent:1'), item(1n))
    } finally {
      await store.close()
    }
  })
})

test('list walks keys in byte order, by prefix, with a limit; sortableKey keeps numeric order', async () => {
  await withDir(async (dir) => {
    const store: Store = await openStore(dir)
    try {
      const audits = store.sublevel<{ i: number }>('audits')
      for (const i of [10, 9, 100, 1]) await audits.put(`batch:${sortableKey(i)}`, { i })
      await audits.put('b', { i: -1 })
      await audits.put('batch', { i: -2 })
      const listed = await audits.list('batch:')
      assert.deepEqual(listed.map((r) => r.value.i), [1, 9, 10, 100])
      assert.deepEqual((await audits.list('batch:', { limit: 2 })).map((r) => r.value.i), [1, 9])
      assert.deepEqual((await audits.list()).map((r) => r.key), ['b', 'batch', ...listed.map((r) => r.key)])
      assert.equal(sortableKey(12n), '00000000000000000012')
      assert.throws(() => sortableKey(-1))
    } finally {
      await store.close()
    }
  })
})

test('values() reads every record in key order', async () => {
  await withDir(async (dir) => {
    const store = await openStore(dir)
    try {
      const offers = store.sublevel<{ seq: bigint }>('offers', { bigint: ['seq'] })
      for (const k of ['c', 'a', 'b']) await offers.put(k, { seq: BigInt(k.charCodeAt(0)) })
      const seen: bigint[] = []
      for await (const v of offers.values()) seen.push(v.seq)
      assert.deepEqual(seen, [97n, 98n, 99n])
    } finally {
      await store.close()
    }
  })
})

test('jobBookOf: transcripts by digest (any case), and the replay check of (client, nonce) survives a restart', async () => {
  await withDir(async (dir) => {
    const client = '0x00000000000000000000000000000000000000Cc' as const
    const digest = `0x${'Ab'.repeat(32)}` as const
    const t = {
      v: 1, chainId: 31337, settlement: client, client, requestDigest: digest, request: { nonce: '18446744073709551615' },
      prompt: [1, 2], output: [3], ack: { nOutput: 1, outputRoot: digest, r: digest, vs: digest },
    } as unknown as Transcript
    let store = await openStore(dir)
    let book = jobBookOf(store)
    assert.equal(await book.nonceSeen(client, 2n ** 64n - 1n), false)
    await book.putTranscript(t)
    await store.close()
    store = await openStore(dir)
    try {
      book = jobBookOf(store)
      assert.equal(await book.nonceSeen(client, 2n ** 64n - 1n), true)
      assert.equal(await book.nonceSeen(client.toLowerCase() as typeof client, 2n ** 64n - 1n), true)
      // another nonce of the same client, or the same nonce of another client, is unseen
      assert.equal(await book.nonceSeen(client, 2n ** 64n - 2n), false)
      assert.equal(await book.nonceSeen('0x00000000000000000000000000000000000000cd', 2n ** 64n - 1n), false)
      assert.deepEqual(await book.getTranscript(digest.toLowerCase() as typeof digest), t)
      assert.deepEqual(await book.getTranscript(digest), t)
      assert.equal(await book.getTranscript(`0x${'00'.repeat(32)}`), undefined)
    } finally {
      await store.close()
    }
  })
})
