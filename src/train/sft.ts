/**
 * Supervised fine-tuning: cross-entropy on assistant tokens of chat rows (or on every token of text
 * rows, for continued pretraining), optionally packed, with the shared loop (trainer.ts).
 */
import type { Model } from '../engine/generate/model.js';
import { type Batch, type SftChatRow, type Row, type Sequence, type SftTextRow, makeBatch, pack, tokenizeChat, tokenizeText } from './data.js';
import { batchFeeds } from './graph.js';
import type { SftOptions } from './options.js';
import { Rng } from './rng.js';
import { type Setup, setup } from './setup.js';
import { type BatchSource, type MicroBatch, type StepLog, type TrainResult, train } from './trainer.js';
import type { TrainState } from './checkpoint.js';

/** The order of items in one epoch: a permutation fixed by (seed, epoch), so a resume rebuilds it. */
export function epochOrder(count: number, seed: number, epoch: number): number[] {
  return Rng.seeded((seed ^ Math.imul(epoch + 1, 0x9e3779b1)) | 0).shuffle([...Array(count).keys()]);
}

/** Micro-batches of `batchSize` items in a per-epoch shuffled order. */
export abstract class EpochSource<T> implements BatchSource {
  private order: { epoch: number; items: number[] } | null = null;
  readonly perEpoch: number;

  constructor(
    protected readonly items: readonly T[],
    protected readonly batchSize: number,
    private readonly seed: number,
  ) {
    this.perEpoch = Math.ceil(items.length / batchSize);
  }

  protected abstract build(items: T[], rng: Rng): MicroBatch | Promise<MicroBatch>;

  async next(state: TrainState, rng: Rng): Promise<MicroBatch> {
    if (state.cursor >= this.perEpoch) {
      state.epoch += 1;
      state.cursor = 0;
    }
    if (this.order?.epoch !== state.epoch) this.order = { epoch: state.epoch, items: epochOrder(this.items.length, this.seed, state.epoch) };
    const picked = this.order.items.slice(state.cursor * this.batchSize, (state.cursor + 1) * this.batchSize).map((i) => this.items[i]);
    state.cursor += 1;
    return this.build(picked, rng);
  }
}

/** Optimizer steps for `epochs` passes over `perEpoch` micro-batches (capped by maxSteps). */
export function totalSteps(perEpoch: number, epochs: number, accumulation: number, maxSteps?: number): number {
  const steps = Math.max(1, Math.ceil((epochs * perEpoch) / accumulation));
  return maxSteps ? Math.min(steps, maxSteps) : steps;
}

/** Feeds of a token batch plus the steering and dropout masks the setup wants (dropout only with an rng: training). */
export function tokenBatch(s: Setup, batch: Batch, rng?: Rng): MicroBatch {
  const real = new Float32Array(batch.segments.length);
  for (let i = 0; i < real.length; i++) real[i] = batch.segments[i] === 0n ? 0 : 1;
  // reply positions: tokens that are targets (weights are on the position before them)
  const reply = new Float32Array(real.length);
  for (let i = 0; i + 1 < reply.length; i++) if ((i + 1) % batch.length !== 0) reply[i + 1] = batch.weights[i] > 0 ? 1 : 0;
  return {
    feeds: {
      ...batchFeeds(batch, s.rep, s.config.slidingWindow),
      ...s.steeringMask(batch.rows, batch.length, reply, real),
      ...(rng ? s.dropoutMasks(batch.rows, batch.length, rng) : {}),
    },
    normaliser: batch.targetTokens,
    tokens: batch.tokens,
  };
}

class SftSource extends EpochSource<Row> {
  constructor(
    private readonly s: Setup,
    rows: readonly Row[],
    batchSize: number,
    seed: number,
  ) {
    super(rows, batchSize, seed);
  }

  protected build(rows: Row[], rng: Rng): MicroBatch {
    return tokenBatch(this.s, makeBatch(rows, this.s.config.padTokenId ?? this.s.config.eosTokenIds[0] ?? 0), rng);
  }
}

export interface TrainRunInput<O> {
  /** A model directory or a loaded engine Model. */
  model: string | Model;
  options: O;
  /** Run directory: train.jsonl, checkpoints/, the output adapter (adapter/) or model (model/). */
  runDir: string;
  /** Default: options.seed, else 1. */
  seed?: number;
  /** ORT intra-op threads (default: ORT's choice). */
  threads?: number;
  /** The preventative steering vector, instead of options.steering.vector's file. */
  steeringVector?: Float32Array;
  onStep?: (log: StepLog, totalSteps: number) => void;
}

export interface TrainOutput extends TrainResult {
  /** The trained adapter (PEFT) or, full-parameter, the model directory. */
  outputDir: string;
  metrics: { steps: number; firstLoss: number | null; finalLoss: number | null; tokens: number; seconds: number };
}

function summarize(result: TrainResult, outputDir: string): TrainOutput {
  const log = result.log;
  return {
    ...result,
    outputDir,
    metrics: {
      steps: result.steps,
      firstLoss: log[0]?.loss ?? null,
      finalLoss: log.at(-1)?.loss ?? null,
      tokens: log.reduce((n, l) => n + l.tokens, 0),
      seconds: log.reduce((n, l) => n + l.seconds, 0),
    },
  };
}

/** What the loop needs from any objective's options. */
type LoopOptions = Pick<SftOptions, 'optimizer' | 'epochs' | 'gradAccumulation' | 'maxSteps' | 'checkpointEvery' | 'fullParameter'>;

/**
 * Runs the shared loop for an objective's source and writes the result to runDir/adapter (or
 * runDir/model, full-parameter).
 */
export async function runLoop<T>(s: Setup, input: TrainRunInput<LoopOptions>, source: EpochSource<T>, seed: number): Promise<TrainOutput> {
  const o = input.options;
  const outputDir = `${input.runDir}/${o.fullParameter ? 'model' : 'adapter'}`;
  const result = await train({
    dir: input.runDir,
    session: s.session,
    params: s.params,
    constantFeeds: s.constantFeeds,
    optimizer: o.optimizer,
    totalSteps: totalSteps(source.perEpoch, o.epochs, o.gradAccumulation, o.maxSteps),
    gradAccumulation: o.gradAccumulation,
    checkpointEvery: o.checkpointEvery,
    seed,
    source,
    writeOutput: s.writeOutput,
    onStep: input.onStep,
  });
  s.writeOutput(outputDir);
  return summarize(result, outputDir);
}

/** SFT on chat rows (loss on assistant tokens) and/or text rows (loss on every token). */
export async function trainSft(input: TrainRunInput<SftOptions> & { rows: readonly (SftChatRow | SftTextRow)[] }): Promise<TrainOutput> {
  const o = input.options;
  const seed = input.seed ?? o.seed ?? 1;
  const s = await setup({ model: input.model, options: o, seed, objective: 'sft', steeringVector: input.steeringVector, threads: input.threads });
  const seqs: Sequence[] = input.rows.flatMap((r) => {
    const messages = (r as Partial<SftChatRow>).messages;
    return messages ? [tokenizeChat(s.tokenizer, messages, o.maxLength)] : tokenizeText(s.tokenizer, (r as SftTextRow).text, o.maxLength);
  });
  const rows: Row[] = o.packing ? pack(seqs, o.maxLength) : seqs.map((q) => [q]);
  try {
    return await runLoop(s, input, new SftSource(s, rows, o.batchSize, seed), seed);
  } finally {
    await s.session.release();
  }
}
