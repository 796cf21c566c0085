// Formatting helpers of the explorer page: wei, addresses, hashes, times.
import { h } from 'preact'
import htm from 'htm'

export const html = htm.bind(h)

const WEI = 10n ** 18n

/** Wei (a decimal string) as coin with up to `digits` decimals. */
export function coin(wei, digits = 4) {
  if (wei === undefined || wei === null) return '–'
  const v = BigInt(wei)
  const neg = v < 0n
  const a = neg ? -v : v
  const whole = a / WEI
  const frac = (a % WEI).toString().padStart(18, '0').slice(0, digits).replace(/0+$/, '')
  return `${neg ? '-' : ''}${whole}${frac ? `.${frac}` : ''}`
}

/** Wei per token in gwei (prices are small). */
export const gwei = (wei) => (wei === undefined ? '–' : `${Number(BigInt(wei)) / 1e9} gwei`)

export const short = (hex, n = 6) => (hex ? `${hex.slice(0, n + 2)}…${hex.slice(-4)}` : '–')

export const time = (ms) => (ms ? new Date(ms).toLocaleTimeString() : '–')

export const pct = (x) => `${Math.round(x * 100)}%`

/** An address with its full value for screen readers and a tooltip. */
export const Addr = ({ a }) => html`<code title=${a} aria-label=${a}>${short(a)}</code>`
