// Economics over time: cumulative jobs, tokens, fees, stake and slashes, one small uPlot chart each.
import { useEffect, useRef } from 'preact/hooks'
import uPlot from 'uplot'
import { useLive } from './api.js'
import { coin, html } from './format.js'

const SERIES = [
  { key: 'jobs', label: 'Jobs', f: Number },
  { key: 'tokens', label: 'Tokens', f: Number },
  { key: 'fees', label: 'Fees (gwei)', f: (v) => Number(BigInt(v) / 10n ** 9n) },
  { key: 'stake', label: 'Provider stake (coin)', f: (v) => Number(coin(v, 4)) },
  { key: 'slashed', label: 'Slashed (coin)', f: (v) => Number(coin(v, 4)) },
]

function Chart({ points, s }) {
  const el = useRef(null)
  useEffect(() => {
    if (!el.current) return
    const xs = points.map((p) => p.time / 1000)
    const ys = points.map((p) => s.f(p[s.key]))
    const fit = () => Math.max(160, Math.min(480, el.current.parentElement.clientWidth - 16 || 320)) // less the figure's padding
    const plot = new uPlot({ width: fit(), height: 140, legend: { show: false }, series: [{}, { label: s.label, stroke: '#0b5cad', width: 2, fill: 'rgba(11,92,173,0.08)' }], axes: [{}, { size: 60 }] }, [xs, ys], el.current)
    const onResize = () => plot.setSize({ width: fit(), height: 140 })
    addEventListener('resize', onResize)
    return () => {
      removeEventListener('resize', onResize)
      plot.destroy()
    }
  }, [points, s])
  const last = points.at(-1)
  return html`<figure class="chart">
    <figcaption><strong>${s.label}</strong>: ${last ? s.f(last[s.key]) : 0}</figcaption>
    <div ref=${el} role="img" aria-label=${`${s.label} over time, now ${last ? s.f(last[s.key]) : 0}`}></div>
  </figure>`
}

export function Economics() {
  const { data, error } = useLive('economics', (c) => c.economics !== false)
  return html`<section aria-labelledby="eco-h">
    <h2 id="eco-h">Economics</h2>
    ${!data ? html`<p>${error ?? 'Loading…'}</p>` : data.points.length === 0 ? html`<p>No activity yet.</p>` : html`<div class="charts">${SERIES.map((s) => html`<${Chart} points=${data.points} s=${s} />`)}</div>`}
  </section>`
}
