/**
 * A direction per layer (a persona vector or the assistant axis) with what it was made from, saved as
 * JSON or as safetensors (one [layers, hidden] f32 tensor "vectors", the rest in __metadata__).
 */
import { mkdirSync, readFileSync, renameSync } from 'node:fs';
import { dirname, extname } from 'node:path';
import { z } from 'zod';
import { InputError } from '../core/errors.js';
import { writeFileAtomic } from '../core/journal.js';
import { SafetensorsFile, writeSafetensors } from '../engine/io/index.js';

export interface LayerVectors {
  kind: 'persona' | 'assistantAxis';
  /** The trait text (persona vectors), or "assistant" for the axis. */
  trait: string;
  modelId: string;
  /** 0-based layers (the residual stream leaving block l), aligned with `vectors`. */
  layers: number[];
  vectors: Float32Array[];
  /** Rows averaged on each side (kept pairs for a persona vector; replies for the axis). */
  nPositive: number;
  nNegative: number;
  /** Free-form provenance: the layer the sweep chose, options, counts. */
  meta: Record<string, string | number | boolean | null>;
}

const metaSchema = z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()]));
const fileSchema = z
  .object({
    kind: z.enum(['persona', 'assistantAxis']),
    trait: z.string(),
    modelId: z.string(),
    layers: z.array(z.number().int().nonnegative()),
    vectors: z.array(z.array(z.number())),
    nPositive: z.number().int().nonnegative(),
    nNegative: z.number().int().nonnegative(),
    meta: metaSchema,
  })
  .strict();

/** The vector at `layer`. */
export function vectorAt(v: LayerVectors, layer: number): Float32Array {
  const i = v.layers.indexOf(layer);
  if (i < 0) throw new RangeError(`${v.kind} vector "${v.trait}" has no layer ${layer} (has ${v.layers.join(', ')})`);
  return v.vectors[i];
}

/** Writes `.json` or `.safetensors` (by the file's extension), whole or not at all. */
export function saveVectors(path: string, v: LayerVectors): void {
  if (extname(path) === '.json') {
    const { vectors, ...rest } = v;
    writeFileAtomic(path, JSON.stringify({ ...rest, vectors: vectors.map((x) => Array.from(x)) }) + '\n');
    return;
  }
  const hidden = v.vectors[0]?.length ?? 0;
  const data = new Float32Array(v.vectors.length * hidden);
  v.vectors.forEach((x, i) => data.set(x, i * hidden));
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeSafetensors(tmp, [{ name: 'vectors', shape: [v.vectors.length, hidden], data }], {
    kind: v.kind,
    trait: v.trait,
    modelId: v.modelId,
    layers: JSON.stringify(v.layers),
    nPositive: String(v.nPositive),
    nNegative: String(v.nNegative),
    meta: JSON.stringify(v.meta),
  });
  renameSync(tmp, path);
}

export function loadVectors(path: string): LayerVectors {
  if (extname(path) === '.json') {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      throw new InputError(path, '', `a JSON vector file (${(error as Error).message})`);
    }
    const parsed = fileSchema.safeParse(raw);
    if (!parsed.success) throw InputError.fromZod(path, parsed.error);
    return { ...parsed.data, vectors: parsed.data.vectors.map((x) => Float32Array.from(x)) };
  }
  const file = SafetensorsFile.open(path);
  try {
    const m = file.metadata;
    const layers = z.array(z.number().int().nonnegative()).safeParse(JSON.parse(m.layers ?? 'null'));
    if (!layers.success) throw new InputError(path, '__metadata__.layers', 'a JSON array of layer numbers');
    const kind = z.enum(['persona', 'assistantAxis']).safeParse(m.kind);
    if (!kind.success) throw new InputError(path, '__metadata__.kind', '"persona" or "assistantAxis"');
    const info = file.info('vectors');
    if (info.shape.length !== 2 || info.shape[0] !== layers.data.length) {
      throw new InputError(path, 'vectors', `a [${layers.data.length}, hidden] tensor (found [${info.shape.join(', ')}])`);
    }
    const data = file.readFloat32('vectors');
    const hidden = info.shape[1];
    return {
      kind: kind.data,
      trait: m.trait ?? '',
      modelId: m.modelId ?? '',
      layers: layers.data,
      vectors: layers.data.map((_, i) => data.slice(i * hidden, (i + 1) * hidden)),
      nPositive: Number(m.nPositive ?? 0),
      nNegative: Number(m.nNegative ?? 0),
      meta: metaSchema.parse(JSON.parse(m.meta ?? '{}')),
    };
  } finally {
    file.close();
  }
}
