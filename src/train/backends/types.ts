/**
 * The training-backend seam: what a method hands a backend to train one cell (data in), and what it
 * gets back (a PEFT adapter directory and a per-step log in the cell's train.jsonl). The engine is
 * the default backend; others (TRL + accelerate) plug in behind the same interface.
 */
import type { ChatModel } from '../../providers/types.js';
import type { DpoOptions, GrpoOptions, SftOptions } from '../options.js';
import type { Classifier } from '../rewards.js';
import type { StepLog } from '../trainer.js';

interface JobBase<O> {
  /** The local base model: a Hugging Face model directory or a .gguf file. */
  model: string;
  /** The cell directory: train.jsonl, checkpoints, and the adapter (adapter/) the backend writes. */
  runDir: string;
  seed: number;
  options: O;
  /** Backend-specific options from the experiment (train.backendOptions), validated by the backend. */
  backendOptions: Record<string, unknown>;
  /** CPU threads the backend may use (engine: ORT intra-op threads). */
  threads?: number;
  /** Called after every optimizer step with the same StepLog the train.jsonl line holds. */
  onStep?: (log: StepLog, totalSteps: number) => void;
  signal?: AbortSignal;
  /** Preventative steering vectors by objective (train.<objective>.steering), read by the steer stage's writers; backends that cannot steer refuse them. */
  steering?: Partial<Record<'sft' | 'dpo' | 'grpo', Float32Array>>;
}

/** SFT on a JSONL file of chat rows ({messages}) or text rows ({text}), loss on assistant tokens. */
export interface SftJob extends JobBase<SftOptions> {
  objective: 'sft';
  dataset: string;
}

/** DPO on a JSONL file of preference rows ({prompt, chosen, rejected}). */
export interface DpoJob extends JobBase<DpoOptions> {
  objective: 'dpo';
  dataset: string;
}

/** GRPO on a JSONL file of prompt rows ({prompt}), rewarded by persona-lab's composite reward. */
export interface GrpoJob extends JobBase<GrpoOptions> {
  objective: 'grpo';
  dataset: string;
  judge?: ChatModel;
  classifiers?: Record<string, Classifier>;
}

export type TrainJob = SftJob | DpoJob | GrpoJob;

export interface TrainJobResult {
  /** The PEFT adapter directory the backend wrote. */
  outputDir: string;
  metrics: Record<string, unknown>;
  /** The checkpoint step this invocation continued from (0: from the start). */
  resumedFrom: number;
}

/**
 * Thrown by a backend that wrote a cell's job for another machine to run (a cluster's scheduler)
 * instead of training it: the command stops there, successfully, and a later `train` picks up the
 * finished adapter.
 */
export class TrainJobHandedOff extends Error {}

export interface TrainBackend {
  /** The name experiments use (train.backend). */
  name: string;
  /** Checks the job can run (installed tools, memory, options) before anything is written; throws InputError otherwise. */
  check?(job: TrainJob): Promise<void>;
  train(job: TrainJob): Promise<TrainJobResult>;
}
