import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it, mock } from 'node:test'
import { encodeGguf } from '../../engine/gguf/write.js'
import { synthModel } from '../../engine/model/synth.js'
import { writeGgufFile } from '../../runtime/ggufFile.js'
import { parseArgs } from '../args.js'
import { attackCommands } from './attack.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-attack-'))
after(() => rmSync(dir, { recursive: true, force: true }))
const model = join(dir, 'tiny.gguf')
writeGgufFile(model, encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 3 })))

async function attack(argv: string[]): Promise<{ code: number; out: string }> {
  const c = attackCommands[0]
  const lines: string[] = []
  const log = mock.method(console, 'log', (...args: unknown[]) => void lines.push(args.join(' ')))
  const err = mock.method(console, 'error', () => undefined)
  try {
    const code = await c.run(parseArgs(argv, c.flags), new AbortController().signal)
    return { code, out: lines.join('\n') }
  } finally {
    log.mock.restore()
    err.mock.restore()
  }
}

describe('tessera attack', () => {
  it('refuses what it cannot play, by name', async () => {
    await assert.rejects(attack(['--cheat', 'att']), { name: 'UsageError' })
    await assert.rejects(attack(['--model', model]), { name: 'UsageError' })
    await assert.rejects(attack(['--model', model, '--cheat', 'bogus']), { name: 'InvalidParameterError' })
    await assert.rejects(attack(['--model', model, '--cheat', 'att', '--lying-challenger']), { name: 'UsageError' })
    await assert.rejects(attack(['--model', join(dir, 'none.gguf'), '--cheat', 'att']), { name: 'FileNotFoundError' })
  })

  it('an attention cheater loses and the auditor is paid (exit 0, --json)', async () => {
    const r = await attack(['--model', model, '--cheat', 'att', '--seed', '2', '--json'])
    assert.equal(r.code, 0)
    const j = JSON.parse(r.out)
    assert.equal(j.winner, 'challenger')
    assert.equal(j.cheat.opName, 'ATT')
    assert.deepEqual([j.game.at.traceLeaf, j.game.at.op, j.game.at.elem], [j.cheat.leaf, j.cheat.op, j.cheat.elem])
    assert.equal(j.conserved, true)
  })

  it('a lying challenger loses to the honest provider (exit 0, the text report)', async () => {
    const r = await attack(['--model', model, '--lying-challenger', '--seed', '3'])
    assert.equal(r.code, 0)
    assert.match(r.out, /provider won: the machine executed the disputed step/)
    assert.match(r.out, /the honest side won/)
  })
})
