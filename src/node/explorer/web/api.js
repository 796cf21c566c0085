// The explorer's data: JSON from /explorer/api and the live stream of changes (/explorer/events).
import { useEffect, useState } from 'preact/hooks'

export async function getJson(path) {
  const r = await fetch(`/explorer/api/${path}`)
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`)
  return r.json()
}

const listeners = new Set()
let source
let live = false

/** Opens the event stream once; every change re-reads what the views show. */
export function connect(onLive) {
  if (source) return
  source = new EventSource('/explorer/events')
  source.addEventListener('hello', () => {
    live = true
    onLive(true)
    for (const fn of listeners) fn({})
  })
  source.addEventListener('change', (e) => {
    const c = JSON.parse(e.data)
    for (const fn of listeners) fn(c)
  })
  source.onerror = () => {
    live = false
    onLive(false)
  }
}

export const isLive = () => live

/** `path`'s JSON, read again on every change (or only on those `relevant` accepts). */
export function useLive(path, relevant = () => true) {
  const [state, setState] = useState({ data: undefined, error: undefined })
  useEffect(() => {
    let stop = false
    const load = () =>
      getJson(path).then(
        (data) => !stop && setState({ data, error: undefined }),
        (error) => !stop && setState((s) => ({ data: s.data, error: String(error.message ?? error) })),
      )
    load()
    const fn = (c) => relevant(c) && load()
    listeners.add(fn)
    return () => {
      stop = true
      listeners.delete(fn)
    }
  }, [path])
  return state
}
