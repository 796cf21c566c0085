// Disputes: the list of games and one game drawn as its bisection, level by level (trace -> op ->
// element -> micro-step): each round's revealed children, the one the challenger chose, the clocks
// and bonds, the one-step verdict and the slash with where its value went.
import { useLive } from './api.js'
import { Addr, coin, html, short, time } from './format.js'

const PHASES = { 1: 'provider reveals', 2: 'provider reveals the pre-state', 3: 'provider expands', 4: 'provider steps', 5: 'challenger chooses', 6: 'provider won', 7: 'challenger won', 8: 'challenger names an element', 9: 'provider reveals a chunk' }

export const Verdict = ({ g }) =>
  g.resolved
    ? html`<span class=${`badge ${g.resolved.providerWon ? 'settled' : 'lost'}`}>${g.resolved.providerWon ? 'provider won' : 'provider lost'} (${g.resolved.whyName})</span>`
    : html`<span class="badge disputed">open: ${PHASES[g.state.phase] ?? g.state.phase}</span>`

/** One round as a row of cells: the revealed children, the chosen one filled. */
function Round({ round, n }) {
  const k = round.chosen ? Number(BigInt(round.chosen.index) - BigInt(round.index) * BigInt(round.children.length)) : -1
  const w = 20
  const label = `Round ${n + 1}: ${round.children.length} children of node ${round.index} revealed${k >= 0 ? `, the challenger chose child ${k}` : ', no choice yet'}`
  return html`<figure class="round">
    <svg role="img" aria-label=${label} viewBox=${`0 0 ${round.children.length * w} 24`} preserveAspectRatio="xMinYMid meet" class="cells" style=${`max-width:${round.children.length * 28}px`}>
      <title>${label}</title>
      ${round.children.map(
        (c, i) => html`<rect x=${i * w + 1} y="2" width=${w - 2} height="20" rx="3" class=${i === k ? 'chosen' : 'child'}><title>${`child ${i}: ${c}`}</title></rect>`,
      )}
    </svg>
    <figcaption>${label}</figcaption>
  </figure>`
}

function Level({ l }) {
  return html`<li class="level">
    <h4>Level ${l.level}: ${l.name}</h4>
    ${l.expanded ? html`<p class="meta">Committed by the provider's expansion: root <code>${short(l.expanded.root)}</code>, depth ${l.expanded.depth}, ${Number(l.expanded.lastLeaf) + 1} leaves</p>` : ''}
    ${l.op ? html`<p>Op ${l.op.op} entered, ${l.op.elements} element(s), slot root <code>${short(l.op.slotRoot)}</code></p>` : ''}
    ${l.element ? html`<p>Element ${l.element.elem} of op ${l.element.op} named by the challenger</p>` : ''}
    ${l.rounds.length === 0 ? html`<p class="meta">No bisection at this level (a single leaf).</p>` : l.rounds.map((r, i) => html`<${Round} round=${r} n=${i} />`)}
    ${l.pre ? html`<p class="meta">Pre-state <code>${short(l.pre)}</code> revealed</p>` : ''}
  </li>`
}

export function GamePage({ id }) {
  const { data: g, error } = useLive(`disputes/${id}`, (c) => !c.games || c.games.includes(id))
  if (!g) return html`<section><h2>Dispute ${id}</h2><p>${error ?? 'Loading…'}</p></section>`
  return html`<section aria-labelledby="game-h">
    <p><a href="#/disputes">← All disputes</a></p>
    <h2 id="game-h">Dispute ${g.id} <${Verdict} g=${g} /></h2>
    <dl class="grid">
      <div class="kv"><dt>Job</dt><dd><a href=${`#/jobs/${g.jobId}`}>job ${g.jobIndex} of batch ${g.batchId}</a></dd></div>
      <div class="kv"><dt>Provider</dt><dd><${Addr} a=${g.provider} /></dd></div>
      <div class="kv"><dt>Challenger</dt><dd><${Addr} a=${g.challenger} /></dd></div>
      <div class="kv"><dt>Clocks</dt><dd>provider ${g.state.providerClock} s, challenger ${g.state.challengerClock} s left</dd></div>
      <div class="kv"><dt>Bonds</dt><dd>${coin(g.state.bond)} held by the game; job worth ${coin(g.state.jobAmount, 8)}</dd></div>
      <div class="kv"><dt>Moves</dt><dd>${g.moves.length}, opened ${time(g.openedAt)}</dd></div>
    </dl>
    <h3>Bisection</h3>
    <ol class="levels">${g.levels.map((l) => html`<${Level} l=${l} />`)}</ol>
    <h3>One-step verdict</h3>
    <p>${g.resolved ? (g.resolved.providerWon ? `The provider's step was upheld (${g.resolved.whyName}).` : `The provider's step was wrong: it lost (${g.resolved.whyName}) at ${time(g.resolved.time)}.`) : 'The game is still being played.'}</p>
    <h3>Slash</h3>
    ${g.slashes.length === 0 ? html`<p>No slash.</p>` : html`<ul class="slashes">${g.slashes.map(
      (s) => html`<li><strong class="bad">${coin(s.amount)} slashed</strong> from <${Addr} a=${s.account} />: ${coin(s.reward)} to the challenger <${Addr} a=${s.beneficiary} />, ${coin(s.burned)} burned.</li>`,
    )}</ul>`}
  </section>`
}

export function Disputes() {
  const { data, error } = useLive('disputes', (c) => !c.games || c.games.length > 0)
  return html`<section aria-labelledby="disp-h">
    <h2 id="disp-h">Disputes ${data ? html`<span class="count">${data.disputes.length}</span>` : ''}</h2>
    ${!data ? html`<p>${error ?? 'Loading…'}</p>` : data.disputes.length === 0 ? html`<p>No dispute yet.</p>` : html`<ul class="games">${data.disputes.map(
      (g) => html`<li data-game=${g.id}>
        <a href=${`#/disputes/${g.id}`}>Game ${g.id}</a> on job ${g.jobIndex} of batch ${g.batchId}: <${Verdict} g=${g} />
        <span class="meta">${g.levels.length} level(s), ${g.moves.length} moves${g.slashes.length ? html`, <strong class="bad">${coin(g.slashes.reduce((a, s) => a + BigInt(s.amount), 0n))} slashed</strong>` : ''}</span>
      </li>`,
    )}</ul>`}
  </section>`
}
