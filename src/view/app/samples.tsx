/**
 * The sample browser: every journaled eval record, filtered on the server (streamed, one page at a
 * time). Filters and the open record live in the URL, so a link shows the same transcript to anyone.
 * Model output and judge replies are text nodes only.
 */
import { useLocation } from 'preact-iso';
import { useEffect, useState } from 'preact/hooks';
import { qs, useJson } from './api.js';
import type { Page, RunData, SampleRecord, SampleRow } from './types.js';
import { Json, Note } from './ui.js';

const FILTERS = ['eval', 'subject', 'persona', 'method', 'format', 'seed', 'q'] as const;
const PAGE = 25;

export function SamplesTab({ run, data, version }: { run: string; data: RunData; version: number }) {
  const { query, path, route } = useLocation();
  const filter = Object.fromEntries(FILTERS.map((f) => [f, query[f] ?? ''])) as Record<(typeof FILTERS)[number], string>;
  const offset = Number(query.offset ?? 0) || 0;
  const [draft, setDraft] = useState(filter);
  // The URL is the source of truth (back, forward, a shared link): the form follows it.
  const filterKey = JSON.stringify(filter);
  useEffect(() => setDraft(filter), [filterKey]);
  const api = `/api/runs/${encodeURIComponent(run)}`;
  const page = useJson<Page<SampleRow>>(`${api}/samples${qs({ ...filter, offset, limit: PAGE })}`, version);
  const open = query.open ? query.open.split('|') : null;
  const record = useJson<SampleRecord>(open && open.length === 3 ? `${api}/sample${qs({ eval: open[0], subject: open[1], key: open[2] })}` : null);
  const go = (params: Record<string, string | number | undefined>) => route(`${path}${qs(params)}`);

  const evals = Object.keys(data.journals);
  const subjects = [...new Set(Object.values(data.journals).flat())].sort();
  const personas = [...new Set(data.subjects.map((s) => s.cell?.persona ?? s.persona).filter((p): p is string => !!p))];
  const methods = [...new Set(data.subjects.map((s) => s.cell?.method ?? s.kind))];
  const formats = [...new Set(data.subjects.map((s) => s.cell?.format).filter((f): f is string => !!f))];
  const seeds = [...new Set(data.subjects.flatMap((s) => (s.cell ? [String(s.cell.seed)] : [])))];
  const select = (name: (typeof FILTERS)[number], options: string[]) => (
    <label>
      {name}
      <select name={name} value={draft[name]} onChange={(e) => setDraft({ ...draft, [name]: e.currentTarget.value })}>
        <option value="">all</option>
        {options.map((o) => (
          <option value={o}>{o}</option>
        ))}
      </select>
    </label>
  );

  if (evals.length === 0) return <Note>No eval journals yet (journals/evals/&lt;eval&gt;/&lt;subject&gt;.jsonl).</Note>;
  return (
    <>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          go({ ...draft });
        }}
      >
        {select('eval', evals)}
        {select('subject', subjects)}
        {select('persona', personas)}
        {select('method', methods)}
        {formats.length > 0 && select('format', formats)}
        {seeds.length > 0 && select('seed', seeds)}
        <label>
          prompt or reply contains
          <input name="q" value={draft.q} onInput={(e) => setDraft({ ...draft, q: e.currentTarget.value })} />
        </label>
        <button type="submit">filter</button>
      </form>
      {page.error && <p class="error">{page.error}</p>}
      <div class="split">
        <div>
          {page.data && (
            <>
              <div class="pager">
                <button disabled={offset === 0} onClick={() => go({ ...filter, offset: Math.max(0, offset - PAGE) })}>
                  previous
                </button>
                <span class="count">
                  {page.data.total === 0 ? 'no samples match' : `${offset + 1}–${offset + page.data.items.length} of ${page.data.total} samples`}
                </span>
                <button disabled={offset + PAGE >= page.data.total} onClick={() => go({ ...filter, offset: offset + PAGE })}>
                  next
                </button>
              </div>
              <table class="grid samples">
                <thead>
                  <tr>
                    <th>eval</th>
                    <th>subject</th>
                    <th>prompt</th>
                    <th>reply</th>
                  </tr>
                </thead>
                <tbody>
                  {page.data.items.map((s) => {
                    const id = `${s.eval}|${s.subject}|${s.key}`;
                    return (
                      <tr class={`clickable${query.open === id ? ' selected' : ''}`} onClick={() => go({ ...filter, offset: offset || undefined, open: id })}>
                        <td>{s.eval}</td>
                        <td>{s.subject}</td>
                        <td>{s.prompt}</td>
                        <td>{s.reply}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </>
          )}
        </div>
        <div>{record.data ? <Transcript record={record.data} /> : open ? record.error && <p class="error">{record.error}</p> : <p class="muted">Click a sample to read it.</p>}</div>
      </div>
    </>
  );
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
/** A judge panel as the evals write it: the parsed value, each judge's value and their raw replies. */
const isPanel = (x: unknown): x is { value: unknown; byJudge?: Record<string, unknown>; raw: Record<string, unknown> } => isRecord(x) && 'value' in x && isRecord(x.raw);

function Transcript({ record }: { record: SampleRecord }) {
  const score = isRecord(record.score) ? record.score : { score: record.score };
  return (
    <article class="transcript">
      <h2>
        {record.eval} · {record.subject} · <span class="muted">{record.key}</span>
      </h2>
      {record.turns.length === 0 && <p class="muted">This record holds no conversation; its fields are below.</p>}
      {record.turns.map((t) => (
        <div class={`turn ${t.role === 'assistant' ? 'assistant' : 'user'}`}>
          <div class="role">{t.role}</div>
          <pre class="content">{t.content}</pre>
        </div>
      ))}
      <section class="score">
        <h3>Score</h3>
        {Object.entries(score).map(([field, value]) =>
          isPanel(value) ? (
            <div class="judge">
              <b>{field}</b> (judge panel): parsed score <Json value={value.value} />
              {value.byJudge && (
                <>
                  per judge <Json value={value.byJudge} />
                </>
              )}
              {Object.entries(value.raw).map(([judge, replies]) => (
                <div class="raw-verdict">
                  raw verdict of {judge}:
                  {(Array.isArray(replies) ? replies : [replies]).map((r) => (
                    <pre class="raw">{typeof r === 'string' ? r : JSON.stringify(r)}</pre>
                  ))}
                </div>
              ))}
            </div>
          ) : (
            <div class={field === 'probabilities' ? 'probabilities' : 'field'}>
              <b>{field}</b>
              {field === 'probabilities' && ' (classifier)'}: <Json value={value} />
            </div>
          ),
        )}
      </section>
      <details>
        <summary>the sample as journaled</summary>
        <Json value={record.sample} />
      </details>
    </article>
  );
}
