/** `grpo`: RL on the identity objective over the training identity probes, rewarded by models.judge. */
import type { TrainingMethod } from './types.js';

export const grpoMethod: TrainingMethod = {
  formats: () => [null],
  datasets: () => ['probes'],
  options: (train) => train.grpo,
  train: async ({ backend, job, train, datasets, ctx }) => backend.train({ ...job, objective: 'grpo', options: train.grpo, dataset: datasets[0], judge: await ctx.model('judge') }),
};
