// The explorer in a real browser: headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core) on an embedded chain with one honest provider's job and one cheated job, the
// cheater's game played in-process (src/dispute/attack.ts) and read by the explorer's indexer and
// server. The page loads without console errors, lists the provider, shows the jobs as they are
// claimed (no reload: the SSE stream), the cheater's dispute with its bisection drawn level by
// level, and the slash; keyboard focus is visible and the page fits a phone's width. Every wait is
// bounded (WAIT_MS each, test/support/browser.ts); screenshots of the main views go to
// TESSERA_SCREENSHOTS (default: a temporary folder, printed). The same checks on a real
// `tessera devnet` process are in test/network/devnet.test.ts (the slow one).
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { attackJob } from '../../src/dispute/attack.js'
import { createIndexer } from '../../src/node/explorer/indexer.js'
import { startExplorer } from '../../src/node/explorer/server.js'
import { launchChromium, noChromium, openPage, screenshotDir } from '../support/browser.js'
import { createDisputeDevnet } from '../support/disputeDevnet.js'
import { GREEDY, tinyDisputeModel } from '../support/disputeJobs.js'

const params = { ...GREEDY, repeatPenalty: 1, repeatLastN: 4, maxTokens: 3, stop: [] }

test('the explorer in Chromium: providers, live jobs, the cheater’s dispute and bisection, the slash', { skip: noChromium, timeout: 120_000 }, async (t) => {
  const shots = screenshotDir()
  const model = await tinyDisputeModel('tiny', 'q8_0', 3)
  const net = await createDisputeDevnet()
  const ex = await startExplorer({ indexer: createIndexer({ clients: net.deployer, deployment: net.d }), port: 0, pollMs: 200 })
  const browser = await launchChromium()
  try {
    const { page, problems } = await openPage(browser)

    await page.goto(ex.url, { waitUntil: 'load' })
    await page.getByRole('status').filter({ hasText: 'Live' }).waitFor()
    // the provider staked at the devnet's start
    const providers = page.getByRole('region', { name: 'Providers' })
    await providers.locator('tbody tr').first().waitFor()
    assert.equal(await providers.locator('tbody tr').count(), 1)
    assert.match((await providers.textContent()) ?? '', new RegExp(net.provider.account.address.slice(2, 8), 'i'))

    // jobs appear as they are claimed, without a reload
    let started = Date.now()
    await attackJob({ net, model, job: { prompt: [11, 250, 3], params, seed: 1n }, seed: 1, nonce: 0n })
    await page.locator('tr[data-job]').first().waitFor()
    t.diagnostic(`honest job shown ${Date.now() - started} ms after its request began`)
    await net.topUp()
    started = Date.now()
    const r = await attackJob({ net, model, job: { prompt: [11, 250, 3], params, seed: 2n }, cheat: 'micro', seed: 7, nonce: 1n })
    assert.equal(r.winner, 'challenger')
    const played = Date.now()
    await page.locator('li[data-game]').filter({ hasText: 'provider lost' }).waitFor()
    t.diagnostic(`cheater's lost game shown ${Date.now() - played} ms after the game ended (${played - started} ms to play it)`)
    await page.locator('tr[data-job]').nth(1).waitFor()
    assert.equal(await page.locator('tr[data-job]').count(), 2, 'both jobs listed')
    await page.locator('tr[data-job]', { hasText: 'lost' }).waitFor()
    await page.locator('.uplot').first().waitFor()
    await page.screenshot({ path: join(shots, 'overview.png'), fullPage: true })

    // the dispute: keyboard to its page, its bisection and the slash
    await page.locator('li[data-game] a').first().focus()
    await page.keyboard.press('Enter')
    await page.getByRole('heading', { name: /Dispute 0/ }).waitFor()
    await page.getByRole('heading', { name: 'Level 3: micro-step' }).waitFor()
    const levels = page.locator('li.level h4')
    assert.deepEqual(await levels.allTextContents(), ['Level 0: trace', 'Level 1: op', 'Level 2: element', 'Level 3: micro-step'])
    assert.ok((await page.locator('svg.cells rect.chosen').count()) >= 3, 'a chosen child drawn per round')
    const slash = page.locator('ul.slashes li')
    await slash.waitFor()
    assert.match((await slash.textContent()) ?? '', /slashed from .* to the challenger .* burned/)
    await page.screenshot({ path: join(shots, 'dispute.png'), fullPage: true })

    // the job page
    await page.getByRole('link', { name: /^job \d+ of batch \d+$/ }).click()
    await page.getByRole('heading', { name: 'Receipt' }).waitFor()
    assert.match((await page.locator('main').textContent()) ?? '', /lost \(slashed\)/)
    await page.screenshot({ path: join(shots, 'job.png'), fullPage: true })

    // keyboard: the first Tab reaches the skip link, with a visible focus outline
    await page.goto(ex.url)
    await page.getByRole('status').filter({ hasText: 'Live' }).waitFor()
    await page.keyboard.press('Tab')
    // (page code as strings: this file is type-checked without the DOM's types)
    const focused = await page.evaluate('({ text: document.activeElement.textContent, outline: getComputedStyle(document.activeElement).outlineStyle })')
    assert.deepEqual(focused, { text: 'Skip to content', outline: 'solid' })

    // a phone: nothing wider than the screen but the scrollable tables
    await page.setViewportSize({ width: 390, height: 844 })
    const overflow = (await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth')) as number
    assert.ok(overflow <= 0, `page overflows a phone's width by ${overflow}px`)
    await page.screenshot({ path: join(shots, 'phone.png'), fullPage: true })

    assert.deepEqual(problems, [], 'no console errors')
    t.diagnostic(`screenshots in ${shots}`)
  } finally {
    await browser.close()
    await ex.close()
    await net.close()
    model.close()
  }
})
