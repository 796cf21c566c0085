/**
 * The node's persistent state (docs/NETWORK.md "Store"): one LevelDB (`classic-level`) at
 * `DIR/store`, one sublevel per kind of record, JSON values. JSON has no bigints and no bytes, so
 * each typed view of a sublevel carries a schema naming where its bigints (stored as decimal
 * strings) and byte strings (stored as 0x-hex) are: decoding converts exactly those paths back,
 * never a string that merely looks like a number, and encoding refuses a bigint or a byte string
 * the schema does not name (the record would not come back as it went in).
 *
 * Keys are strings in LevelDB's byte order; `list(prefix)` walks them in that order, so numeric
 * keys that must sort numerically are written with `sortableKey`. `batch` commits puts and
 * deletes across sublevels atomically: a crash leaves all of them or none.
 *
 * LevelDB takes a lock on its folder; a second process (or a second open in this one) gets
 * `StoreLockedError` instead of a corrupted store.
 *
 * @example
 *   const store = await openStore(dir)
 *   const claims = store.sublevel<{ nonce: bigint }>('claims', { bigint: ['nonce'] })
 *   await claims.put('pending:0xab', { nonce: 7n })
 *   await store.batch([claims.delOp('pending:0xab'), store.sublevel('meta').putOp('last', 'x')])
 *   await store.close()
 */
import { mkdirSync, realpathSync } from 'node:fs'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import type { Address, Hex } from 'viem'
import { fromHex, toHex0x } from '../engine/bytes.js'
import { BaseError } from '../errors.js'
import type { JobBook } from './serveJob.js'
import type { Transcript } from './transcript.js'

/** The kinds of record a node keeps (docs/NETWORK.md "Store"). */
export const SUBLEVELS = ['jobs', 'transcripts', 'receipts', 'claims', 'audits', 'disputes', 'offers', 'meta'] as const
export type SublevelName = (typeof SUBLEVELS)[number]

/**
 * Where a record's bigints and byte strings are. A path names object keys separated by dots;
 * `[]` stands for every element of an array, `*` for every value of a record (object used as a map):
 * `'req.nonce'`, `'items[].req.pricePerToken'`, `'byNonce.*'`.
 */
export type Schema = { bigint?: readonly string[]; bytes?: readonly string[] }

/** Another process (or another open handle in this one) holds the store of `dir`. */
export class StoreLockedError extends BaseError {
  override name = 'StoreLockedError'
  readonly dir: string
  constructor(dir: string, cause?: unknown) {
    super(`another tessera node is using ${dir}`, { cause })
    this.dir = dir
  }
}

/** A record that does not fit its schema: a bigint or bytes at a path the schema does not name, or a stored value that is not JSON. */
export class StoreSchemaError extends BaseError {
  override name = 'StoreSchemaError'
  constructor(sublevel: string, key: string, details: string) {
    super(`record ${sublevel}/${key} does not fit its schema`, { details })
  }
}

/** A put or a delete on one sublevel, for `Store.batch`. */
export type BatchOp = { readonly type: 'put'; readonly sublevel: SublevelName; readonly key: string; readonly value: string } | { readonly type: 'del'; readonly sublevel: SublevelName; readonly key: string }

/** A typed view of one sublevel. */
export type Sublevel<T> = {
  readonly name: SublevelName
  get(key: string): Promise<T | undefined>
  put(key: string, value: T): Promise<void>
  del(key: string): Promise<void>
  /** Records whose key starts with `prefix` (all without), in key order; at most `limit`. */
  list(prefix?: string, opts?: { limit?: number }): Promise<{ key: string; value: T }[]>
  /** Every value, in key order, read lazily. */
  values(): AsyncIterable<T>
  /** The put as a batch operation (encoded now, so a bad record fails before anything is written). */
  putOp(key: string, value: T): BatchOp
  delOp(key: string): BatchOp
}

export type Store = {
  /** The node's data folder (the store itself is `dir/store`). */
  readonly dir: string
  sublevel<T = unknown>(name: SublevelName, schema?: Schema): Sublevel<T>
  /** Commits every operation or none. */
  batch(ops: readonly BatchOp[]): Promise<void>
  close(): Promise<void>
}

/** Opens (creating if needed) the store of a node's data folder `dir`. */
export async function openStore(dir: string): Promise<Store> {
  mkdirSync(dir, { recursive: true })
  const path = join(realpathSync(dir), 'store')
  // LevelDB refuses a second open in the same process, but its refusal closes a descriptor of the
  // LOCK file, which drops the process's fcntl lock: another process could then open the store
  // beside the first handle. So this process never asks LevelDB twice.
  if (openHere.has(path)) throw new StoreLockedError(dir)
  openHere.add(path)
  const db = new ClassicLevel<string, string>(path, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  try {
    await db.open()
  } catch (err) {
    openHere.delete(path)
    if ((err as { cause?: { code?: string } }).cause?.code === 'LEVEL_LOCKED') throw new StoreLockedError(dir, err)
    throw err
  }
  const subs = new Map(SUBLEVELS.map((n) => [n, db.sublevel<string, string>(n, { keyEncoding: 'utf8', valueEncoding: 'utf8' })]))
  const raw = (name: SublevelName) => {
    const s = subs.get(name)
    if (!s) throw new StoreSchemaError(String(name), '', `no sublevel named ${String(name)}`)
    return s
  }
  return {
    dir,
    sublevel<T>(name: SublevelName, schema: Schema = {}): Sublevel<T> {
      const s = raw(name)
      const codec = compileSchema(schema)
      const encode = (key: string, value: T) => {
        try {
          return codec.encode(value)
        } catch (err) {
          throw new StoreSchemaError(name, key, (err as Error).message)
        }
      }
      const decode = (key: string, text: string): T => {
        try {
          return codec.decode(text) as T
        } catch (err) {
          throw new StoreSchemaError(name, key, (err as Error).message)
        }
      }
      return {
        name,
        async get(key) {
          const v = await s.get(key)
          return v === undefined ? undefined : decode(key, v)
        },
        async put(key, value) {
          await s.put(key, encode(key, value))
        },
        del: (key) => s.del(key),
        async list(prefix = '', opts = {}) {
          const out: { key: string; value: T }[] = []
          // U+FFFF sorts after every character a key is made of (UTF-8 0xEF 0xBF 0xBF)
          const range = prefix ? { gte: prefix, lt: `${prefix}\uffff` } : {}
          for await (const [key, v] of s.iterator({ ...range, limit: opts.limit ?? -1 })) out.push({ key, value: decode(key, v) })
          return out
        },
        async *values() {
          for await (const [key, v] of s.iterator()) yield decode(key, v)
        },
        putOp: (key, value) => ({ type: 'put', sublevel: name, key, value: encode(key, value) }),
        delOp: (key) => ({ type: 'del', sublevel: name, key }),
      }
    },
    async batch(ops) {
      if (ops.length === 0) return
      await db.batch(ops.map((o) => (o.type === 'put' ? { type: 'put', sublevel: raw(o.sublevel), key: o.key, value: o.value } : { type: 'del', sublevel: raw(o.sublevel), key: o.key })))
    },
    async close() {
      if (db.status === 'closed') return
      await db.close()
      openHere.delete(path)
    },
  }
}

/**
 * The provider's JobBook (src/node/serveJob.ts) on a store: transcripts by request digest in
 * `transcripts`, and in `jobs` the index `nonce:<client>:<nonce>` -> request digest that the
 * replay check reads; both written in one batch.
 */
export function jobBookOf(store: Store): JobBook {
  const transcripts = store.sublevel<Transcript>('transcripts')
  const jobs = store.sublevel<Hex>('jobs')
  const nonceKey = (client: Address, nonce: bigint | string) => `nonce:${client.toLowerCase()}:${sortableKey(BigInt(nonce))}`
  return {
    async nonceSeen(client, nonce) {
      return (await jobs.get(nonceKey(client, nonce))) !== undefined
    },
    async putTranscript(t) {
      const digest = t.requestDigest.toLowerCase() as Hex
      await store.batch([transcripts.putOp(digest, t), jobs.putOp(nonceKey(t.client, t.request.nonce), digest)])
    },
    getTranscript: (digest) => transcripts.get(digest.toLowerCase()),
  }
}

/** Stores this process has open, by absolute path. */
const openHere = new Set<string>()

/**
 * A key whose byte order is the numeric order of `n` (non-negative, below 10^20): zero-padded
 * decimal. `sortableKey(12n)` = '00000000000000000012'.
 */
export function sortableKey(n: bigint | number): string {
  const s = BigInt(n).toString()
  if (n < 0 || s.length > 20) throw new RangeError(`sortableKey: ${s} out of range`)
  return s.padStart(20, '0')
}

type Segment = string // an object key, '[]' (array elements) or '*' (record values)

/** Splits 'items[].req.nonce' into ['items', '[]', 'req', 'nonce']. */
function parsePath(path: string): Segment[] {
  return path.split('.').flatMap((part) => {
    const m = /^([^[]*)((?:\[\])*)$/.exec(part)
    if (!m) throw new RangeError(`bad schema path ${path}`)
    const arrays = m[2].length / 2
    return [...(m[1] ? [m[1]] : []), ...Array<string>(arrays).fill('[]')]
  })
}

function compileSchema(schema: Schema) {
  const bigints = (schema.bigint ?? []).map(parsePath)
  const bytes = (schema.bytes ?? []).map(parsePath)
  const names = (paths: Segment[][]) => new Set(paths.map((p) => p.join('.')))
  const bigintAt = names(bigints)
  const bytesAt = names(bytes)

  // Encoding walks the whole value, so a bigint or bytes the schema does not name is caught here,
  // at write time, not as a silently different value at read time.
  const toJson = (v: unknown, at: Segment[]): unknown => {
    if (typeof v === 'bigint') {
      if (!bigintAt.has(at.join('.'))) throw new Error(`bigint at ${at.join('.') || '(root)'}, which the schema does not name`)
      return v.toString()
    }
    if (v instanceof Uint8Array) {
      if (!bytesAt.has(at.join('.'))) throw new Error(`bytes at ${at.join('.') || '(root)'}, which the schema does not name`)
      return toHex0x(v)
    }
    if (Array.isArray(v)) return v.map((x) => toJson(x, [...at, '[]']))
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {}
      for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = toJson(x, [...at, matchKey(at, k)])
      return out
    }
    return v
  }
  // A record's key matches a literal schema segment, else '*' (record values) when the schema uses it there.
  const prefixes = new Set([...bigints, ...bytes].flatMap((p) => p.map((_, i) => p.slice(0, i + 1).join('.'))))
  const matchKey = (at: Segment[], k: string): Segment => (prefixes.has([...at, k].join('.')) ? k : prefixes.has([...at, '*'].join('.')) ? '*' : k)

  const convert = (v: unknown, path: Segment[], i: number, leaf: (x: unknown) => unknown): unknown => {
    if (v === undefined || v === null) return v
    if (i === path.length) return leaf(v)
    const seg = path[i]
    if (seg === '[]') {
      if (!Array.isArray(v)) return v
      for (let j = 0; j < v.length; j++) v[j] = convert(v[j], path, i + 1, leaf)
      return v
    }
    if (typeof v !== 'object') return v
    const o = v as Record<string, unknown>
    for (const k of seg === '*' ? Object.keys(o) : [seg]) if (k in o) o[k] = convert(o[k], path, i + 1, leaf)
    return o
  }
  const toBigint = (x: unknown) => {
    if (typeof x !== 'string' || !/^-?[0-9]+$/.test(x)) throw new Error(`expected a decimal string, found ${JSON.stringify(x)}`)
    return BigInt(x)
  }
  const toBytes = (x: unknown) => {
    if (typeof x !== 'string' || !/^0x([0-9a-f]{2})*$/i.test(x)) throw new Error(`expected 0x-hex, found ${JSON.stringify(x)}`)
    return fromHex(x)
  }
  return {
    encode: (value: unknown) => JSON.stringify(toJson(value, [])),
    decode(text: string): unknown {
      let v: unknown = JSON.parse(text)
      for (const p of bigints) v = convert(v, p, 0, toBigint)
      for (const p of bytes) v = convert(v, p, 0, toBytes)
      return v
    },
  }
}
