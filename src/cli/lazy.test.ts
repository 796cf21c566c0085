import assert from 'node:assert/strict'
import { test } from 'node:test'
import { load } from './lazy.js'

test('load: the modules once they are loaded; Ctrl-C while they load rejects at once with the reason', async () => {
  const c = new AbortController()
  assert.deepEqual(await load(c.signal, Promise.resolve({ a: 1 })), { a: 1 })
  // A module that never finishes loading (a busy machine, in the extreme): the abort still ends the wait.
  const pending = load(c.signal, new Promise<never>(() => {}))
  const reason = new Error('interrupted')
  c.abort(reason)
  await assert.rejects(pending, (e) => e === reason)
  await assert.rejects(load(c.signal, Promise.resolve(1)), (e) => e === reason, 'already aborted: not even started')
  const failing = new AbortController()
  await assert.rejects(load(failing.signal, Promise.reject(new Error('no such module'))), /no such module/)
})
