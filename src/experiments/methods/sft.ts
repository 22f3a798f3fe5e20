/** `sft`: one adapter per data format of run.formats, on the format comparison's equal-token-budget file. */
import type { TrainingMethod } from './types.js';

export const sftMethod: TrainingMethod = {
  formats: (run) => [...run.formats],
  datasets: (format) => [format as 'chat' | 'introspective' | 'documents'],
  options: (train) => ({ train: { sft: train.sft } }),
  train: ({ backend, job, train, datasets }) => backend.train({ ...job, objective: 'sft', options: train.sft, dataset: datasets[0] }),
};
