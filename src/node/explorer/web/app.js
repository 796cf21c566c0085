// The explorer page: a hash router over the views (network, jobs, a job, disputes, a dispute,
// economics), live through one EventSource (api.js), rendered with preact + htm (no build step).
import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { connect } from './api.js'
import { Disputes, GamePage } from './disputes.js'
import { Economics } from './economics.js'
import { html } from './format.js'
import { JobPage, Jobs } from './jobs.js'
import { Network } from './network.js'

const NAV = [
  ['#/', 'Overview'],
  ['#/network', 'Network'],
  ['#/jobs', 'Jobs'],
  ['#/disputes', 'Disputes'],
  ['#/economics', 'Economics'],
]

function route(hash) {
  const h = hash || '#/'
  let m = /^#\/jobs\/([\w-]+)$/.exec(h)
  if (m) return { nav: '#/jobs', view: html`<${JobPage} id=${m[1]} key=${m[1]} />` }
  m = /^#\/disputes\/(\d+)$/.exec(h)
  if (m) return { nav: '#/disputes', view: html`<${GamePage} id=${m[1]} key=${m[1]} />` }
  if (h === '#/network') return { nav: h, view: html`<${Network} />` }
  if (h === '#/jobs') return { nav: h, view: html`<${Jobs} limit=${500} />` }
  if (h === '#/disputes') return { nav: h, view: html`<${Disputes} />` }
  if (h === '#/economics') return { nav: h, view: html`<${Economics} />` }
  return { nav: '#/', view: html`<${Network} /><${Jobs} limit=${20} /><${Disputes} /><${Economics} />` }
}

function App() {
  const [hash, setHash] = useState(location.hash)
  const [live, setLive] = useState(false)
  useEffect(() => {
    const on = () => {
      setHash(location.hash)
      document.getElementById('main')?.focus()
    }
    addEventListener('hashchange', on)
    connect(setLive)
    return () => removeEventListener('hashchange', on)
  }, [])
  const r = route(hash)
  return html`
    <header class="top">
      <h1><a href="#/">Tessera explorer</a></h1>
      <nav aria-label="Sections"><ul>${NAV.map(([href, label]) => html`<li><a href=${href} aria-current=${r.nav === href ? 'page' : undefined}>${label}</a></li>`)}</ul></nav>
      <p class=${`live ${live ? 'on' : 'off'}`} role="status">${live ? 'Live' : 'Connecting…'}</p>
    </header>
    <main id="main" tabindex="-1">${r.view}</main>
    <footer><p>Read from the chain and this node. Data as JSON under <a href="/explorer/api/network">/explorer/api/</a>.</p></footer>`
}

const root = document.getElementById('app')
root.textContent = '' // the static 'Loading' line
render(html`<${App} />`, root)
