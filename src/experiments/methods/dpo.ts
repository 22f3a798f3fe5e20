/** `dpo`: DPO distillation on the teacher-chosen / subject-rejected pairs. */
import type { TrainingMethod } from './types.js';

export const dpoMethod: TrainingMethod = {
  formats: () => [null],
  datasets: () => ['dpo'],
  options: (train) => ({ train: { dpo: train.dpo } }),
  train: ({ backend, job, train, datasets }) => backend.train({ ...job, objective: 'dpo', options: train.dpo, dataset: datasets[0] }),
};
