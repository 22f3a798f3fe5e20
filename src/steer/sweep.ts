/**
 * Layer choice by a steering sweep (docs/protocols.md §5: "the layer that moves trait expression most at equal
 * coherence"). Every (layer, coefficient) cell steers the evaluation questions (no system prompt) with
 * coef * v_layer added at that one layer; the unsteered model on the same questions and seeds is the
 * baseline. The evaluation questions are split in two disjoint halves: the cell is chosen on the
 * selection half and its movement is reported on the other (a choice measured on the questions it
 * was chosen on overstates its effect). The rule, on the selection half, exactly:
 *   movement(cell)   = mean expression(cell) - mean expression(baseline) (a steered subject must
 *                      express the persona more, so a negative coefficient counts only if it raises it)
 *   admissible(cell) = movement > 0 (a cell that lowers or keeps expression is never chosen)
 *                      and its mean coherence >= max(coherenceMin, baseline coherence - coherenceTolerance)
 *                      and both means exist
 *   chosen           = the admissible cell with the largest movement (ties: smaller |coef|, then the
 *                      earlier layer); none when no cell is admissible ("no steering effect").
 */
import { z } from 'zod';
import { meanInterval } from '../evals/stats.js';
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
  /** expression - baseline expression. */
  movement: number | null;
  admissible: boolean;
}

export interface SweepChoice {
  layer: number;
  coef: number;
  movement: number;
  coherence: number;
}

/** The chosen cell measured on the report half: movement against the baseline with its interval. */
export interface SweepReport {
  layer: number;
  coef: number;
  expression: number | null;
  baseline: number | null;
  /** Mean over report replies of (reply expression - baseline mean on its question). */
  movement: number | null;
  low: number | null;
  high: number | null;
  /** Replies with an expression score, and the questions they cluster in. */
  n: number;
  questions: number;
  confidence: number;
}

export interface SweepResult {
  /** The two disjoint halves of the evaluation questions. */
  halves: { selection: string[]; report: string[] };
  /** Selection half: the baseline and the cells the rule reads. */
  baseline: SweepStats;
  cells: SweepCell[];
  chosen: SweepChoice | null;
  /** The coherence a cell needed to be admissible. */
  coherenceFloor: number;
  /** Report half: the baseline and every cell (for the heatmap), and the chosen cell's movement. */
  held: { baseline: SweepStats; cells: (SweepStats & { layer: number; coef: number })[]; chosen: SweepReport | null };
}

/** The evaluation questions in two disjoint halves, alternating (selection takes the even positions). */
export function splitHalves<T>(questions: readonly T[]): { selection: T[]; report: T[] } {
  return { selection: questions.filter((_, i) => i % 2 === 0), report: questions.filter((_, i) => i % 2 === 1) };
}

/** Applies the rule of the file comment to measured cells. */
export function chooseLayer(
  baseline: SweepStats,
  cells: readonly Omit<SweepCell, 'movement' | 'admissible'>[],
  o: Pick<SweepOptions, 'coherenceTolerance' | 'coherenceMin'>,
): { cells: SweepCell[]; chosen: SweepChoice | null; coherenceFloor: number } {
  const coherenceFloor = Math.max(o.coherenceMin, baseline.coherence === null ? -Infinity : baseline.coherence - o.coherenceTolerance);
  const judged = cells.map((c) => {
    const movement = c.expression === null || baseline.expression === null ? null : c.expression - baseline.expression;
    return { ...c, movement, admissible: movement !== null && movement > 0 && c.coherence !== null && c.coherence >= coherenceFloor };
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
  /** The evaluation questions (published: the 20 not used to extract); at least 2, split in halves. */
  questions: readonly string[];
  options: SweepOptions;
  /** Level of the report half's interval. */
  confidence?: number;
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
  const items = runs.flatMap((r, i) => texts[i].flatMap((rs, q) => rs.map((reply, k) => ({ key: `${r.key}/${q}/${k}`, run: i, q, question: input.questions[q], reply }))));
  const scores = await scoreReplies(input.judge, vector.trait, items, {
    concurrency: input.concurrency,
    minMass: input.minMass,
    journal: input.runDir?.journal(`${prefix}/scores`, replyScoreSchema),
    onProgress: (d, t) => input.onProgress?.('judge', d, t),
  });
  const { selection, report } = splitHalves(input.questions.map((_, q) => q));
  if (report.length === 0) throw new Error('the sweep needs at least 2 evaluation questions: one half chooses the cell, the other reports it');
  const statsOf = (run: number, half: readonly number[]): SweepStats => {
    const mine = scores.filter((_, j) => items[j].run === run && half.includes(items[j].q));
    const e = meanPresent(mine.map((s) => s.expression));
    return { expression: e.mean, coherence: meanPresent(mine.map((s) => s.coherence)).mean, n: e.n };
  };
  const baseline = statsOf(0, selection);
  const measured = runs.slice(1).map((r, i) => ({ layer: r.layer, coef: r.coef, ...statsOf(i + 1, selection) }));
  const rule = chooseLayer(baseline, measured, o);
  const heldBaseline = statsOf(0, report);
  const heldCells = runs.slice(1).map((r, i) => ({ layer: r.layer, coef: r.coef, ...statsOf(i + 1, report) }));
  let chosen: SweepReport | null = null;
  if (rule.chosen) {
    const { layer, coef } = rule.chosen;
    const run = runs.findIndex((r) => r.layer === layer && r.coef === coef);
    const confidence = input.confidence ?? 0.95;
    // Per report question: each steered reply's expression minus the baseline's mean on that question.
    const groups = report.flatMap((q) => {
      const base = meanPresent(scores.filter((_, j) => items[j].run === 0 && items[j].q === q).map((s) => s.expression)).mean;
      const diffs = scores.flatMap((s, j) => (items[j].run === run && items[j].q === q && s.expression !== null && base !== null ? [s.expression - base] : []));
      return diffs.length ? [diffs] : [];
    });
    const flat = groups.flat();
    const interval = meanInterval(groups, confidence);
    const cell = heldCells[run - 1];
    chosen = {
      layer,
      coef,
      expression: cell.expression,
      baseline: heldBaseline.expression,
      movement: flat.length ? flat.reduce((a, b) => a + b, 0) / flat.length : null,
      low: interval?.low ?? null,
      high: interval?.high ?? null,
      n: flat.length,
      questions: groups.length,
      confidence,
    };
  }
  return {
    halves: { selection: selection.map((q) => input.questions[q]), report: report.map((q) => input.questions[q]) },
    baseline,
    ...rule,
    held: { baseline: heldBaseline, cells: heldCells, chosen },
  };
}
