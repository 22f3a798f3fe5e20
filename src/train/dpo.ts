/**
 * DPO (docs/protocols.md §2.4): sigmoid loss -log sigmoid(beta [(log pi_c - log ref_c) - (log pi_r - log ref_r)])
 * plus nllCoef times the NLL of the chosen reply (mean over its tokens). Reference log-probabilities
 * come from the frozen base (adapter off) once, before training, and are journaled in the run
 * directory so a resumed run never recomputes them.
 */
import { join } from 'node:path';
import { Journal } from '../core/journal.js';
import { type PairRow, type PairSequences, makeBatch, targetCount, tokenizePair } from './data.js';
import type { DpoOptions } from './options.js';
import { type Setup, referenceScorer, setup } from './setup.js';
import { EpochSource, type TrainOutput, type TrainRunInput, runLoop, tokenBatch } from './sft.js';
import type { Rng } from './rng.js';
import type { MicroBatch } from './trainer.js';

interface Pair extends PairSequences {
  index: number;
  /** Reference log-probabilities of the chosen and rejected replies. */
  ref?: [number, number];
}

export function pairBatch(s: Setup, pairs: readonly Pair[], nllCoef: number, rng?: Rng): MicroBatch {
  const padId = s.config.padTokenId ?? s.config.eosTokenIds[0] ?? 0;
  const batch = makeBatch([...pairs.map((p) => [p.chosen]), ...pairs.map((p) => [p.rejected])], padId);
  const mb = tokenBatch(s, batch, rng);
  const P = pairs.length;
  const T = batch.length;
  const chosenTokens = batch.rowTargets.slice(0, P).reduce((a, b) => a + b, 0);
  // NLL on chosen, normalised by chosen tokens, counted once per pair so the step mean over pairs is
  // mean(dpo) + nllCoef * (chosen NLL per token).
  const nllWeights = new Float32Array(batch.weights.length);
  const scale = chosenTokens > 0 ? (nllCoef * P) / chosenTokens : 0;
  for (let i = 0; i < P * T; i++) nllWeights[i] = batch.weights[i] * scale;
  const ref = new Float32Array(2 * P);
  pairs.forEach((p, i) => {
    ref[i] = p.ref?.[0] ?? 0;
    ref[P + i] = p.ref?.[1] ?? 0;
  });
  mb.feeds.ref_logp = { data: ref, dims: [2 * P] };
  mb.feeds.nll_weights = { data: nllWeights, dims: [2 * P, T] };
  mb.normaliser = P;
  return mb;
}

class DpoSource extends EpochSource<Pair> {
  readonly extraOutputs = ['logp'];
  private margins: number[] = [];
  private chosenRewards: number[] = [];
  private rejectedRewards: number[] = [];

  constructor(
    private readonly s: Setup,
    pairs: readonly Pair[],
    private readonly o: DpoOptions,
    seed: number,
  ) {
    super(pairs, o.batchSize, seed);
  }

  protected build(pairs: Pair[], rng: Rng): MicroBatch {
    return pairBatch(this.s, pairs, this.o.nllCoef, rng);
  }

  observe(outputs: Record<string, Float32Array>, batch: MicroBatch): void {
    const logp = outputs.logp;
    const ref = batch.feeds.ref_logp as { data: Float32Array };
    const P = logp.length / 2;
    for (let i = 0; i < P; i++) {
      const c = this.o.beta * (logp[i] - ref.data[i]);
      const r = this.o.beta * (logp[P + i] - ref.data[P + i]);
      this.chosenRewards.push(c);
      this.rejectedRewards.push(r);
      this.margins.push(c - r);
    }
  }

  stepMetrics(): Record<string, number> {
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    const m = {
      rewardMargin: mean(this.margins),
      rewardAccuracy: mean(this.margins.map((x) => (x > 0 ? 1 : 0))),
      rewardChosen: mean(this.chosenRewards),
      rewardRejected: mean(this.rejectedRewards),
    };
    this.margins = [];
    this.chosenRewards = [];
    this.rejectedRewards = [];
    return m;
  }
}

/** Tokenizes pairs, dropping those whose reply was cut away entirely by maxLength. */
export function tokenizePairs(s: Setup, rows: readonly PairRow[], maxLength: number): { pairs: Pair[]; dropped: number } {
  const pairs: Pair[] = [];
  let dropped = 0;
  rows.forEach((row, index) => {
    const p = tokenizePair(s.tokenizer, row, maxLength);
    if (targetCount(p.chosen) === 0 || targetCount(p.rejected) === 0) dropped += 1;
    else pairs.push({ ...p, index });
  });
  return { pairs, dropped };
}

/** Reference log-probabilities of every pair under the frozen base, journaled (computed once). */
export async function referenceLogps(s: Setup, pairs: Pair[], runDir: string, batchSize: number, threads?: number): Promise<void> {
  const journal = Journal.open<[number, number]>(join(runDir, 'dpo-reference.jsonl'));
  try {
    const todo = pairs.filter((p) => !journal.has(String(p.index)));
    if (todo.length > 0) {
      const scorer = await referenceScorer(s, threads);
      try {
        for (let i = 0; i < todo.length; i += batchSize) {
          const chunk = todo.slice(i, i + batchSize);
          const mb = pairBatch(s, chunk, 0);
          const { logp } = await scorer.score(mb.feeds);
          chunk.forEach((p, k) => journal.append(String(p.index), [logp[k], logp[chunk.length + k]]));
        }
      } finally {
        await scorer.release();
      }
    }
    for (const p of pairs) p.ref = journal.get(String(p.index));
  } finally {
    journal.close();
  }
}

/** DPO on {prompt, chosen, rejected} rows (prompt a string or messages; replies strings or assistant messages). */
export async function trainDpo(input: TrainRunInput<DpoOptions> & { rows: readonly PairRow[] }): Promise<TrainOutput & { droppedPairs: number }> {
  const o = input.options;
  const seed = input.seed ?? o.seed ?? 1;
  const s = await setup({ model: input.model, options: o, seed, objective: 'dpo', dpoBeta: o.beta, steeringVector: input.steeringVector, threads: input.threads });
  try {
    const { pairs, dropped } = tokenizePairs(s, input.rows, o.maxLength);
    if (pairs.length === 0) throw new Error(`DPO: none of the ${input.rows.length} pairs has reply tokens within maxLength ${o.maxLength}`);
    await referenceLogps(s, pairs, input.runDir, o.batchSize, input.threads);
    return { ...(await runLoop(s, input, new DpoSource(s, pairs, o, seed), seed)), droppedPairs: dropped };
  } finally {
    await s.session.release();
  }
}
