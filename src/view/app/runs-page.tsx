/** The runs list, and the two-run comparison. */
import { useLocation } from 'preact-iso';
import { useState } from 'preact/hooks';
import { qs, useChanges, useJson } from './api.js';
import type { Comparison, RunListing } from './types.js';
import { fmt, Interval, Note } from './ui.js';

const STAGES = ['generate', 'train', 'steer', 'eval', 'report'] as const;

export function RunsPage() {
  const version = useChanges();
  const runs = useJson<RunListing[]>('/api/runs', version);
  if (runs.error) return <p class="error">{runs.error}</p>;
  if (!runs.data) return <p class="muted">loading…</p>;
  return (
    <>
      <h1>Runs</h1>
      {runs.data.length === 0 ? (
        <Note>No run directories here yet (a run directory holds manifest.json).</Note>
      ) : (
        <table class="grid runs">
          <thead>
            <tr>
              <th>run</th>
              <th>status</th>
              <th>stages done</th>
              <th class="num">seeds</th>
              <th class="num">cost (USD)</th>
              <th>started</th>
              <th>last write</th>
            </tr>
          </thead>
          <tbody>
            {runs.data.map((r) => (
              <tr key={r.name}>
                <td>
                  <a href={`/runs/${encodeURIComponent(r.name)}`}>{r.name}</a>
                </td>
                <td class={`status-${r.status}`}>{r.status}</td>
                <td>{STAGES.filter((s) => r.stages[s]).join(', ') || 'none'}</td>
                <td class="num">{r.seeds.join(', ')}</td>
                <td class="num">{r.costUSD === null ? '–' : r.costUSD.toFixed(4)}</td>
                <td>{r.startedAt.replace('T', ' ').slice(0, 19)}</td>
                <td>{r.updatedAt.replace('T', ' ').slice(0, 19)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {runs.data.length >= 2 && <ComparePicker runs={runs.data.map((r) => r.name)} />}
    </>
  );
}

function ComparePicker({ runs, a: a0, b: b0 }: { runs: string[]; a?: string; b?: string }) {
  const { route } = useLocation();
  const [a, setA] = useState(a0 ?? runs[1] ?? runs[0]);
  const [b, setB] = useState(b0 ?? runs[0]);
  return (
    <form
      class="filters compare-picker"
      onSubmit={(e) => {
        e.preventDefault();
        route(`/compare${qs({ a, b })}`);
      }}
    >
      <label>
        run A
        <select name="a" value={a} onChange={(e) => setA(e.currentTarget.value)}>
          {runs.map((r) => (
            <option value={r}>{r}</option>
          ))}
        </select>
      </label>
      <label>
        run B
        <select name="b" value={b} onChange={(e) => setB(e.currentTarget.value)}>
          {runs.map((r) => (
            <option value={r}>{r}</option>
          ))}
        </select>
      </label>
      <button type="submit">compare</button>
    </form>
  );
}

export function ComparePage() {
  const { query } = useLocation();
  const version = useChanges();
  const runs = useJson<RunListing[]>('/api/runs', version);
  const result = useJson<Comparison>(query.a && query.b ? `/api/compare${qs({ a: query.a, b: query.b })}` : null, version);
  const [evalFilter, setEvalFilter] = useState(query.eval ?? '');
  const rows = result.data?.rows.filter((r) => !evalFilter || r.eval === evalFilter) ?? [];
  return (
    <>
      <h1>Compare runs</h1>
      {runs.data && <ComparePicker runs={runs.data.map((r) => r.name)} a={query.a} b={query.b} />}
      {result.error && <p class="error">{result.error}</p>}
      {result.data && (
        <>
          <p>
            Difference is <b>{result.data.b}</b> minus <b>{result.data.a}</b> for every eval, metric and subject group both runs have; its
            interval adds the two runs' interval half-widths in quadrature (independent runs).
          </p>
          <form class="filters" onSubmit={(e) => e.preventDefault()}>
            <label>
              eval
              <select name="eval" value={evalFilter} onChange={(e) => setEvalFilter(e.currentTarget.value)}>
                <option value="">all</option>
                {[...new Set(result.data.rows.map((r) => r.eval))].map((e) => (
                  <option value={e}>{e}</option>
                ))}
              </select>
            </label>
          </form>
          {rows.length === 0 ? (
            <Note>The two runs share no (eval, metric, subject group).</Note>
          ) : (
            <table class="grid comparison">
              <thead>
                <tr>
                  <th>eval</th>
                  <th>metric</th>
                  <th>subject group</th>
                  <th class="num">{result.data.a}</th>
                  <th class="num">{result.data.b}</th>
                  <th class="num">difference (B − A)</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr>
                    <td>{r.eval}</td>
                    <td>{r.metric}</td>
                    <td>{r.group}</td>
                    <td class="num">
                      {fmt(r.a.value)} <Interval ci={r.a.ci} /> <span class="ci">n={r.a.n}</span>
                    </td>
                    <td class="num">
                      {fmt(r.b.value)} <Interval ci={r.b.ci} /> <span class="ci">n={r.b.n}</span>
                    </td>
                    <td class="num difference">
                      {fmt(r.difference)} <Interval ci={r.ci} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </>
  );
}
