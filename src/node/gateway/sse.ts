/**
 * Server-sent events exactly as OpenAI's streaming endpoints send them: a 200 with
 * `content-type: text/event-stream`, then one `data: {json}\n\n` event per chunk (no `event:` or
 * `id:` lines) and a last `data: [DONE]\n\n`. An error after the stream began is one
 * `data: {"error": {...}}\n\n` event, which OpenAI's clients raise as an APIError; no `[DONE]`
 * follows it.
 */
import type { ServerResponse } from 'node:http'

export type SseStream = {
  /** Sends one JSON event; false once the client is gone. */
  send(data: unknown): boolean
  /** Sends `data: [DONE]` and ends the response. */
  done(): void
  /** Sends an error event and ends the response. */
  fail(error: unknown): void
}

/** Starts an event stream on `res` with `headers` added (the status line and headers go out at once). */
export function startSse(res: ServerResponse, headers: Record<string, string> = {}): SseStream {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', ...headers })
  res.flushHeaders()
  const live = () => !res.writableEnded && !res.destroyed
  const write = (s: string) => live() && (res.write(s), true)
  return {
    send: (data) => write(`data: ${JSON.stringify(data)}\n\n`),
    done: () => {
      if (write('data: [DONE]\n\n')) res.end()
    },
    fail: (error) => {
      if (write(`data: ${JSON.stringify(error)}\n\n`)) res.end()
    },
  }
}
