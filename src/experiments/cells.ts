/**
 * The matrix's cells on disk: where a cell trains (adapters/<persona>/<method>[-<format>]/seed-<n>),
 * its key in the train journal, its eval subject name, and what the train journal keeps of it
 * (journals/train/adapters.jsonl, published as schema/trained-cell.schema.json).
 */
import { z } from 'zod';
import { cellSchema } from '../core/cell.js';
import type { RunDir } from '../core/journal.js';
import { personaSlug } from '../core/slug.js';
import { cellStartSchema } from './continued.js';
import { cellLabel } from './methods/index.js';

/** A cell as the matrix plans it, before its options hash is known (that needs its datasets). */
export interface PlannedCell {
  persona: string;
  slug: string;
  method: string;
  format: string | null;
  seed: number;
  /** A mixture cell's personas (constitution names); its persona is their names joined by "+". */
  members?: string[];
  /** Set when the cell was trained anew beside an older one under changed options (--on-change redo): the new options' hash, short. */
  variant?: string;
}

/** The value of one line of journals/train/adapters.jsonl: a finished cell. */
export const trainedCellSchema = z
  .object({
    cell: cellSchema,
    slug: z.string().describe("The persona's folder name (adapters/<slug>/...)."),
    members: z.array(z.string()).optional().describe("A mixture cell's personas (constitution names), trained together into one adapter."),
    variant: z.string().optional().describe('Set when the cell was trained anew beside an older one under changed options: the short hash its key, directory and subject name end with (@<variant>).'),
    output: z.string().describe('The PEFT adapter directory (or, for full-parameter training, the model directory), relative to the run directory.'),
    kind: z.enum(['adapter', 'model']),
    metrics: z.record(z.string(), z.unknown()),
    resumedFrom: z.number().int().nonnegative().describe('The trainer checkpoint step this invocation continued from (0: trained from the start).'),
    start: cellStartSchema.optional().describe('Set for a continued cell (run.continue): the cell it was trained from and what its adapter applies to.'),
  })
  .strict();
export type TrainedCell = z.infer<typeof trainedCellSchema>;

/** The persona folders whose datasets a cell reads: its own, or each member's for a mixture cell. */
export const datasetSlugs = (c: { slug: string; members?: string[] }): string[] => (c.members ? c.members.map(personaSlug) : [c.slug]);

type Located = Pick<PlannedCell, 'slug' | 'method' | 'format' | 'seed' | 'variant'>;

const variantSuffix = (c: Located) => (c.variant ? `@${c.variant}` : '');

/** The journal key of a cell: <persona>/<method>[-<format>]/seed-<n>. */
export const cellKey = (c: Located): string => `${c.slug}/${cellLabel(c.method, c.format)}/seed-${c.seed}${variantSuffix(c)}`;
/** The eval subject name of a trained cell: <persona>.<method>[-<format>].seed-<n>. */
export const cellSubjectName = (c: Located): string => `${c.slug}.${cellLabel(c.method, c.format)}.seed-${c.seed}${variantSuffix(c)}`;
export const cellDir = (run: RunDir, c: Located): string => run.path('adapters', c.slug, cellLabel(c.method, c.format), `seed-${c.seed}${variantSuffix(c)}`);

/** The train journal, read and written with its published schema. */
export const trainJournal = (run: RunDir) => run.journal('train/adapters', trainedCellSchema);
