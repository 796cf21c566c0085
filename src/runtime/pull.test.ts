/**
 * `pullModel` against a local HTTP server on 127.0.0.1 serving a synthesized GGUF: a download
 * through a redirect, a transfer cut off mid-way then resumed with a Range request, a server
 * without Range support (the download restarts), an abort that keeps the .part, a 404 and a file
 * that is not GGUF (one-line errors, nothing left behind), and the CLI printing the model root.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { cli } from '../../test/support/cli.js'
import { computeGgufModelRoot } from '../engine/gguf/modelRoot.js'
import { bufferSource, readGguf } from '../engine/gguf/read.js'
import { encodeGguf } from '../engine/gguf/write.js'
import { modelConfigFromGguf } from '../engine/model/config.js'
import { synthModel } from '../engine/model/synth.js'
import { toHex } from '../trace/merkle.js'
import { PullError, pullModel } from './pull.js'

let dir: string
let model: Buffer
let root: string
let server: Server
let base: string
/** What the server does with the next request to /cut: send this many bytes, then drop the connection. */
let cutAt = 0
/** Each request's path and Range header. */
const seen: { path: string; range?: string; auth?: string }[] = []

function serve(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0]
  seen.push({ path, range: req.headers.range, auth: req.headers.authorization })
  if (path === '/resolve/main/model.gguf') {
    res.writeHead(302, { location: '/cdn/model.gguf?token=secret' })
    return void res.end()
  }
  if (path === '/missing.gguf') {
    res.writeHead(404)
    return void res.end('not found')
  }
  if (path === '/notgguf.gguf') {
    const junk = Buffer.alloc(4096, 7)
    res.writeHead(200, { 'content-length': String(junk.length) })
    return void res.end(junk)
  }
  const ranges = path !== '/norange/model.gguf'
  const m = ranges ? /^bytes=(\d+)-$/.exec(req.headers.range ?? '') : null
  const start = m ? Number(m[1]) : 0
  if (start >= model.length) {
    res.writeHead(416, { 'content-range': `bytes */${model.length}` })
    return void res.end()
  }
  const body = model.subarray(start)
  res.writeHead(m ? 206 : 200, {
    'content-length': String(body.length), ...(ranges ? { 'accept-ranges': 'bytes' } : {}), ...(m ? { 'content-range': `bytes ${start}-${model.length - 1}/${model.length}` } : {}),
  })
  if (path === '/cut/model.gguf' && cutAt > 0) {
    res.write(body.subarray(0, cutAt), () => setTimeout(() => res.socket?.destroy(), 20))
    cutAt = 0
    return
  }
  if (path === '/slow/model.gguf') {
    res.write(body.subarray(0, 50_000)) // then nothing: the client aborts
    return
  }
  res.end(body)
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-pull-'))
  model = Buffer.concat([...encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 5 }))].map((c) => Buffer.from(c)))
  const gguf = readGguf(bufferSource(model))
  root = `0x${toHex(computeGgufModelRoot(bufferSource(model), gguf, modelConfigFromGguf(gguf.metadata, gguf.tensors)).modelRoot)}`
  server = createServer(serve)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
after(async () => {
  server.closeAllConnections()
  await new Promise((r) => server.close(r))
  rmSync(dir, { recursive: true, force: true })
})

const same = (path: string) => readFileSync(path).equals(model)

describe('model pull', () => {
  test('follows a redirect (a Hugging Face resolve URL), checks the GGUF and gives its model root', async () => {
    const out = join(dir, 'a.gguf')
    let calls = 0
    const r = await pullModel({ url: `${base}/resolve/main/model.gguf`, out, onProgress: () => calls++ })
    assert.ok(same(out))
    assert.equal(r.modelRoot, root)
    assert.equal(r.bytes, model.length)
    assert.equal(r.resumedFrom, 0)
    assert.ok(calls >= 2, 'progress reported')
    assert.ok(!existsSync(`${out}.part`))
  })

  test('a transfer cut off mid-way keeps FILE.part; the next pull resumes it with a Range request', async () => {
    const out = join(dir, 'b.gguf')
    cutAt = Math.floor(model.length / 3)
    await assert.rejects(pullModel({ url: `${base}/cut/model.gguf`, out }), (e) => e instanceof PullError && /broke off|ended at/.test(e.message) && /resume/.test(e.message))
    const have = statSync(`${out}.part`).size
    assert.ok(have > 0 && have < model.length, `partial: ${have}`)
    assert.ok(!existsSync(out))
    seen.length = 0
    const r = await pullModel({ url: `${base}/cut/model.gguf`, out })
    assert.equal(seen[0].range, `bytes=${have}-`, 'asked for the rest only')
    assert.equal(r.resumedFrom, have)
    assert.ok(same(out), 'the resumed file is byte-identical')
    assert.equal(r.modelRoot, root)
  })

  test('a server without Range support: the download restarts from byte 0 and the file is right', async () => {
    const out = join(dir, 'c.gguf')
    writeFileSync(`${out}.part`, Buffer.alloc(1000, 0xee)) // wrong bytes: they must not stay
    const r = await pullModel({ url: `${base}/norange/model.gguf`, out })
    assert.equal(r.resumedFrom, 0)
    assert.ok(same(out))
  })

  test('a complete .part (416 to the range) is checked and renamed', async () => {
    const out = join(dir, 'd.gguf')
    writeFileSync(`${out}.part`, model)
    const r = await pullModel({ url: `${base}/plain/model.gguf`, out })
    assert.equal(r.modelRoot, root)
    assert.ok(same(out))
  })

  test('an abort (Ctrl-C) leaves the .part to resume from', async () => {
    const out = join(dir, 'e.gguf')
    const ctl = new AbortController()
    const p = pullModel({ url: `${base}/slow/model.gguf`, out, signal: ctl.signal, onProgress: (x) => x.received >= 50_000 && ctl.abort(new Error('interrupted')) })
    await assert.rejects(p, /interrupted/)
    assert.equal(statSync(`${out}.part`).size, 50_000)
    const r = await pullModel({ url: `${base}/plain/model.gguf`, out })
    assert.equal(r.resumedFrom, 50_000)
    assert.ok(same(out))
  })

  test('404 and a file that is not GGUF: one-line errors, nothing left behind, no token from the URL shown', async () => {
    const out = join(dir, 'f.gguf')
    await assert.rejects(pullModel({ url: `${base}/missing.gguf?token=secret`, out }), (e) => e instanceof PullError && /HTTP 404 \(not found\)/.test(e.message) && !/secret/.test(e.message) && !e.message.includes('\n'))
    assert.ok(!existsSync(out))
    await assert.rejects(pullModel({ url: `${base}/notgguf.gguf`, out }), (e) => e instanceof PullError && /not a GGUF/.test(e.message))
    assert.ok(!existsSync(out) && !existsSync(`${out}.part`))
  })

  test('a token goes to the URL\'s host, not to the host a redirect leads to', async () => {
    const other = createServer((req, res) => {
      seen.push({ path: `other${req.url}`, auth: req.headers.authorization })
      res.writeHead(302, { location: `${base}/plain/model.gguf` })
      res.end()
    })
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r))
    try {
      seen.length = 0
      const out = join(dir, 't.gguf')
      await pullModel({ url: `http://127.0.0.1:${(other.address() as AddressInfo).port}/resolve/x.gguf`, out, token: 'hf_secret' })
      assert.ok(same(out))
      assert.deepEqual(seen.map((x) => x.auth), ['Bearer hf_secret', undefined])
    } finally {
      other.closeAllConnections()
      await new Promise((r) => other.close(r))
    }
  })

  test('tessera model pull prints the model root; a 404 is one line', async () => {
    const out = join(dir, 'g.gguf')
    const r = await cli('model', 'pull', `${base}/resolve/main/model.gguf`, '--out', out)
    assert.equal(r.code, 0, r.err)
    assert.match(r.out, new RegExp(`model root ${root}`))
    assert.match(r.err, /100%/, 'plain progress lines off a terminal')
    const bad = await cli('model', 'pull', `${base}/missing.gguf`, '--out', join(dir, 'h.gguf'))
    assert.equal(bad.code, 1)
    assert.equal(bad.err.trim().split('\n').length, 1, bad.err)
    assert.match(bad.err, /^tessera: .*HTTP 404/)
  })
})
