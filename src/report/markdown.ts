/**
 * The Markdown summary (GitHub-flavoured tables) for pasting into issues and papers: the same tables
 * as the page, plots replaced by their numbers, transcripts shortened. All text is escaped: GitHub
 * renders raw HTML inside Markdown.
 */
import { escapeMarkdownCell as cell, escapeMarkdownText as text } from './escape.js';
import type { ReportData, Transcript } from './model.js';
import { runFacts } from './run-facts.js';
import type { Section, Table } from './section.js';

/** Longest text of one turn in the Markdown; the HTML page shows more. */
const MAX_TURN_CHARS = 600;

export function markdownTable(t: Table): string {
  const header = `| ${t.columns.map(cell).join(' | ')} |`;
  const rule = `|${t.numeric.map((n) => (n ? ' ---: ' : ' --- ')).join('|')}|`;
  const rows = t.rows.map((r) => `| ${r.map(cell).join(' | ')} |`);
  return [header, rule, ...rows].join('\n');
}

function transcriptMarkdown(t: Transcript): string {
  const quote = (s: string) =>
    text(s.length > MAX_TURN_CHARS ? `${s.slice(0, MAX_TURN_CHARS)} … (shortened)` : s)
      .split(/\r?\n/)
      .map((line) => `> ${line}`)
      .join('\n');
  const turns = t.turns.map((turn) => `> **${text(turn.role)}:**\n${quote(turn.content)}`).join('\n>\n');
  const judge = t.judge ? `\n>\n> **verdict: ${text(t.judge.verdict)}.** ${text(t.judge.reason).replace(/\r?\n/g, ' ')}` : '';
  return `**${text(t.evaluation)} · ${text(t.subject)}**\n\n${turns}${judge}`;
}

function sectionMarkdown(s: Section): string {
  if (s.missing) return `_${text(s.title)}: omitted. ${text(s.missing)}_`;
  const parts = [`## ${text(s.title)}`];
  if (s.description) parts.push(text(s.description));
  for (const t of s.tables) parts.push(`**${text(t.caption)}**\n\n${markdownTable(t)}`);
  for (const t of s.transcripts ?? []) parts.push(transcriptMarkdown(t));
  return parts.join('\n\n');
}

export function renderMarkdown(data: ReportData, sections: Section[]): string {
  const facts = runFacts(data)
    .map(([k, v]) => `${text(k)}: ${text(v)}`)
    .join(' · ');
  return [`# ${text(data.title)}`, facts, ...sections.map(sectionMarkdown)].join('\n\n') + '\n';
}
