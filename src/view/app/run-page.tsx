/** One run: its tabs (headline, evals, samples, training, datasets, steering, preferences). */
import { useLocation, useRoute } from 'preact-iso';
import { qs, useChanges, useJson } from './api.js';
import { SamplesTab } from './samples.js';
import type { Curve, Group, MetricTable, Page, RunData } from './types.js';
import { fmt, Interval, Json, Note, Plot, Value } from './ui.js';
import { useState } from 'preact/hooks';

const TABS = [
  ['', 'Headline'],
  ['evals', 'Evals'],
  ['samples', 'Samples'],
  ['training', 'Training'],
  ['datasets', 'Datasets'],
  ['steering', 'Steering'],
  ['preferences', 'Preferences'],
] as const;

/** What a group of subjects is, in the terms of the headline: prompting, steering or training. */
const KIND_LABEL: Record<string, string> = { base: 'base model', prompted: 'prompting', trained: 'training', steered: 'steering', capped: 'steering (capped)', other: 'other' };

export function RunPage() {
  const { params } = useRoute();
  const run = params.run;
  const tab = params.tab ?? '';
  const version = useChanges(run);
  const data = useJson<RunData>(`/api/runs/${encodeURIComponent(run)}`, version);
  const base = `/runs/${encodeURIComponent(run)}`;
  return (
    <>
      <h1>
        {run}{' '}
        {data.data && <span class={`badge status-${data.data.listing.status}`}>{data.data.listing.status}</span>}
      </h1>
      <nav class="tabs">
        {TABS.map(([id, label]) => (
          <a href={id ? `${base}/${id}` : base} class={tab === id ? 'active' : ''}>
            {label}
          </a>
        ))}
      </nav>
      {data.error && <p class="error">{data.error}</p>}
      {!data.data && !data.error && <p class="muted">loading…</p>}
      {data.data && tab === '' && <Headline run={run} data={data.data} />}
      {data.data && tab === 'evals' && <Evals data={data.data} />}
      {data.data && tab === 'samples' && <SamplesTab run={run} data={data.data} version={version} />}
      {data.data && tab === 'training' && <Training run={run} data={data.data} version={version} />}
      {data.data && tab === 'datasets' && <Datasets run={run} data={data.data} />}
      {data.data && tab === 'steering' && <Steering data={data.data} />}
      {data.data && tab === 'preferences' && <Preferences data={data.data} />}
    </>
  );
}

/** Sample-browser link for one group of subjects in one eval. */
function samplesLink(run: string, evaluation: string, g: Group): string {
  const filter = g.subjects.length === 1 ? { subject: g.subjects[0] } : { persona: g.persona ?? undefined, method: g.method ?? undefined, format: g.format ?? undefined };
  return `/runs/${encodeURIComponent(run)}/samples${qs({ eval: evaluation, ...filter })}`;
}

function Headline({ run, data }: { run: string; data: RunData }) {
  if (!data.summary) return <Note>No evaluation summary yet (evals/summary.json): the evaluations have not finished. This page updates when they do.</Note>;
  // Each eval's first metric is its headline number.
  const firsts = data.tables.filter((t, i, all) => t.metric && all.findIndex((u) => u.eval === t.eval && u.metric) === i);
  return (
    <>
      <p>
        Each row is a persona × method × format pooled over its seeds (mean, interval across seeds; one seed: its bootstrap interval), or a
        baseline. Click a number for the transcripts behind it. Intervals at {Math.round(data.summary.confidence * 100)}%.
      </p>
      <table class="grid headline">
        <thead>
          <tr>
            <th>subject</th>
            <th>how</th>
            <th class="num">seeds</th>
            {firsts.map((t) => (
              <th class="num">
                {t.eval}
                <br />
                <span class="muted">{t.metric}</span>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {data.groups.map((g) => (
            <tr>
              <td>{g.label}</td>
              <td>
                <span class={`badge ${g.kind}`}>{KIND_LABEL[g.kind]}</span>
              </td>
              <td class="num">{g.subjects.length}</td>
              {firsts.map((t) => {
                const row = t.rows.find((r) => r.group === g.id);
                return (
                  <td class="num">
                    {row ? (
                      <a href={samplesLink(run, t.eval, g)} class="to-samples">
                        <Value value={row.pooled.value} ci={row.pooled.ci} n={row.pooled.n} />
                      </a>
                    ) : (
                      '–'
                    )}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
      <p class="muted">
        Started {data.listing.startedAt}; seeds {data.listing.seeds.join(', ')}; judges {data.summary.judges.join(', ') || 'none'}.
      </p>
    </>
  );
}

function comparison(m: MetricTable['rows'][number]['perSubject'][number]['metric'], against: string | null) {
  const c = against ? m.comparisons.find((x) => x.against === against) : undefined;
  return c ? (
    <>
      {fmt(c.difference)} <Interval ci={c.ci} />
    </>
  ) : (
    '–'
  );
}

function Evals({ data }: { data: RunData }) {
  if (!data.summary) return <Note>No evaluation summary yet.</Note>;
  const label = (id: string) => data.groups.find((g) => g.id === id)?.label ?? id;
  const { baseline, prompted } = data.summary;
  return (
    <>
      {data.summary.evals.map((e) => (
        <section class="eval">
          <h2>
            {e.eval} <span class="badge">{e.status}</span>
          </h2>
          {e.reason && <p class="muted">{e.reason}</p>}
          {e.unparsed > 0 && <p class="muted">{e.unparsed} judge verdicts never parsed (dropped and counted).</p>}
          {data.tables
            .filter((t) => t.eval === e.eval && t.metric)
            .map((t) => (
              <>
                <h3>{t.metric}</h3>
                <table class="grid metric">
                  <thead>
                    <tr>
                      <th>subject</th>
                      <th>group</th>
                      <th class="num">value [interval]</th>
                      <th class="num">n</th>
                      <th class="num">missing</th>
                      <th class="num">vs base ({baseline ?? 'none'})</th>
                      <th class="num">vs prompted ({prompted ?? 'none'})</th>
                    </tr>
                  </thead>
                  <tbody>
                    {t.rows.flatMap((r) => [
                      ...r.perSubject.map((p) => (
                        <tr>
                          <td>{p.subject}</td>
                          <td>{label(r.group)}</td>
                          <td class="num">
                            {fmt(p.metric.value)} <Interval ci={p.metric.ci} />
                          </td>
                          <td class="num">{p.metric.n}</td>
                          <td class="num">{p.metric.missing}</td>
                          <td class="num">{comparison(p.metric, baseline)}</td>
                          <td class="num">{comparison(p.metric, prompted)}</td>
                        </tr>
                      )),
                      ...(r.perSubject.length > 1
                        ? [
                            <tr class="pooled">
                              <td>
                                <i>pooled over {r.pooled.seeds} seeds</i>
                              </td>
                              <td>{label(r.group)}</td>
                              <td class="num">
                                {fmt(r.pooled.value)} <Interval ci={r.pooled.ci} /> <span class="ci">seed SD {fmt(r.pooled.seedSd)}</span>
                              </td>
                              <td class="num">{r.pooled.n}</td>
                              <td />
                              <td />
                              <td />
                            </tr>,
                          ]
                        : []),
                    ])}
                  </tbody>
                </table>
              </>
            ))}
          {e.judgeAgreement.length > 0 && (
            <table class="grid">
              <thead>
                <tr>
                  <th>judge agreement</th>
                  <th>judges</th>
                  <th>statistic</th>
                  <th class="num">value</th>
                  <th class="num">n</th>
                </tr>
              </thead>
              <tbody>
                {e.judgeAgreement.map((j) => (
                  <tr>
                    <td>{j.metric}</td>
                    <td>{j.judges.join(' / ')}</td>
                    <td>{j.statistic}</td>
                    <td class="num">{fmt(j.value)}</td>
                    <td class="num">{j.n}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      ))}
    </>
  );
}

/** The step log's fields that are not curves. */
const NOT_CURVES = new Set(['step', 'epoch', 'seconds', 'tokens', 'tokensPerSecond']);

function Training({ run, data, version }: { run: string; data: RunData; version: number }) {
  const { query, route, path } = useLocation();
  const cell = query.cell ?? data.curves[0];
  const curve = useJson<Curve>(cell ? `/api/runs/${encodeURIComponent(run)}/curve${qs({ cell })}` : null, version);
  if (data.curves.length === 0) return <Note>No training logs yet (adapters/&lt;persona&gt;/&lt;method&gt;/seed-&lt;n&gt;/train.jsonl).</Note>;
  const fields = curve.data ? [...new Set(curve.data.points.flatMap((p) => Object.keys(p)))].filter((f) => !NOT_CURVES.has(f)) : [];
  return (
    <>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          trained cell
          <select name="cell" value={cell} onChange={(e) => route(`${path}${qs({ cell: e.currentTarget.value })}`, true)}>
            {data.curves.map((c) => (
              <option value={c}>{c}</option>
            ))}
          </select>
        </label>
      </form>
      {curve.error && <p class="error">{curve.error}</p>}
      {curve.data && (
        <>
          <p class="muted">
            {curve.data.steps} steps logged{curve.data.points.length < curve.data.steps ? ` (${curve.data.points.length} shown, evenly thinned)` : ''}.
          </p>
          {fields.map((f) => (
            <Plot
              label={`${f} per step`}
              spec={{
                $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
                title: f,
                width: 640,
                height: 180,
                data: { values: curve.data!.points.filter((p) => p[f] !== undefined) },
                mark: { type: 'line', point: curve.data!.points.length < 60 },
                encoding: { x: { field: 'step', type: 'quantitative' }, y: { field: f, type: 'quantitative', scale: { zero: false } } },
              }}
            />
          ))}
        </>
      )}
    </>
  );
}

function Datasets({ run, data }: { run: string; data: RunData }) {
  const [open, setOpen] = useState<{ folder: string; name: string; variant: string } | null>(null);
  const [offset, setOffset] = useState(0);
  const rows = useJson<Page<unknown>>(open ? `/api/runs/${encodeURIComponent(run)}/rows${qs({ ...open, offset, limit: 10 })}` : null);
  if (data.datasets.length === 0) return <Note>No datasets yet (datasets/**/*.manifest.json).</Note>;
  return (
    <>
      {data.budgets.map((b) => (
        <section class="budget">
          <h2>
            Equal token budget: {b.folder} <span class="muted">({b.budget} tokens, {b.tokenizer})</span>
          </h2>
          <table class="grid budgets">
            <thead>
              <tr>
                <th>format</th>
                <th class="num">rows available</th>
                <th class="num">tokens available</th>
                <th class="num">rows kept</th>
                <th class="num">tokens kept</th>
              </tr>
            </thead>
            <tbody>
              {Object.entries(b.formats).map(([format, f]) => (
                <tr>
                  <td>{format}</td>
                  <td class="num">{f.rowsAvailable}</td>
                  <td class="num">{f.tokensAvailable}</td>
                  <td class="num">{f.rows}</td>
                  <td class="num">{f.tokens}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {b.shortOfBudget && b.shortOfBudget.length > 0 && <p class="muted">Short of the budget (not an equal comparison): {b.shortOfBudget.join(', ')}.</p>}
        </section>
      ))}
      <h2>Datasets</h2>
      <table class="grid datasets">
        <thead>
          <tr>
            <th>persona folder</th>
            <th>dataset</th>
            <th>shape</th>
            <th>rows per file (click to view)</th>
            <th class="num">generated</th>
            <th>dropped by filter</th>
            <th class="num">tokens</th>
            <th>notes</th>
          </tr>
        </thead>
        <tbody>
          {data.datasets.map((d) => (
            <tr>
              <td>{d.folder || 'shared'}</td>
              <td>{d.name}</td>
              <td>{d.manifest.shape}</td>
              <td>
                {Object.entries(d.manifest.rows).map(([variant, n]) => (
                  <div>
                    <a
                      href="#rows"
                      onClick={(e) => {
                        e.preventDefault();
                        setOffset(0);
                        setOpen({ folder: d.folder, name: d.name, variant });
                      }}
                    >
                      {variant}: {n}
                    </a>
                  </div>
                ))}
              </td>
              <td class="num">{d.manifest.generated}</td>
              <td>
                {Object.entries(d.manifest.dropped)
                  .map(([f, n]) => `${f}: ${n}`)
                  .join(', ') || 'none'}
              </td>
              <td class="num">{d.manifest.tokens}</td>
              <td>
                {d.manifest.notes.join(' ')}
                {d.manifest.extra && <details><summary>budgets and extras</summary><Json value={d.manifest.extra} /></details>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {open && (
        <section id="rows">
          <h2>
            {open.folder || 'shared'} / {open.name} / {open.variant}
          </h2>
          {rows.data && (
            <>
              <div class="pager">
                <button disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - 10))}>
                  previous
                </button>
                <span>
                  rows {rows.data.total ? offset + 1 : 0}–{offset + rows.data.items.length} of {rows.data.total}
                </span>
                <button disabled={offset + 10 >= rows.data.total} onClick={() => setOffset(offset + 10)}>
                  next
                </button>
              </div>
              {rows.data.items.map((r) => (
                <Json value={r} />
              ))}
            </>
          )}
        </section>
      )}
    </>
  );
}

function Steering({ data }: { data: RunData }) {
  const steer = data.steer;
  if (!steer) return <Note>No steering results in this run (steer/summary.json).</Note>;
  return (
    <>
      <p class="muted">Model {steer.model}.</p>
      {steer.traits.map((t) => (
        <section class="trait">
          <h2>
            {t.persona}: {t.trait}
          </h2>
          <p>
            Chosen on {t.sweep.halves.selection.length} question(s):{' '}
            {t.sweep.chosen ? `layer ${t.sweep.chosen.layer}, coefficient ${t.sweep.chosen.coef}` : 'no steering effect (no cell raised expression)'}; coherence floor {fmt(t.sweep.coherenceFloor)}.
            {t.sweep.held.chosen &&
              ` On the other ${t.sweep.held.chosen.questions} question(s): movement ${fmt(t.sweep.held.chosen.movement)} [${fmt(t.sweep.held.chosen.low)}, ${fmt(t.sweep.held.chosen.high)}], n ${t.sweep.held.chosen.n}.`}
          </p>
          <Plot
            label="steering sweep"
            spec={{
              title: 'sweep: trait movement per layer and coefficient, selection half (× not eligible)',
              data: { values: t.sweep.cells.map((c) => ({ ...c, mark: c.admissible ? '' : '×' })) },
              width: { step: 36 },
              height: { step: 24 },
              encoding: { x: { field: 'coef', type: 'ordinal' }, y: { field: 'layer', type: 'ordinal' } },
              layer: [
                { mark: 'rect', encoding: { color: { field: 'movement', type: 'quantitative', scale: { scheme: 'blueorange', domainMid: 0 } }, tooltip: [{ field: 'expression' }, { field: 'coherence' }, { field: 'n' }] } },
                { mark: { type: 'text' }, encoding: { text: { field: 'mark' } } },
              ],
            }}
          />
          {t.monitor && (
            <p>
              Monitoring at layer {t.monitor.layer}: r = {fmt(t.monitor.correlation.r)} <Interval ci={t.monitor.correlation} /> over n = {t.monitor.correlation.n}
              {t.monitor.missing ? ` (${t.monitor.missing} without an expression score)` : ''}.
            </p>
          )}
          {(steer.points[`${t.persona}/${t.traitIndex}`] ?? []).length > 0 && (
            <Plot
              label="monitor scatter"
              spec={{
                title: 'projection on the persona vector vs judged expression',
                width: 420,
                height: 260,
                data: { values: steer.points[`${t.persona}/${t.traitIndex}`] },
                mark: { type: 'point', filled: true, opacity: 0.6 },
                encoding: { x: { field: 'projection', type: 'quantitative', scale: { zero: false } }, y: { field: 'expression', type: 'quantitative' }, tooltip: [{ field: 'key' }] },
              }}
            />
          )}
        </section>
      ))}
      {steer.axis && (
        <section>
          <h2>Activation capping</h2>
          <p>
            Floors at the {fmt(steer.axis.percentile, 1)}th percentile of {steer.axis.observed} projections per layer on the assistant axis (axis layer {steer.axis.axisLayer}).
          </p>
          <table class="grid capping">
            <thead>
              <tr>
                <th class="num">layer</th>
                <th class="num">capping threshold (floor)</th>
              </tr>
            </thead>
            <tbody>
              {steer.axis.layers.map((l, i) => (
                <tr>
                  <td class="num">{l}</td>
                  <td class="num">{fmt(steer.axis!.floors[i])}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
    </>
  );
}

function Preferences({ data }: { data: RunData }) {
  const prefs = data.summary?.evals.find((e) => e.eval === 'preferences');
  const rankings = prefs?.plots.rankings ?? [];
  if (rankings.length === 0) return <Note>No revealed-preference rankings in this run.</Note>;
  return (
    <>
      {rankings.map((r) => (
        <section class="ranking">
          <h2>
            {r.subject} <span class="muted">({r.variant}; {r.matches} matches, {r.unparsed} unparsed)</span>
          </h2>
          <Plot
            label={`ranking ${r.subject}`}
            spec={{
              width: 420,
              height: { step: 16 },
              data: { values: r.traits.map((t) => ({ trait: t.trait, bt: t.bt, low: t.btCi?.low ?? t.bt, high: t.btCi?.high ?? t.bt })) },
              encoding: { y: { field: 'trait', type: 'nominal', sort: null } },
              layer: [
                { mark: 'rule', encoding: { x: { field: 'low', type: 'quantitative', title: 'Bradley-Terry strength (log scale)' }, x2: { field: 'high' } } },
                { mark: { type: 'point', filled: true }, encoding: { x: { field: 'bt', type: 'quantitative' } } },
              ],
            }}
          />
          <table class="grid">
            <thead>
              <tr>
                <th>trait</th>
                <th class="num">Bradley-Terry [interval]</th>
                <th class="num">Elo</th>
                <th class="num">head-to-head wins / games</th>
              </tr>
            </thead>
            <tbody>
              {r.traits.map((t) => (
                <tr>
                  <td>{t.trait}</td>
                  <td class="num">
                    {fmt(t.bt)} <Interval ci={t.btCi} />
                  </td>
                  <td class="num">{fmt(t.elo, 0)}</td>
                  <td class="num">
                    {t.wins} / {t.games}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ))}
      {(prefs?.plots.rankCorrelations ?? []).length > 0 && (
        <>
          <h2>Rank correlations between subjects</h2>
          <table class="grid">
            <thead>
              <tr>
                <th>a</th>
                <th>b</th>
                <th>variant</th>
                <th>method</th>
                <th class="num">Spearman</th>
                <th class="num">n</th>
              </tr>
            </thead>
            <tbody>
              {prefs!.plots.rankCorrelations!.map((c) => (
                <tr>
                  <td>{c.a}</td>
                  <td>{c.b}</td>
                  <td>{c.variant}</td>
                  <td>{c.method}</td>
                  <td class="num">{fmt(c.spearman)}</td>
                  <td class="num">{c.n}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </>
  );
}
