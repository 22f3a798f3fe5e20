/**
 * A training method of the matrix: which cells it trains per persona and seed (one per data format,
 * or one), the datasets each cell reads (by the data stage's manifests), the options that make the
 * cell what it is (hashed into its identity), and how it trains a cell through a training backend.
 */
import type { Constitution } from '../../constitution/index.js';
import type { CellIdentity } from '../../core/cell.js';
import type { DatasetId } from '../../data/index.js';
import type { LocalModelRef } from '../../providers/refs/index.js';
import type { TrainBackend, TrainJobResult } from '../../train/backends/index.js';
import type { StepLog } from '../../train/index.js';
import type { TrainOptions } from '../../train/options.js';
import type { CellStart } from '../continued.js';
import type { Experiment, RunOptions } from '../config.js';
import type { StageContext } from '../context.js';

/** What every job of a cell shares, ready to spread into a backend's TrainJob. */
export interface JobCommon {
  model: string;
  runDir: string;
  seed: number;
  threads?: number;
  backendOptions: Record<string, unknown>;
  onStep?: (log: StepLog, totalSteps: number) => void;
  steering?: Partial<Record<'sft' | 'dpo' | 'grpo', Float32Array>>;
}

export interface MethodInput {
  ctx: StageContext;
  cell: CellIdentity;
  /** The cell's directory (train.jsonl, checkpoints, adapter/). */
  dir: string;
  base: LocalModelRef;
  train: TrainOptions;
  run: RunOptions;
  backend: TrainBackend;
  constitution: Constitution;
  /** The dataset files this cell trains on, in the order `datasets` named them (a mixture cell: each member's, member by member). */
  datasets: string[];
  /** A mixture cell's personas (see TrainingMethod.acrossPersonas), in the order of `datasets`. */
  members?: Constitution[];
  /** The directory of another cell of the same persona and seed (a method this one `requires`). */
  cellDir(method: string, format: string | null): string;
  /** The backend job fields of this cell (base model, cell directory, seed, threads, progress). */
  job: JobCommon;
  /** Progress of data a method generates itself (dpo-introspection's on-policy data). */
  onData(dataset: string, done: number, total: number): void;
}

export interface TrainingMethod {
  /** The data formats it trains one cell each on, or [null] for one cell per persona and seed. */
  formats(run: RunOptions): (string | null)[];
  /** One cell per seed that covers several personas (run.mixture), instead of one per persona. */
  acrossPersonas?: boolean;
  /** Methods whose cell (same persona and seed) must be trained first; planned even when not asked for. */
  requires?: readonly string[];
  /** The data stage's datasets a cell reads (generate.datasets must include them). */
  datasets(format: string | null): DatasetId[];
  /** The options that train a cell (part of its options hash), under their experiment paths ({train: {sft: ...}}) so a change names the field. */
  options(train: TrainOptions, run: RunOptions, experiment: Experiment): unknown;
  /** Refuses options the method cannot train with, before anything is written (InputError naming `file`). */
  check?(train: TrainOptions, file: string): void;
  /** `start`: where a continued cell's adapter applies (src/experiments/continued.ts). */
  train(input: MethodInput): Promise<TrainJobResult & { start?: CellStart }>;
}
