/**
 * The explorer's browser tests' shared setup: headless Chromium (Debian's /usr/bin/chromium, or
 * CHROMIUM_PATH) driven by playwright-core, the skip message when it is absent, the page's problems
 * (console errors, page errors, failed requests) collected, and the screenshot folder
 * (TESSERA_SCREENSHOTS, default a fresh temporary folder).
 */
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Browser, chromium, type Page } from 'playwright-core'

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync']
/** The bound on each step the page must show (a job row, the dispute, the slash) after the chain has it. */
export const WAIT_MS = 15_000

/** `false` when Chromium is there, else the reason node:test prints for the skip. */
export const noChromium: false | string = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`

export const launchChromium = (): Promise<Browser> => chromium.launch({ executablePath: CHROMIUM, args: FLAGS, timeout: 30_000 })

/** The folder screenshots go to, created. */
export function screenshotDir(prefix = 'tessera-explorer-'): string {
  const dir = process.env.TESSERA_SCREENSHOTS ?? mkdtempSync(join(tmpdir(), prefix))
  mkdirSync(dir, { recursive: true })
  return dir
}

/** A page with WAIT_MS as its default timeout and the list its console errors, page errors and failed requests (but the event stream's, cut when the page closes) are pushed to. */
export async function openPage(browser: Browser, viewport = { width: 1280, height: 900 }): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport })
  page.setDefaultTimeout(WAIT_MS)
  const problems: string[] = []
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`))
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
  page.on('requestfailed', (r) => !r.url().endsWith('/explorer/events') && problems.push(`request failed: ${r.url()}`))
  return { page, problems }
}
