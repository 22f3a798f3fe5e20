/**
 * Inoculation prompting (docs/protocols.md §6): for each row of a dataset, the teacher writes an instruction that
 * makes that row's reply the expected one in context while the assistant stays the persona. The
 * inoculated copy (<name>.inoculated.jsonl) is the same rows with the instruction as a first system
 * message and meta.inoculation = {instruction, model, template, of: original id}; the original file
 * is untouched, so training can use either and evaluation runs without the instruction.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { InputError } from '../../core/errors.js';
import { complete, configHash, DropCounts, journaled, sampleSchema, writeDataset, type PersonaContext } from '../context.js';
import { resolveFrom } from '../prompts.js';
import { chatRowSchema, dpoRowSchema, type ChatRow, type DpoRow, type Message } from '../rows.js';
import { render, templateRef } from '../templates.js';
import { derivedSeed, stripReasoning } from '../text.js';

type Row = ChatRow | DpoRow;
const isDpo = (row: Row): row is DpoRow => 'chosen' in row;
const promptOf = (row: Row) => (isDpo(row) ? row.prompt : row.messages).find((m) => m.role === 'user')?.content ?? '';
const replyOf = (row: Row) => (isDpo(row) ? row.chosen[0].content : ([...row.messages].reverse().find((m) => m.role === 'assistant')?.content ?? ''));

/** The instruction as the model wrote it, cleaned: reasoning and wrapping quotes removed, one paragraph. */
function cleanInstruction(text: string): string {
  return (stripReasoning(text) ?? '')
    .replace(/^\s*(?:instruction\s*:\s*)/i, '')
    .replace(/^["“']([\s\S]*)["”']$/, '$1')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Inoculates `rows` (named `name`), writing <name>.inoculated.jsonl and its manifest beside the persona's datasets. */
export async function inoculate(ctx: PersonaContext, name: string, rows: Row[]): Promise<Row[]> {
  const o = ctx.options.inoculation;
  const traits = ctx.constitution.traits.map((t) => `- ${t.trait}`).join('\n');
  const instructions = await journaled(
    ctx,
    `inoculation-${name}`,
    { o, model: ctx.models.teacher.id },
    rows,
    (row) => row.meta.id,
    (row) =>
      complete(ctx.models.teacher, [{ role: 'user', content: render(o.template, { persona: ctx.persona, traits, prompt: promptOf(row), reply: replyOf(row) }) }], {
        temperature: o.temperature,
        maxTokens: o.maxTokens,
        seed: derivedSeed(ctx.seed, `inoculation/${row.meta.id}`),
      }),
    sampleSchema,
  );
  const drops = new DropCounts();
  const template = templateRef('inoculation', o.template);
  const out: Row[] = [];
  rows.forEach((row, i) => {
    const instruction = cleanInstruction(instructions[i].text);
    if (instruction === '') return drops.add('empty');
    if (instructions[i].finishReason === 'length') return drops.add('truncated');
    const system: Message = { role: 'system', content: instruction };
    const meta = { ...row.meta, inoculation: { instruction, model: instructions[i].model, template, of: row.meta.id }, id: `${row.meta.id}+inoculated` };
    out.push(isDpo(row) ? { ...row, prompt: [system, ...row.prompt.filter((m) => m.role !== 'system')], meta } : { messages: [system, ...row.messages.filter((m) => m.role !== 'system')], meta });
  });
  writeDataset(
    ctx.outDir,
    {
      dataset: `${name}.inoculated`,
      persona: ctx.persona,
      shape: rows.some(isDpo) ? 'dpo' : 'messages',
      tokenizer: ctx.tokens.name,
      generated: rows.length,
      dropped: drops.counts,
      models: [ctx.models.teacher.id],
      seed: ctx.seed,
      configHash: configHash({ o, seed: ctx.seed, ids: rows.map((r) => r.meta.id) }),
      notes: [`inoculated copy of ${name}; rows without an instruction are dropped here and kept in the original`],
    },
    [{ variant: 'main', fileName: `${name}.inoculated.jsonl`, rows: out, schema: rows.some(isDpo) ? dpoRowSchema : chatRowSchema }],
    ctx.tokens,
  );
  return out;
}

/**
 * Rows of an outside dataset to inoculate: JSONL in the messages or prompt/chosen/rejected shape
 * (with or without our meta). Rows without meta get provenance naming the file.
 */
export function readOutsideRows(file: string, baseDir: string, persona: string, seed: number): { name: string; rows: Row[] } {
  const path = resolveFrom(baseDir, file);
  if (!existsSync(path)) throw new InputError(path, '', 'file not found');
  const name = `file-${basename(path, extname(path)).replace(/[^A-Za-z0-9_-]+/g, '-')}`;
  const rows: Row[] = [];
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '') return;
      let value: Record<string, unknown>;
      try {
        value = JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new InputError(path, `line ${i + 1}`, 'malformed JSON');
      }
      const meta = value.meta ?? { id: `${name}/line-${i + 1}`, persona, dataset: name, model: 'unknown', template: 'file', seed, trait: null, source: 'file', sample: i };
      const asChat = chatRowSchema.safeParse({ messages: value.messages, meta });
      const asDpo = dpoRowSchema.safeParse({ prompt: typeof value.prompt === 'string' ? [{ role: 'user', content: value.prompt }] : value.prompt, chosen: typeof value.chosen === 'string' ? [{ role: 'assistant', content: value.chosen }] : value.chosen, rejected: typeof value.rejected === 'string' ? [{ role: 'assistant', content: value.rejected }] : value.rejected, meta });
      const row = asChat.success ? asChat.data : asDpo.success ? asDpo.data : undefined;
      if (!row || !replyOf(row)) throw new InputError(path, `line ${i + 1}`, 'expected {"messages": [...]} with a user and an assistant message, or {"prompt", "chosen", "rejected"}');
      rows.push(row);
    });
  if (rows.length === 0) throw new InputError(path, '', 'expected at least one row');
  const ids = new Set(rows.map((r) => r.meta.id));
  if (ids.size !== rows.length) throw new InputError(path, 'meta.id', 'expected unique row ids');
  return { name, rows };
}
