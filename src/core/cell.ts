/**
 * A trained cell's identity: which persona, method, format and seed it is, which training backend
 * made it, and a hash of the options that trained it. It travels unflattened from the runner through
 * the train journal and the eval summary to the report and the dashboard, so they can group by any
 * of its parts (pool over seeds, contrast formats or methods).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';

export const cellSchema = z
  .object({
    persona: z.string().describe("The constitution's name."),
    method: z.string().describe('The training method (a key of the method registry, e.g. sft, dpo, dpo-introspection, grpo).'),
    format: z.string().nullable().describe('The data format trained on (sft: chat, introspection, documents, ...); null for methods with one dataset.'),
    seed: z.number().int(),
    backend: z.string().describe('The training backend that made the adapter (engine, trl, ...).'),
    optionsHash: z.string().describe('Hash of every option that trained the cell (see hashOptions); a change means a different cell.'),
  })
  .strict();

export type CellIdentity = z.infer<typeof cellSchema>;

/** JSON with object keys sorted at every level, so equal values hash equally whatever their key order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/** A short, stable hash of an options value (16 hex digits of SHA-256 over canonical JSON). */
export function hashOptions(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value) ?? 'undefined').digest('hex').slice(0, 16);
}

/**
 * A steered or capped subject's identity, the white-box counterpart of a trained cell: which persona
 * and trait vector, the layer and coefficient it steers with, the capping band and percentile, and a
 * hash of the steer options that made them.
 */
export const steeringSchema = z
  .object({
    persona: z.string().nullable().describe("The constitution's name (null for a persona-less capped model)."),
    trait: z.string().nullable().describe('The trait whose persona vector steers (null when only capped).'),
    traitIndex: z.number().int().nullable(),
    layer: z.number().int().nullable().describe('The steered layer (0-based, the residual stream leaving block l).'),
    coef: z.number().nullable(),
    positions: z.enum(['all', 'prompt', 'reply']).nullable(),
    cap: z
      .object({ layers: z.array(z.number().int()), axisLayer: z.number().int(), percentile: z.number() })
      .strict()
      .nullable()
      .describe('Capping along the assistant axis: the band, the layer of the axis, the percentile of the calibrated floors.'),
    seed: z.number().int().optional().describe('The run seed whose steer stage made the vector, sweep choice and calibration.'),
    optionsHash: z.string().describe("Hash of the steer options behind the vector, sweep and calibration."),
  })
  .strict();

export type SteeringIdentity = z.infer<typeof steeringSchema>;
