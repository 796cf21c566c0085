/**
 * The gateway role's flags: refused without the role, checked with it (port, keys, rate limit,
 * templates by model name), keys read from a file.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { parseArgs } from '../args.js'
import { GATEWAY_FLAGS, gatewayConfigOf, parseRateLimit } from './gatewayRole.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-gwrole-'))
after(() => rmSync(dir, { recursive: true, force: true }))
const flags = { ...GATEWAY_FLAGS, model: { type: 'string' as const, description: '', multiple: true } }
const parse = (...argv: string[]) => parseArgs(argv, flags)

describe('gateway role flags', () => {
  test('refused without the gateway role; a gateway needs --model', () => {
    assert.equal(gatewayConfigOf(parse('--model', 'm.gguf'), false), undefined)
    assert.throws(() => gatewayConfigOf(parse('--api-key', 'sk-12345678'), false), /--api-key is for a gateway/)
    assert.throws(() => gatewayConfigOf(parse('--rate-limit', '5/min'), false), /--rate-limit is for a gateway/)
    assert.throws(() => gatewayConfigOf(parse(), true), /needs --model/)
  })

  test('keys from flags and a file, a rate, templates', () => {
    writeFileSync(join(dir, 'keys'), '# keys\nsk-file-key-1\n\nsk-file-key-2  # second\n')
    writeFileSync(join(dir, 'tpl.jinja'), '{{ messages[0].content }}')
    const c = gatewayConfigOf(
      parse(
        '--model',
        'm.gguf',
        '--api-key',
        'sk-flag-key-0',
        '--api-key-file',
        join(dir, 'keys'),
        '--rate-limit',
        '2/s',
        '--chat-template',
        join(dir, 'tpl.jinja'),
        '--chat-template',
        `tiny=${join(dir, 'tpl.jinja')}`,
        '--gateway-port',
        '0',
      ),
      true,
    )!
    assert.deepEqual(c.apiKeys, ['sk-flag-key-0', 'sk-file-key-1', 'sk-file-key-2'])
    assert.equal(c.ratePerMinute, 120)
    assert.equal(c.port, 0)
    assert.equal(c.host, '127.0.0.1')
    assert.deepEqual([...c.templates.keys()], ['*', 'tiny'])
  })

  test('bad values are refused', () => {
    assert.throws(() => gatewayConfigOf(parse('--model', 'm', '--api-key', 'short'), true), /api-key/)
    assert.throws(() => gatewayConfigOf(parse('--model', 'm', '--gateway-port', '70000'), true), /gateway-port/)
    assert.throws(() => gatewayConfigOf(parse('--model', 'm', '--chat-template', join(dir, 'missing')), true), /missing/)
    for (const bad of ['0', '-3/min', 'ten', '5/hour']) assert.throws(() => parseRateLimit(bad), /rate-limit/, bad)
    assert.equal(parseRateLimit('60'), 60)
    assert.equal(parseRateLimit('30/min'), 30)
  })
})
