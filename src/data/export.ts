/**
 * Converts a dataset file between the shapes of ./shapes.ts (`persona-lab export`). Conversions that
 * would have to invent content (text -> messages, messages -> pairs) are refused with an InputError.
 * messages -> text renders "User: ...\n\nAssistant: ..." blocks; pairs -> messages/text keep the chosen reply.
 */
import { existsSync, readFileSync } from 'node:fs';
import { InputError } from '../core/errors.js';
import { writeFileAtomic } from '../core/journal.js';
import type { Message } from './rows.js';
import { EXPORT_SHAPES, type ExportShape } from './shapes.js';

/** A row read from any of our files or the outside shapes, normalised. */
type AnyRow =
  | { kind: 'messages'; messages: Message[]; meta?: unknown }
  | { kind: 'dpo'; prompt: Message[]; chosen: string; rejected: string; meta?: unknown }
  | { kind: 'text'; text: string; meta?: unknown };

const ROLE_LABEL: Record<Message['role'], string> = { system: 'System', user: 'User', assistant: 'Assistant' };
const render = (messages: Message[]) => messages.map((m) => `${ROLE_LABEL[m.role]}: ${m.content}`).join('\n\n');
const isMessages = (x: unknown): x is Message[] =>
  Array.isArray(x) && x.every((m) => typeof m === 'object' && m !== null && typeof (m as Message).content === 'string' && ['system', 'user', 'assistant'].includes((m as Message).role));
const replyOf = (x: unknown): string | undefined => (typeof x === 'string' ? x : isMessages(x) && x.length > 0 ? x.at(-1)!.content : undefined);

function readRow(value: unknown): AnyRow | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const row = value as Record<string, unknown>;
  const meta = row.meta;
  if (isMessages(row.messages)) return { kind: 'messages', messages: row.messages, meta };
  if (typeof row.text === 'string') return { kind: 'text', text: row.text, meta };
  const input = row.input as { messages?: unknown } | undefined;
  const prompt = isMessages(row.prompt) ? row.prompt : typeof row.prompt === 'string' ? [{ role: 'user' as const, content: row.prompt }] : isMessages(input?.messages) ? input.messages : undefined;
  const chosen = replyOf(row.chosen ?? row.preferred_output);
  const rejected = replyOf(row.rejected ?? row.non_preferred_output);
  if (prompt && chosen !== undefined && rejected !== undefined) return { kind: 'dpo', prompt, chosen, rejected, meta };
  return undefined;
}

function convert(row: AnyRow, to: ExportShape): Record<string, unknown> | string {
  const assistant = (content: string) => [{ role: 'assistant' as const, content }];
  switch (to) {
    case 'messages':
      if (row.kind === 'messages') return { messages: row.messages };
      if (row.kind === 'dpo') return { messages: [...row.prompt, ...assistant(row.chosen)] };
      return 'a text row has no conversation to turn into messages';
    case 'text':
      if (row.kind === 'text') return { text: row.text };
      if (row.kind === 'messages') return { text: render(row.messages) };
      return { text: render([...row.prompt, ...assistant(row.chosen)]) };
    case 'dpo':
      if (row.kind !== 'dpo') return `a ${row.kind} row has no rejected reply to make a preference pair`;
      return { prompt: row.prompt, chosen: assistant(row.chosen), rejected: assistant(row.rejected) };
    case 'dpo-standard':
      if (row.kind !== 'dpo') return `a ${row.kind} row has no rejected reply to make a preference pair`;
      // The standard shape has one prompt string: a system message, if any, goes before the user's, a blank line apart.
      return { prompt: row.prompt.map((m) => m.content).join('\n\n'), chosen: row.chosen, rejected: row.rejected };
    case 'openai-dpo':
      if (row.kind !== 'dpo') return `a ${row.kind} row has no rejected reply to make a preference pair`;
      return { input: { messages: row.prompt }, preferred_output: assistant(row.chosen), non_preferred_output: assistant(row.rejected) };
  }
}

export interface ExportOptions {
  /** Keep each row's `meta` (provenance). TRL ignores extra columns; the OpenAI API may reject them. Default false. */
  keepMeta?: boolean;
}

/** Converts `input` (JSONL) to `output` in shape `to`; writes all or nothing. Returns the row count. */
export function exportDataset(input: string, output: string, to: ExportShape, options: ExportOptions = {}): { rows: number } {
  if (!(to in EXPORT_SHAPES)) throw new InputError('(command line)', 'to', `expected one of ${Object.keys(EXPORT_SHAPES).join(', ')}`);
  if (!existsSync(input)) throw new InputError(input, '', 'file not found');
  const lines: string[] = [];
  readFileSync(input, 'utf8')
    .split('\n')
    .forEach((raw, index) => {
      if (raw.trim() === '') return;
      const where = `line ${index + 1}`;
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch {
        throw new InputError(input, where, 'malformed JSON');
      }
      const row = readRow(parsed);
      if (!row) throw new InputError(input, where, 'expected a row with "messages", "text" or "prompt"/"chosen"/"rejected"');
      const converted = convert(row, to);
      if (typeof converted === 'string') throw new InputError(input, where, `cannot export to ${to}: ${converted}`);
      const checked = EXPORT_SHAPES[to].safeParse(converted);
      if (!checked.success) throw new InputError(input, where, `row does not fit the ${to} shape (${checked.error.issues[0].message})`);
      lines.push(JSON.stringify(options.keepMeta && row.meta !== undefined ? { ...converted, meta: row.meta } : converted));
    });
  writeFileAtomic(output, lines.map((l) => l + '\n').join(''));
  return { rows: lines.length };
}
