/**
 * Sample transcripts from the eval journals: journals/evals/<eval>/<subject>.jsonl, one
 * {key, value: {subject, sample, solved, score}} line per item, each parsed with the schema its writer
 * used (readEvalLine: the eval's own record schemas). Shapes differ per eval, so the conversation is
 * read from the fields they share (a prompt or question, a reply or a list of turns, a judge panel
 * {value, raw}); records that are not a conversation are skipped.
 * Read-only: the journals are parsed here, never opened for appending (Journal.open would trim them).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Transcript } from './model.js';
import { readEvalLine, type ScoredRecord } from '../evals/index.js';

/** Transcripts shown per eval, and in all. */
const PER_EVAL = 2;
const MAX_TOTAL = 14;
/** Evals whose transcripts say most about a persona come first. */
const EVAL_ORDER = ['identity', 'prefill', 'leakage', 'preferences', 'traitExpression', 'drift', 'classifier', 'capability', 'psychometrics'];
/** Journals under an eval's folder that are not per-subject records. */
const NOT_SUBJECTS = new Set(['training', 'openings', 'pairwise']);

type Turn = Transcript['turns'][number];
type Record_ = Record<string, unknown>;

const isRecord = (x: unknown): x is Record_ => typeof x === 'object' && x !== null && !Array.isArray(x);
const isScalar = (x: unknown): x is string | number | boolean => ['string', 'number', 'boolean'].includes(typeof x);

function firstString(o: Record_, fields: string[]): string | undefined {
  for (const f of fields) if (typeof o[f] === 'string' && o[f] !== '') return o[f] as string;
  return undefined;
}

/** The conversation of an eval record (prompt, prefill opening, reply or drift turns); undefined without a reply. */
export function turnsOf(sample: unknown, solved: unknown): Turn[] | undefined {
  const turns: Turn[] = [];
  if (isRecord(sample)) {
    const prompt = firstString(sample, ['prompt', 'question', 'text']);
    if (prompt) turns.push({ role: 'user', content: prompt });
    // Prefill: the base model wrote the first reply, the subject continues after the follow-up.
    if (typeof sample.opening === 'string') turns.push({ role: 'base model (prefill)', content: sample.opening });
  }
  if (!isRecord(solved)) return undefined;
  if (Array.isArray(solved.turns)) {
    // Drift: a whole conversation with the user simulator.
    turns.length = 0;
    for (const t of solved.turns.filter(isRecord)) {
      if (typeof t.user === 'string') turns.push({ role: 'user', content: t.user });
      if (typeof t.reply === 'string') turns.push({ role: 'assistant', content: t.reply });
    }
  } else if (typeof solved.reply === 'string') turns.push({ role: 'assistant', content: solved.reply });
  return turns.some((t) => t.role === 'assistant') ? turns : undefined;
}

/** "a: 1, b: true" for the scalar fields of a verdict. */
function describe(value: unknown): string {
  if (isScalar(value)) return String(value);
  if (!isRecord(value)) return '';
  return Object.entries(value)
    .filter(([, v]) => isScalar(v))
    .map(([k, v]) => `${k}: ${String(v)}`)
    .join(', ');
}

/** The first JSON object inside a judge's raw reply, if any. */
function jsonIn(text: string): Record_ | undefined {
  const start = text.indexOf('{');
  const end = text.lastIndexOf('}');
  if (start < 0 || end <= start) return undefined;
  try {
    const parsed: unknown = JSON.parse(text.slice(start, end + 1));
    return isRecord(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

const isPanel = (x: unknown): x is Record_ => isRecord(x) && 'value' in x && isRecord(x.raw);

/** The reason a judge gave in its last raw reply: a JSON field, or the reply itself when it is not JSON. */
function reasonOf(panel: Record_): string {
  const replies = Object.values(panel.raw as Record_).find(Array.isArray) ?? [];
  const last = replies.filter((r): r is string => typeof r === 'string').at(-1) ?? '';
  const parsed = jsonIn(last);
  if (parsed) return firstString(parsed, ['reason', 'reasoning', 'explanation', 'rationale']) ?? '';
  return /^\s*[\d.]+\s*$/.test(last) ? '' : last.trim();
}

/**
 * The verdict and reason of a scored record: judge panels ({value, byJudge, raw}; under "judge" or
 * under a measure's name such as "expression") and the code scorer's plain fields ("correct").
 */
function judgeOf(score: unknown): Transcript['judge'] {
  if (!isRecord(score)) return undefined;
  const parts: string[] = [];
  let reason = '';
  for (const [field, value] of Object.entries(score)) {
    if (isPanel(value)) {
      const verdict = value.value === null || value.value === undefined ? 'unparseable (dropped)' : describe(value.value);
      parts.push(field === 'judge' ? verdict : `${field}: ${isScalar(value.value) ? verdict : `(${verdict})`}`);
      reason ||= reasonOf(value);
    } else if (isScalar(value)) parts.push(`${field}: ${String(value)}`);
  }
  const verdict = parts.filter(Boolean).join(', ');
  return verdict || reason ? { verdict: verdict || 'no verdict', reason } : undefined;
}

/** The journal's records in the order of their keys: journals are in completion order, which varies between identical runs. */
function recordsIn(file: string, evaluation: string): ScoredRecord<unknown, unknown, unknown>[] {
  const out: { key: string; value: ScoredRecord<unknown, unknown, unknown> }[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      continue; // a torn last line: the item was in flight
    }
    const record = readEvalLine(evaluation, json);
    if (record) out.push(record);
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)).map((r) => r.value);
}

/** A transcript for one subject of one eval: the first record by key, preferring one with a judge's reason. */
function transcriptIn(file: string, evaluation: string, subject: string): Transcript | undefined {
  let fallback: Transcript | undefined;
  for (const record of recordsIn(file, evaluation)) {
    const turns = turnsOf(record.sample, record.solved);
    if (!turns) continue;
    const judge = judgeOf(record.score);
    const transcript = { evaluation, subject: record.subject?.name ?? subject, turns, ...(judge ? { judge } : {}) };
    if (judge?.reason) return transcript;
    fallback ??= transcript;
  }
  return fallback;
}

/** Up to PER_EVAL transcripts per eval, subjects other than the `baselines` first. */
export function readTranscripts(runDir: string, baselines: string[]): Transcript[] {
  const root = join(runDir, 'journals', 'evals');
  if (!existsSync(root)) return [];
  const rank = (e: string) => (EVAL_ORDER.includes(e) ? EVAL_ORDER.indexOf(e) : EVAL_ORDER.length);
  const evals = readdirSync(root)
    .filter((e) => statSync(join(root, e)).isDirectory())
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const out: Transcript[] = [];
  for (const evaluation of evals) {
    const files = readdirSync(join(root, evaluation))
      .filter((f) => f.endsWith('.jsonl') && !NOT_SUBJECTS.has(f.slice(0, -'.jsonl'.length)))
      .sort();
    const found = files.flatMap((f) => transcriptIn(join(root, evaluation, f), evaluation, f.slice(0, -'.jsonl'.length)) ?? []);
    // Trained subjects first: their replies are what the report is about.
    found.sort((a, b) => Number(baselines.includes(a.subject)) - Number(baselines.includes(b.subject)));
    out.push(...found.slice(0, PER_EVAL));
    if (out.length >= MAX_TOTAL) break;
  }
  return out.slice(0, MAX_TOTAL);
}
