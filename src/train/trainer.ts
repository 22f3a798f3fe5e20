/**
 * The training loop every objective shares: micro-batches from a source, one session call each
 * (loss and gradients), gradient accumulation, global-norm clipping, AdamW with a schedule, a JSONL
 * log line per optimizer step, and checkpoints every N steps from which a killed run resumes to the
 * same final weights as an uninterrupted one (the data order, the random stream and the optimizer
 * state are all restored; the computation is deterministic for a thread count).
 */
import { join } from 'node:path';
import { z } from 'zod';
import { Journal } from '../core/journal.js';
import type { Feed, Session } from '../engine/runtime/index.js';
import { floats } from '../engine/runtime/index.js';
import { type TrainState, loadLatestCheckpoint, restoreCheckpoint, saveCheckpoint } from './checkpoint.js';
import { AdamW, GradAccumulator, type Param, type ScheduleKind, clipGradNorm, learningRate, warmupSteps } from './optim.js';
import { Rng } from './rng.js';

/** One session call's worth of data. */
export interface MicroBatch {
  feeds: Record<string, Feed>;
  /** What the summed loss is divided by: target tokens (SFT), pairs (DPO), tokens or sequences (GRPO). */
  normaliser: number;
  /** Real (non-padding) tokens processed, for tokens/s. */
  tokens: number;
}

/** Where micro-batches come from; it advances state.epoch / state.cursor itself. */
export interface BatchSource {
  next(state: TrainState, rng: Rng): Promise<MicroBatch>;
  /** Sees each micro-batch's outputs (e.g. DPO log-ratios) to report per-step metrics. */
  observe?(outputs: Record<string, Float32Array>, batch: MicroBatch): void;
  /** Metrics of the step just finished (reset after the call). */
  stepMetrics?(): Record<string, number>;
  /** Outputs the source needs besides loss and gradients. */
  extraOutputs?: string[];
}

export interface OptimizerConfig {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  maxGradNorm: number;
  schedule: ScheduleKind;
  warmupSteps: number;
  warmupRatio: number;
  minLrRatio: number;
}

/** A logged number: JSON writes NaN and infinities as null, and they read back as NaN. */
const logNumber = z.number().nullable().transform((v) => v ?? NaN);

/**
 * The value of one line of the training log (<cell>/train.jsonl, key "step-<n>"): the optimizer
 * step's loss, learning rate, gradient norm, throughput, and the objective's own metrics (DPO's
 * reward margin, GRPO's reward, ...). Published as schema/train-step.schema.json.
 */
export const stepLogSchema = z
  .object({
    step: z.number().int().positive(),
    epoch: logNumber,
    loss: logNumber,
    lr: logNumber,
    gradNorm: logNumber,
    tokens: logNumber,
    tokensPerSecond: logNumber,
    seconds: logNumber,
  })
  .catchall(logNumber);
export type StepLog = z.output<typeof stepLogSchema>;

/** A step log as the journal stores it: non-finite numbers (a step whose rewards were all missing) as null. */
const asLogged = (log: StepLog): StepLog => Object.fromEntries(Object.entries(log).map(([k, v]) => [k, Number.isFinite(v) ? v : null])) as unknown as StepLog;

export interface TrainerOptions {
  /** Checkpoints go to <dir>/checkpoints, the log to <dir>/train.jsonl. */
  dir: string;
  session: Session;
  /** Trainable tensors, updated in place; names are the graph's param names. */
  params: Param[];
  /** Feeds every call shares (LoRA scale, steering vectors). */
  constantFeeds?: Record<string, Feed>;
  optimizer: OptimizerConfig;
  totalSteps: number;
  gradAccumulation: number;
  checkpointEvery: number;
  seed: number;
  source: BatchSource;
  /** Writes the adapter (or model) in its published format into a directory. */
  writeOutput?: (dir: string) => void;
  onStep?: (log: StepLog, totalSteps: number) => void;
}

export interface TrainResult {
  steps: number;
  /** Optimizer step the run resumed from (0 when it started fresh). */
  resumedFrom: number;
  log: StepLog[];
}

export async function train(o: TrainerOptions): Promise<TrainResult> {
  const optimizer = new AdamW(o.params, { betas: o.optimizer.betas, eps: o.optimizer.eps, weightDecay: o.optimizer.weightDecay });
  const root = join(o.dir, 'checkpoints');
  let state: TrainState = { step: 0, epoch: 0, cursor: 0, rng: Rng.seeded(o.seed).state() };
  const ckpt = loadLatestCheckpoint(root);
  if (ckpt) {
    restoreCheckpoint(ckpt, o.params, optimizer);
    state = ckpt.state;
  }
  const resumedFrom = state.step;
  const rng = Rng.fromState(state.rng);
  const journal = Journal.open(join(o.dir, 'train.jsonl'), stepLogSchema);
  const accumulator = new GradAccumulator(o.params.map((p) => p.data.length));
  const schedule = {
    kind: o.optimizer.schedule,
    lr: o.optimizer.lr,
    totalSteps: o.totalSteps,
    warmupSteps: warmupSteps(o.totalSteps, o.optimizer.warmupSteps, o.optimizer.warmupRatio),
    minLrRatio: o.optimizer.minLrRatio,
  };
  const outputs = ['loss', ...o.params.map((p) => `grad.${p.name}`), ...(o.source.extraOutputs ?? [])];
  const paramFeeds: Record<string, Feed> = Object.fromEntries(o.params.map((p) => [p.name, { data: p.data, dims: p.shape }]));
  const save = () =>
    saveCheckpoint(root, o.params, optimizer, { ...state, rng: rng.state() }, { writeAdapter: o.writeOutput && ((dir) => o.writeOutput!(dir)) });

  try {
    while (state.step < o.totalSteps) {
      const started = performance.now();
      let tokens = 0;
      for (let k = 0; k < o.gradAccumulation; k++) {
        const batch = await o.source.next(state, rng);
        const out = await o.session.run({ ...o.constantFeeds, ...paramFeeds, ...batch.feeds }, outputs);
        const values = Object.fromEntries(Object.entries(out).map(([name, t]) => [name, floats(t)]));
        accumulator.add(
          o.params.map((p) => values[`grad.${p.name}`]),
          values.loss[0],
          batch.normaliser,
        );
        o.source.observe?.(values, batch);
        tokens += batch.tokens;
      }
      const { grads, loss } = accumulator.mean();
      const gradNorm = clipGradNorm(grads, o.optimizer.maxGradNorm);
      // never let a diverged step reach the weights or a checkpoint: the last checkpoint stays good
      if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
        throw new Error(`training diverged at step ${state.step + 1}: loss ${loss}, gradient norm ${gradNorm} (lower optimizer.lr or keep maxGradNorm > 0)`);
      }
      const lr = learningRate(state.step, schedule);
      optimizer.update(grads, lr);
      accumulator.reset();
      state.step += 1;
      const seconds = (performance.now() - started) / 1000;
      const log: StepLog = {
        step: state.step,
        epoch: state.epoch,
        loss,
        lr,
        gradNorm,
        tokens,
        tokensPerSecond: tokens / seconds,
        seconds,
        ...o.source.stepMetrics?.(),
      };
      journal.append(`step-${state.step}`, asLogged(log));
      o.onStep?.(log, o.totalSteps);
      if (state.step % o.checkpointEvery === 0 || state.step === o.totalSteps) save();
    }
  } finally {
    journal.close();
  }
  const log = journal.values().sort((a, b) => a.step - b.step);
  return { steps: state.step, resumedFrom, log };
}
