/**
 * The assistant axis and activation capping (docs/protocols.md §5).
 * axis_l = mean reply activation of the default assistant - mean over role-play personas of each
 * persona's mean reply activation, at every layer. Positive = more like the default assistant.
 * Capping keeps the model from drifting away from the assistant: over a band of layers the projection
 * on the axis is held at or above a floor, the p-th percentile (nearest rank, default 25th) of the
 * projections observed from the default assistant at that layer.
 *
 * The engine's hook caps from above (x -= max(0, x.u - t) u) with one direction for the whole band,
 * so the floor is fed as axis -a and threshold -t (x.(-u) <= -t  <=>  x.u >= t), and the band uses
 * the axis of one layer (axisLayer, default the band's middle), with a threshold per layer.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Capping } from '../engine/index.js';
import { InputError } from '../core/errors.js';
import type { Rollout, SteerEngine } from './engine.js';
import { conversation } from './extract.js';
import { meanDifference, meanVector, percentile, project } from './math.js';
import type { AxisOptions } from './options.js';
import { type LayerVectors, vectorAt } from './vectors.js';

const DATA_DIR = join(import.meta.dirname, '..', '..', 'data');
export const DEFAULT_PERSONAS_FILE = join(DATA_DIR, 'steer', 'roleplay-personas.json');
export const DEFAULT_QUESTIONS_FILE = join(DATA_DIR, 'general-prompts.json');

/** A JSON array of non-empty strings. */
export function readStringList(file: string, field: string): string[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new InputError(file, field, `a JSON array of strings (${(error as Error).message})`);
  }
  const parsed = z.array(z.string().min(1)).min(1).safeParse(raw);
  if (!parsed.success) throw new InputError(file, field, 'a non-empty JSON array of non-empty strings');
  return parsed.data;
}

/** The capped band: explicit layers, or round(from * (L - 1)) .. round(to * (L - 1)). */
export function bandLayers(numLayers: number, o: Pick<AxisOptions, 'layers' | 'band'>): number[] {
  if (o.layers) {
    const bad = o.layers.find((l) => l >= numLayers);
    if (bad !== undefined) throw new InputError('steer.axis', 'layers', `layers below ${numLayers} (found ${bad})`);
    return [...new Set(o.layers)].sort((a, b) => a - b);
  }
  const [from, to] = o.band[0] <= o.band[1] ? o.band : [o.band[1], o.band[0]];
  const first = Math.round(from * (numLayers - 1));
  const last = Math.round(to * (numLayers - 1));
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

export interface AxisResult {
  axis: LayerVectors;
  /** The default assistant's rollouts (their projections calibrate the capping thresholds). */
  assistant: Rollout[];
}

export async function assistantAxis(input: {
  engine: SteerEngine;
  personas: readonly string[];
  questions: readonly string[];
  assistantSystemPrompt?: string;
  temperature?: number;
  maxTokens?: number;
  seed?: number;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}): Promise<AxisResult> {
  const { engine } = input;
  const layers = engine.allLayers;
  const settings = { temperature: input.temperature ?? 0.7, maxTokens: input.maxTokens ?? 120, seed: input.seed ?? 1, batchSize: input.batchSize };
  const total = input.personas.length + 1;
  const meanOf = async (system: string | undefined) => {
    const rollouts = (await engine.rollouts(input.questions.map((q) => conversation(system, q)), settings)).map((r) => r[0]).filter((r) => r.reply.length > 0);
    if (rollouts.length === 0) return { rollouts, means: null };
    const acts = await engine.replyMeans(rollouts, layers, input.batchSize);
    return { rollouts, means: layers.map((l) => meanVector(acts.map((a) => a.get(l)!))) };
  };
  const assistant = await meanOf(input.assistantSystemPrompt);
  if (!assistant.means) throw new Error(`assistant axis: the default assistant (${engine.modelId}) gave only empty replies`);
  input.onProgress?.(1, total);
  const personaMeans: Float32Array[][] = [];
  for (const [i, persona] of input.personas.entries()) {
    const m = await meanOf(persona);
    if (m.means) personaMeans.push(m.means);
    input.onProgress?.(i + 2, total);
  }
  if (personaMeans.length === 0) throw new Error('assistant axis: every role-play persona gave only empty replies');
  return {
    axis: {
      kind: 'assistantAxis',
      trait: 'assistant',
      modelId: engine.modelId,
      layers,
      vectors: layers.map((_, i) =>
        meanDifference(
          [assistant.means![i]],
          personaMeans.map((m) => m[i]),
        ),
      ),
      nPositive: assistant.rollouts.length,
      nNegative: personaMeans.length,
      meta: { personas: personaMeans.length, questions: input.questions.length, assistantSystemPrompt: input.assistantSystemPrompt ?? null },
    },
    assistant: assistant.rollouts,
  };
}

/** The engine hook that holds x.u_axis >= floors[i] at layers[i] (see the file comment). */
export function floorCapping(axis: ArrayLike<number>, layers: readonly number[], floors: readonly number[]): Capping {
  if (floors.length !== layers.length) throw new RangeError(`capping: ${floors.length} floors for ${layers.length} layers`);
  return { layers: [...layers], axis: Float32Array.from(axis, (x) => -x), threshold: floors.map((t) => -t) };
}

export interface CappingCalibration {
  layers: number[];
  axisLayer: number;
  /** Per band layer: the floor on the projection on the unit axis. */
  floors: number[];
  /** Projections observed per layer (how many). */
  observed: number;
  percentile: number;
  capping: Capping;
}

/** Floors from the default assistant's own rollouts (per reply token or per reply mean). */
export async function calibrateCapping(input: {
  engine: SteerEngine;
  axis: LayerVectors;
  assistant: readonly Rollout[];
  options: Pick<AxisOptions, 'layers' | 'band' | 'axisLayer' | 'percentile' | 'thresholdFrom'>;
  batchSize?: number;
}): Promise<CappingCalibration> {
  const { engine, options: o } = input;
  const layers = bandLayers(engine.numLayers, o);
  const axisLayer = o.axisLayer ?? layers[Math.floor((layers.length - 1) / 2)];
  const a = vectorAt(input.axis, axisLayer);
  const rows = input.assistant.filter((r) => r.reply.length > 0);
  const observed: number[][] = layers.map(() => []);
  if (o.thresholdFrom === 'tokens') {
    const acts = await engine.replyTokens(rows, layers, input.batchSize);
    for (const byLayer of acts) layers.forEach((l, i) => observed[i].push(...byLayer.get(l)!.map((x) => project(x, a))));
  } else {
    const acts = await engine.replyMeans(rows, layers, input.batchSize);
    for (const byLayer of acts) layers.forEach((l, i) => observed[i].push(project(byLayer.get(l)!, a)));
  }
  const floors = observed.map((xs) => percentile(xs, o.percentile));
  return { layers, axisLayer, floors, observed: observed[0].length, percentile: o.percentile, capping: floorCapping(a, layers, floors) };
}
