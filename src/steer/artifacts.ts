/**
 * The JSON files the steer stage writes under <run>/steer/, one zod schema each (published in
 * schema/). They describe the files as written: numbers that may be undefined in memory (NaN
 * interval bounds, an unbounded coherence floor) are null on disk. The writer validates with the
 * same schema every reader parses with.
 */
import { z } from 'zod';
import { cellSchema } from '../core/cell.js';
import { writeFileAtomic } from '../core/journal.js';

/** A number as JSON keeps it: NaN and infinities become null. */
const jsonNumber = z.number().nullable();

const sweepStatsShape = {
  expression: z.number().nullable(),
  coherence: z.number().nullable(),
  n: z.number().int().nonnegative().describe('Replies with an expression score.'),
};

/** steer/<persona>/t<trait>/sweep.json: the layer x coefficient sweep and the layer it chose. */
export const sweepFileSchema = z
  .object({
    baseline: z.object(sweepStatsShape).strict(),
    cells: z.array(
      z
        .object({
          ...sweepStatsShape,
          layer: z.number().int(),
          coef: z.number(),
          movement: z.number().nullable().describe('expression - baseline expression.'),
          admissible: z.boolean(),
        })
        .strict(),
    ),
    chosen: z
      .object({ layer: z.number().int(), coef: z.number(), movement: z.number(), coherence: z.number() })
      .strict()
      .nullable()
      .describe('The cell chosen on the selection half; null when no cell raised expression at equal coherence ("no steering effect").'),
    coherenceFloor: jsonNumber.describe('The coherence a cell needed to be admissible.'),
    halves: z
      .object({ selection: z.array(z.string()), report: z.array(z.string()) })
      .strict()
      .describe('The evaluation questions in two disjoint halves: baseline, cells and chosen above are measured on the selection half, `held` on the report half.'),
    held: z
      .object({
        baseline: z.object(sweepStatsShape).strict(),
        cells: z.array(z.object({ ...sweepStatsShape, layer: z.number().int(), coef: z.number() }).strict()),
        chosen: z
          .object({
            layer: z.number().int(),
            coef: z.number(),
            expression: jsonNumber,
            baseline: jsonNumber,
            movement: jsonNumber.describe('Mean over report-half replies of (expression - the baseline mean on the same question).'),
            low: jsonNumber,
            high: jsonNumber,
            n: z.number().int().nonnegative(),
            questions: z.number().int().nonnegative(),
            confidence: z.number(),
          })
          .strict()
          .nullable(),
      })
      .strict()
      .describe('The report half: every cell, and the chosen cell\'s movement with its interval (clustered by question).'),
  })
  .strict();

const correlationSchema = z.object({ r: jsonNumber, n: z.number().int(), low: jsonNumber, high: jsonNumber, confidence: z.number() }).strict();
const layerShiftSchema = z.object({ layer: z.number().int(), shift: jsonNumber, relative: jsonNumber }).strict();

/** steer/<persona>/t<trait>/monitor.json: projection vs expression, and fine-tuning shifts per adapter. */
export const monitorFileSchema = z
  .object({
    monitor: z
      .object({
        layer: z.number().int(),
        points: z.array(z.object({ key: z.string(), projection: jsonNumber, expression: jsonNumber }).strict()),
        correlation: correlationSchema,
        missing: z.number().int().nonnegative(),
      })
      .strict()
      .nullable(),
    shifts: z.array(
      z
        .object({
          adapter: z.string().describe('The adapter directory as configured (monitor.adapters) or, for a cell the run trained, relative to the run directory.'),
          cell: cellSchema.optional().describe('The trained cell the adapter is, when the run trained it.'),
          layers: z.array(layerShiftSchema),
        })
        .strict(),
    ),
  })
  .strict();

/** steer/<persona>/t<trait>/screen-<k>.json: the data screening of one file, one result per row. */
export const screenFileSchema = z
  .object({
    file: z.string(),
    layer: z.number().int(),
    threshold: jsonNumber,
    rows: z.array(
      z
        .object({
          datasetProjection: z.number().nullable(),
          baseProjection: z.number().nullable(),
          difference: z.number().nullable(),
          flagged: z.boolean(),
          baseReply: z.string(),
        })
        .strict(),
    ),
  })
  .strict();

const cappingShape = {
  layers: z.array(z.number().int()).describe('The capped band of layers.'),
  axisLayer: z.number().int().describe('The layer whose assistant-axis vector is capped on.'),
  floors: z.array(z.number()).describe('Per band layer: the floor on the projection on the unit axis.'),
  observed: z.number().int().nonnegative().describe('Projections observed per layer.'),
  percentile: z.number(),
};

/** steer/capping.json: the activation-capping calibration on the assistant axis. */
export const cappingFileSchema = z.object(cappingShape).strict();

/** steer/summary.json: every trait's vector, sweep, monitor and screening, and the assistant axis. */
export const steerSummarySchema = z
  .object({
    model: z.string(),
    traits: z.array(
      z
        .object({
          persona: z.string(),
          traitIndex: z.number().int().nonnegative(),
          trait: z.string(),
          vectorFile: z.string(),
          counts: z.record(z.string(), z.number().int().nonnegative()).describe('Contrastive rollouts kept and dropped, by filter.'),
          sweep: sweepFileSchema,
          monitor: z.object({ layer: z.number().int(), correlation: correlationSchema, missing: z.number().int().nonnegative() }).strict().nullable(),
          shifts: monitorFileSchema.shape.shifts,
          screened: z.array(z.object({ file: z.string(), rows: z.number().int(), flagged: z.number().int(), results: z.string() }).strict()),
        })
        .strict(),
    ),
    axis: z
      .object({ ...cappingShape, file: z.string() })
      .strict()
      .nullable(),
  })
  .strict();

/** Writes a steer artifact after checking it, as JSON will hold it, against its schema. */
export function writeSteerFile(path: string, schema: z.ZodType, value: unknown): void {
  const json: unknown = JSON.parse(JSON.stringify(value));
  const checked = schema.safeParse(json);
  if (!checked.success) throw new Error(`steer: ${path} does not match its schema: ${checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  writeFileAtomic(path, JSON.stringify(json, null, 2) + '\n');
}
