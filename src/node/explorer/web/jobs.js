// The jobs list (live as jobs are reserved, claimed and settled) and one job's page.
import { useLive } from './api.js'
import { Addr, coin, gwei, html, short, time } from './format.js'

const STATE_LABEL = { streaming: 'streaming', claimed: 'claimed', settled: 'settled', disputed: 'disputed', lost: 'lost (slashed)' }
export const State = ({ s }) => html`<span class=${`badge ${s}`}>${STATE_LABEL[s] ?? s}</span>`

export function Jobs({ limit = 50 }) {
  const { data, error } = useLive('jobs', (c) => !c.jobs || c.jobs.length > 0)
  const jobs = data?.jobs.slice(0, limit)
  return html`<section aria-labelledby="jobs-h">
    <h2 id="jobs-h">Jobs ${data ? html`<span class="count">${data.jobs.length}</span>` : ''}</h2>
    ${!data ? html`<p>${error ?? 'Loading…'}</p>` : jobs.length === 0 ? html`<p>No job yet: jobs appear here as clients reserve them.</p>` : html`
    <div class="table-wrap" tabindex="0" role="region" aria-label="Jobs">
      <table class="jobs" aria-live="polite">
        <thead><tr><th scope="col">Job</th><th scope="col">State</th><th scope="col">Provider</th><th scope="col">Model</th><th scope="col">Tokens</th><th scope="col">Price</th><th scope="col">Amount</th><th scope="col">Time</th></tr></thead>
        <tbody>${jobs.map(
          (j) => html`<tr data-job=${j.id}>
            <th scope="row">${j.batchId === '-1' ? html`<span>${j.id}</span>` : html`<a href=${`#/jobs/${j.id}`}>batch ${j.batchId} · job ${j.index}</a>`}</th>
            <td><${State} s=${j.state} /></td>
            <td><${Addr} a=${j.provider} /></td>
            <td>${j.modelRoot ? html`<code title=${j.modelRoot}>${short(j.modelRoot)}</code>` : '–'}</td>
            <td>${j.nPrompt !== undefined ? `${j.nPrompt} + ${j.nOutput}` : '–'}</td>
            <td>${gwei(j.pricePerToken)}</td>
            <td>${coin(j.amount, 8)}</td>
            <td>${time(j.time)}</td>
          </tr>`,
        )}</tbody>
      </table>
    </div>`}
  </section>`
}

const Row = ({ k, children }) => html`<div class="kv"><dt>${k}</dt><dd>${children}</dd></div>`

export function JobPage({ id }) {
  const { data, error } = useLive(`jobs/${id}`, (c) => !c.jobs || c.jobs.includes(id) || c.games?.length > 0)
  if (!data) return html`<section><h2>Job ${id}</h2><p>${error ?? 'Loading…'}</p></section>`
  const r = data.receipt
  const v = data.verification
  return html`<section aria-labelledby="job-h">
    <p><a href="#/">← All jobs</a></p>
    <h2 id="job-h">Job ${data.index} of batch ${data.batchId} <${State} s=${data.state} /></h2>
    <dl class="grid">
      <${Row} k="Provider"><${Addr} a=${data.provider} /><//>
      <${Row} k="Client"><${Addr} a=${data.client} /><//>
      <${Row} k="Model"><code>${data.modelRoot ?? '–'}</code><//>
      <${Row} k="Tokens">${data.nPrompt} prompt + ${data.nOutput} output<//>
      <${Row} k="Price">${gwei(data.pricePerToken)} per token, ${coin(data.amount, 8)} billed<//>
      <${Row} k="Request digest"><code>${data.requestDigest ?? '–'}</code><//>
      <${Row} k="Claimed in"><code>${data.tx}</code> (block ${data.block}, ${time(data.time)})<//>
    </dl>
    <h3>Receipt</h3>
    ${r ? html`<dl class="grid">
      <${Row} k="Trace root"><code>${r.traceRoot}</code><//>
      <${Row} k="Output root"><code>${r.outputRoot}</code><//>
      <${Row} k="Prompt root"><code>${r.promptRoot}</code><//>
      <${Row} k="Params hash"><code>${r.paramsHash}</code><//>
      <${Row} k="Seed, nonce">${r.seed}, ${r.nonce}<//>
      <${Row} k="Layers">${r.nLayer}<//>
      <${Row} k="Batch leaf"><code>${r.leaf}</code><//>
    </dl>` : html`<p>Not claimed yet.</p>`}
    <h3>Verification</h3>
    <p class=${v.checked ? (v.ok ? 'good' : 'bad') : ''}>${v.checked ? (v.ok ? 'The transcript this node holds verifies: request, receipt and acknowledgement signatures match.' : `The transcript does not verify: ${v.problems.map((p) => p.message).join('; ')}`) : `Not checked: ${v.why}.`}</p>
    <h3>Audits</h3>
    ${data.audits.length === 0 ? html`<p>No auditor drawn for this job.</p>` : html`<ul>${data.audits.map((a) => html`<li><${Addr} a=${a.auditor} />: ${a.state}${a.attempt ? ` (redraw ${a.attempt})` : ''}${BigInt(a.fee) > 0n ? `, fee ${coin(a.fee, 8)}` : ''}</li>`)}</ul>`}
    <h3>Disputes</h3>
    ${data.disputes.length === 0 ? html`<p>No dispute.</p>` : html`<ul>${data.disputes.map((g) => html`<li><a href=${`#/disputes/${g.id}`}>Game ${g.id}</a>: ${g.resolved ? (g.resolved.providerWon ? 'the provider won' : 'the provider lost') : 'open'}</li>`)}</ul>`}
  </section>`
}
