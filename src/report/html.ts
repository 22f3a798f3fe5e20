/**
 * The self-contained HTML page: inline CSS, inline SVG plots rendered on the server, no scripts, no
 * external resources. A Content-Security-Policy forbids scripts and every load as a second line of
 * defence; the first is that every piece of text goes through `escapeHtml`.
 */
import { escapeHtml as e } from './escape.js';
import type { ReportData, Transcript } from './model.js';
import type { Section, Table } from './section.js';
import { renderPlot } from './plots.js';
import { runFacts } from './run-facts.js';

const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";
/** Longest text of one turn shown; the journals keep the rest. */
const MAX_TURN_CHARS = 4000;

const STYLE = `
:root { --ink: #1d1d1f; --muted: #5f6368; --rule: #c9c9c9; --faint: #f4f5f7; --accent: #1f6fb4; }
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: var(--ink); font: 15px/1.55 "DejaVu Serif", "Liberation Serif", Georgia, serif; }
main { max-width: 1040px; margin: 0 auto; padding: 36px 40px 64px; }
h1, h2, h3, nav, table, figcaption, .meta, .transcript, .omitted, .note { font-family: "DejaVu Sans", "Liberation Sans", Helvetica, Arial, sans-serif; }
h1 { font-size: 26px; font-weight: 600; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 19px; font-weight: 600; margin: 44px 0 8px; padding-bottom: 5px; border-bottom: 1px solid var(--rule); }
h3 { font-size: 14px; font-weight: 600; margin: 22px 0 6px; }
p { margin: 6px 0 12px; max-width: 820px; }
.meta { color: var(--muted); font-size: 13px; margin-bottom: 18px; }
nav { font-size: 13px; background: var(--faint); border-radius: 6px; padding: 10px 16px; margin: 18px 0; }
nav ol { margin: 4px 0; padding-left: 20px; columns: 2; }
nav a { color: var(--accent); text-decoration: none; }
figure { margin: 14px 0 22px; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption, caption { font-size: 12.5px; color: var(--muted); text-align: left; margin-top: 4px; }
caption { caption-side: top; margin-bottom: 4px; white-space: nowrap; }
.label { font-weight: 600; color: var(--ink); }
table { border-collapse: collapse; font-size: 12.5px; margin: 10px 0 22px; font-variant-numeric: tabular-nums; border-top: 1.5px solid var(--ink); border-bottom: 1.5px solid var(--ink); }
thead th { border-bottom: 1px solid var(--ink); font-weight: 600; }
th, td { padding: 3px 10px; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafafa; }
.omitted { font-size: 13px; color: var(--muted); margin: 10px 0; }
.omitted .label { color: var(--muted); }
.note { font-size: 13px; color: var(--muted); }
.transcript { border: 1px solid var(--rule); border-radius: 6px; margin: 14px 0; font-size: 13px; overflow: hidden; }
.transcript > header { background: var(--faint); padding: 6px 12px; color: var(--muted); border-bottom: 1px solid var(--rule); }
.turn { display: grid; grid-template-columns: 118px 1fr; border-bottom: 1px solid #eee; }
.role { padding: 7px 12px; color: var(--muted); font-weight: 600; }
.content { padding: 7px 12px 7px 0; white-space: pre-wrap; overflow-wrap: anywhere; font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 12px; }
.judge { padding: 7px 12px; background: #fbfaf4; }
@media print { main { padding: 0; } h2 { break-after: avoid; } figure, table, .transcript { break-inside: avoid; } }
`;

function tableHtml(t: Table, number: number): string {
  const cls = (i: number) => (t.numeric[i] ? ' class="num"' : '');
  const head = t.columns.map((c, i) => `<th${cls(i)}>${e(c)}</th>`).join('');
  const body = t.rows.map((row) => `<tr>${row.map((cell, i) => `<td${cls(i)}>${e(cell)}</td>`).join('')}</tr>`).join('\n');
  return `<table><caption><span class="label">Table ${number}.</span> ${e(t.caption)}</caption>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody></table>`;
}

function transcriptHtml(t: Transcript): string {
  const clip = (text: string) => (text.length > MAX_TURN_CHARS ? `${text.slice(0, MAX_TURN_CHARS)}\n… (${text.length - MAX_TURN_CHARS} more characters in the journal)` : text);
  const turns = t.turns.map((turn) => `<div class="turn"><div class="role">${e(turn.role)}</div><div class="content">${e(clip(turn.content))}</div></div>`).join('\n');
  const judge = t.judge ? `<div class="judge"><span class="label">Verdict: ${e(t.judge.verdict)}.</span> ${e(t.judge.reason)}</div>` : '';
  return `<article class="transcript"><header>${e(t.evaluation)} · ${e(t.subject)}</header>\n${turns}\n${judge}</article>`;
}

/** Figure and table numbers run through the whole page. */
interface Counters {
  figure: number;
  table: number;
}

async function sectionHtml(s: Section, n: Counters): Promise<string> {
  if (s.missing) return `<p class="omitted" id="${e(s.id)}"><span class="label">${e(s.title)}</span>: omitted. ${e(s.missing)}</p>`;
  const parts = [`<section id="${e(s.id)}">`, `<h2>${e(s.title)}</h2>`];
  if (s.description) parts.push(`<p>${e(s.description)}</p>`);
  for (const plot of s.plots) {
    const svg = await renderPlot(plot.spec);
    parts.push(`<figure>${svg}<figcaption><span class="label">Figure ${++n.figure}.</span> ${e(plot.caption)}</figcaption></figure>`);
  }
  for (const t of s.tables) if (!t.markdownOnly) parts.push(tableHtml(t, ++n.table));
  for (const t of s.transcripts ?? []) parts.push(transcriptHtml(t));
  parts.push('</section>');
  return parts.join('\n');
}

export async function renderHtml(data: ReportData, sections: Section[]): Promise<string> {
  const counters: Counters = { figure: 0, table: 0 };
  const body: string[] = [];
  for (const s of sections) body.push(await sectionHtml(s, counters));
  const facts = runFacts(data);
  const present = sections.filter((s) => !s.missing);
  const nav = present.length ? `<nav><strong>Contents</strong><ol>${present.map((s) => `<li><a href="#${e(s.id)}">${e(s.title)}</a></li>`).join('')}</ol></nav>` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${e(data.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${e(data.title)}</h1>
<div class="meta">${facts.map(([k, v]) => `<span class="label">${e(k)}</span> ${e(v)}`).join(' · ')}</div>
${nav}
${body.join('\n')}
</main>
</body>
</html>
`;
}
