/**
 * Layer choice by a steering sweep (docs/protocols.md §5: "the layer that moves trait expression most at equal
 * coherence"). Every (layer, coefficient) cell steers the evaluation questions (no system prompt) with
 * coef * v_layer added at that one layer; the unsteered model on the same questions and seeds is the
 * baseline. The rule, exactly:
 *   movement(cell)   = sign(coef) * (mean expression(cell) - mean expression(baseline))
 *   admissible(cell) = its mean coherence >= max(coherenceMin, baseline coherence - coherenceTolerance)
 *                      and both means exist
 *   best(layer)      = the admissible cell of the layer with the largest movement (ties: smaller |coef|)
 *   chosen           = the layer whose best movement is largest (ties: the earlier layer); none when no
 *                      cell is admissible.
 */
import { z } from 'zod';
import type { Judge } from '../providers/judge.js';
import type { SteerEngine } from './engine.js';
import { conversation } from './extract.js';
import { meanPresent, replyScoreSchema, runKeyed, scoreReplies, type RunSettings } from './judging.js';
import type { SweepOptions } from './options.js';
import { type LayerVectors, vectorAt } from './vectors.js';

export interface SweepStats {
  expression: number | null;
  coherence: number | null;
  /** Replies with an expression score. */
  n: number;
}

export interface SweepCell extends SweepStats {
  layer: number;
  coef: number;
  /** sign(coef) * (expression - baseline expression). */
  movement: number | null;
  admissible: boolean;
}

export interface SweepChoice {
  layer: number;
  coef: number;
  movement: number;
  coherence: number;
}

export interface SweepResult {
  baseline: SweepStats;
  cells: SweepCell[];
  chosen: SweepChoice | null;
  /** The coherence a cell needed to be admissible. */
  coherenceFloor: number;
}

/** Applies the rule of the file comment to measured cells. */
export function chooseLayer(
  baseline: SweepStats,
  cells: readonly Omit<SweepCell, 'movement' | 'admissible'>[],
  o: Pick<SweepOptions, 'coherenceTolerance' | 'coherenceMin'>,
): { cells: SweepCell[]; chosen: SweepChoice | null; coherenceFloor: number } {
  const coherenceFloor = Math.max(o.coherenceMin, baseline.coherence === null ? -Infinity : baseline.coherence - o.coherenceTolerance);
  const judged = cells.map((c) => {
    const movement = c.expression === null || baseline.expression === null ? null : Math.sign(c.coef) * (c.expression - baseline.expression);
    return { ...c, movement, admissible: movement !== null && c.coherence !== null && c.coherence >= coherenceFloor };
  });
  const better = (a: SweepCell, b: SweepCell | undefined) =>
    !b || a.movement! > b.movement! || (a.movement === b.movement && (Math.abs(a.coef) < Math.abs(b.coef) || (Math.abs(a.coef) === Math.abs(b.coef) && a.layer < b.layer)));
  let best: SweepCell | undefined;
  for (const c of judged) if (c.admissible && better(c, best)) best = c;
  return { cells: judged, chosen: best ? { layer: best.layer, coef: best.coef, movement: best.movement!, coherence: best.coherence! } : null, coherenceFloor };
}

export interface SweepInput extends RunSettings {
  engine: SteerEngine;
  judge: Judge;
  vector: LayerVectors;
  /** The evaluation questions (published: the 20 not used to extract). */
  questions: readonly string[];
  options: SweepOptions;
  onProgress?: (phase: 'rollouts' | 'judge', done: number, total: number) => void;
}

const textsSchema = z.array(z.array(z.string()));

export async function runSweep(input: SweepInput): Promise<SweepResult> {
  const { engine, options: o, vector } = input;
  const layers = o.layers ?? vector.layers;
  for (const l of layers) vectorAt(vector, l);
  const conversations = input.questions.map((q) => conversation(undefined, q));
  const settings = { n: o.rollouts, temperature: o.temperature, maxTokens: o.maxTokens, seed: input.seed ?? 1, batchSize: input.batchSize };
  const runs = [{ key: 'base', layer: -1, coef: 0 }, ...layers.flatMap((layer) => o.coefficients.map((coef) => ({ key: `${layer}/${coef}`, layer, coef })))];
  const prefix = input.journalPrefix ?? 'steer/sweep';
  const texts = await runKeyed(
    runs,
    (r) => r.key,
    async (r) => {
      const view = r.layer < 0 ? engine : engine.withHooks({ steer: [{ layer: r.layer, vector: vectorAt(vector, r.layer), coef: r.coef, positions: o.positions }] });
      return (await view.rollouts(conversations, settings)).map((rs) => rs.map((x) => x.text));
    },
    { concurrency: 1, journal: input.runDir?.journal(`${prefix}/rollouts`, textsSchema), onProgress: (d, t) => input.onProgress?.('rollouts', d, t) },
  );
  const items = runs.flatMap((r, i) => texts[i].flatMap((rs, q) => rs.map((reply, k) => ({ key: `${r.key}/${q}/${k}`, run: i, question: input.questions[q], reply }))));
  const scores = await scoreReplies(input.judge, vector.trait, items, {
    concurrency: input.concurrency,
    minMass: input.minMass,
    journal: input.runDir?.journal(`${prefix}/scores`, replyScoreSchema),
    onProgress: (d, t) => input.onProgress?.('judge', d, t),
  });
  const stats = runs.map((_, i): SweepStats => {
    const mine = scores.filter((_, j) => items[j].run === i);
    const e = meanPresent(mine.map((s) => s.expression));
    return { expression: e.mean, coherence: meanPresent(mine.map((s) => s.coherence)).mean, n: e.n };
  });
  const baseline = stats[0];
  const measured = runs.slice(1).map((r, i) => ({ layer: r.layer, coef: r.coef, ...stats[i + 1] }));
  return { baseline, ...chooseLayer(baseline, measured, o) };
}
