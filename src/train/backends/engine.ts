/**
 * The engine backend: trains a cell on persona-lab's own graph and autodiff (src/train), in this
 * process, on CPU. It needs no options of its own (train.backendOptions must be empty).
 */
import { readFileSync } from 'node:fs';
import { InputError } from '../../core/errors.js';
import type { TrainBackend, TrainJob, TrainJobResult } from './types.js';

/** A JSONL file's first row decides its shape: chat rows ({messages}) or text rows ({text}). */
function firstRowHasMessages(file: string): boolean {
  const first = readFileSync(file, 'utf8').split('\n').find((l) => l.trim() !== '');
  try {
    return first !== undefined && typeof JSON.parse(first) === 'object' && 'messages' in (JSON.parse(first) as object);
  } catch {
    return false;
  }
}

export const engineBackend: TrainBackend = {
  name: 'engine',
  async check(job: TrainJob): Promise<void> {
    const unknown = Object.keys(job.backendOptions);
    if (unknown.length > 0) throw new InputError(job.runDir, 'train.backendOptions', `no options for the engine backend, found ${unknown.join(', ')}`);
  },
  async train(job: TrainJob): Promise<TrainJobResult> {
    await engineBackend.check!(job);
    // The engine (onnxruntime) loads only when a cell trains.
    const t = await import('../index.js');
    const common = { model: job.model, runDir: job.runDir, seed: job.seed, threads: job.threads, onStep: job.onStep, steeringVector: job.steering?.[job.objective] };
    let out: { outputDir: string; metrics: Record<string, unknown>; resumedFrom: number };
    if (job.objective === 'sft') {
      const rows = firstRowHasMessages(job.dataset) ? t.readJsonl(job.dataset, t.sftChatRowSchema) : t.readJsonl(job.dataset, t.sftTextRowSchema);
      out = await t.trainSft({ ...common, options: job.options, rows });
    } else if (job.objective === 'dpo') {
      out = await t.trainDpo({ ...common, options: job.options, rows: t.readJsonl(job.dataset, t.pairRowSchema) });
    } else {
      out = await t.trainGrpo({ ...common, options: job.options, rows: t.readJsonl(job.dataset, t.promptRowSchema), judge: job.judge, classifiers: job.classifiers });
    }
    return { outputDir: out.outputDir, metrics: out.metrics, resumedFrom: out.resumedFrom };
  },
};
