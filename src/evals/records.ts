/**
 * The eval journals' records (journals/evals/<eval>/<subject>.jsonl, one line per scored sample).
 * Each names its subject structurally - name, kind and, for a trained subject, its cell - so a reader
 * can group by persona, method, format or seed without parsing names. The writer (runEvals) and every
 * reader (report, dashboard) parse with the schema built here from the eval's own record schemas.
 */
import { z, type ZodType } from 'zod';
import { cellSchema } from '../core/cell.js';
import { journalLineOf } from '../core/journal.js';
import { judgeTalliesSchema } from './judging.js';
import { cellOf, kindOf } from './subjects.js';
import { subjectKindSchema } from './summary.js';
import type { EvalContext, Subject } from './types.js';

export const journaledSubjectSchema = z
  .object({
    name: z.string(),
    kind: subjectKindSchema,
    cell: cellSchema.nullable().describe('A trained subject\'s cell (persona, method, format, seed, backend, options hash); null for other kinds.'),
  })
  .strict();
export type JournaledSubject = z.infer<typeof journaledSubjectSchema>;

/** What a record says of the subject that produced it. */
export function journaledSubjectOf(ctx: Pick<EvalContext, 'base' | 'promptedByPersona'>, subject: Subject): JournaledSubject {
  const kind = kindOf(subject, ctx.base, ctx.promptedByPersona);
  return { name: subject.name, kind, cell: kind === 'trained' ? (cellOf(subject) ?? null) : null };
}

export const sameSubject = (a: JournaledSubject, b: JournaledSubject): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * A record of an eval whose parts `records` describes. Records of journals written before records
 * named their subject have none: with `subject` given (the journal's own subject, whose name is the
 * file's) they are read as that subject's; without, `subject` is null.
 */
export function evalRecordSchemaOf(records: { sample: ZodType; solved: ZodType; score: ZodType }, subject?: JournaledSubject) {
  return z
    .object({
      subject: journaledSubjectSchema.nullable().optional().transform((s) => s ?? subject ?? null).describe('The subject that produced the record (absent in journals of earlier versions).'),
      sample: records.sample,
      solved: records.solved,
      score: records.score,
      judgeTallies: judgeTalliesSchema.optional().describe('The judge calls this record took (so a resumed run reports the same totals).'),
    })
    .strict();
}

/** One line of any eval journal (the published schema; each eval's parts are typed by its own record schemas). */
export const evalJournalLineSchema = journalLineOf(evalRecordSchemaOf({ sample: z.unknown(), solved: z.unknown(), score: z.unknown() }));
