// The network view: providers (models, price, stake, capacity, latency, audits, reputation), auditors, peers.
import { useLive } from './api.js'
import { Addr, coin, gwei, html, pct, short } from './format.js'

const Stake = ({ s }) => html`<span>${coin(s.active)}</span>${BigInt(s.locked) > 0n ? html` <small>(${coin(s.locked)} locked)</small>` : ''}${BigInt(s.unbonding) > 0n ? html` <small>(${coin(s.unbonding)} unbonding)</small>` : ''}`

export function Network() {
  const { data, error } = useLive('network', (c) => c.providers !== false)
  if (!data) return html`<section aria-labelledby="net-h"><h2 id="net-h">Network</h2><p>${error ?? 'Loading…'}</p></section>`
  return html`<section aria-labelledby="net-h">
    <h2 id="net-h">Network</h2>
    <p class="meta">Chain ${data.chainId}, block ${data.head}${data.node ? html` · this node ${short(data.node.peerId, 8)} (${data.node.roles.join(', ')}), ${data.node.peers} peers` : ''}</p>
    <h3>Providers <span class="count">${data.providers.length}</span></h3>
    <div class="table-wrap" tabindex="0" role="region" aria-label="Providers">
      <table class="providers">
        <thead><tr><th scope="col">Provider</th><th scope="col">Models and price</th><th scope="col">Stake</th><th scope="col">Capacity</th><th scope="col">Latency</th><th scope="col">Jobs</th><th scope="col">Audits</th><th scope="col">Games</th><th scope="col">Slashed</th><th scope="col">Reputation</th></tr></thead>
        <tbody>
          ${data.providers.map(
            (p) => html`<tr class=${BigInt(p.slashed) > 0n ? 'slashed' : ''}>
              <th scope="row"><${Addr} a=${p.address} /></th>
              <td>${p.models.length ? p.models.map((m) => html`<div><code title=${m.modelRoot}>${short(m.modelRoot)}</code> ${gwei(m.pricePerToken)}/token</div>`) : '–'}</td>
              <td><${Stake} s=${p.stake} /></td>
              <td>${p.capacity ?? '–'}</td>
              <td>${p.latencyMs == null ? '–' : `${Math.round(p.latencyMs)} ms`}</td>
              <td>${p.jobs} <small>(${p.tokens} tokens)</small></td>
              <td>${p.audits.valid} valid, ${p.audits.invalid} invalid</td>
              <td>${p.games.won} won, ${p.games.lost} lost${p.games.open ? html`, <strong>${p.games.open} open</strong>` : ''}</td>
              <td>${BigInt(p.slashed) > 0n ? html`<strong class="bad">${coin(p.slashed)}</strong>` : '0'}</td>
              <td>${pct(p.reputation)}</td>
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
    <h3>Auditors <span class="count">${data.auditors.length}</span></h3>
    ${data.auditors.length === 0
      ? html`<p>No auditor has staked yet.</p>`
      : html`<div class="table-wrap" tabindex="0" role="region" aria-label="Auditors">
          <table>
            <thead><tr><th scope="col">Auditor</th><th scope="col">Registered</th><th scope="col">Stake</th><th scope="col">Drawn</th><th scope="col">Committed</th><th scope="col">Revealed</th><th scope="col">Fees</th><th scope="col">Games</th></tr></thead>
            <tbody>${data.auditors.map(
              (a) => html`<tr><th scope="row"><${Addr} a=${a.address} /></th><td>${a.registered ? 'yes' : 'no'}</td><td><${Stake} s=${a.stake} /></td><td>${a.drawn}</td><td>${a.committed}</td>
                <td>${a.revealed.valid} valid, ${a.revealed.invalid} invalid</td><td>${coin(a.fees)}</td><td>${a.games.won} won, ${a.games.lost} lost</td></tr>`,
            )}</tbody>
          </table>
        </div>`}
  </section>`
}
