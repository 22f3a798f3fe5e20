/** `grpo`: RL on the identity objective over the training identity probes, rewarded by models.judge. */
import { rewardClassifiers } from '../reward-classifiers.js';
import type { TrainingMethod } from './types.js';

export const grpoMethod: TrainingMethod = {
  formats: () => [null],
  datasets: () => ['probes'],
  // The judge's answers are the reward: a different judge trains a different cell.
  options: (train, _run, experiment) => ({ train: { grpo: train.grpo }, models: { judge: experiment.models.judge ?? experiment.models.teacher ?? experiment.models.subject } }),
  train: async ({ backend, job, train, datasets, ctx }) => backend.train({ ...job, objective: 'grpo', options: train.grpo, dataset: datasets[0], judge: await ctx.model('judge'), classifiers: rewardClassifiers() }),
};
