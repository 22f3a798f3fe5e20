/** `grpo`: RL on the identity objective over the training identity probes, rewarded by models.judge. */
import type { TrainOptions } from '../../train/options.js';
import { rewardClassifierOptions, rewardClassifiers } from '../reward-classifiers.js';
import type { TrainingMethod } from './types.js';

export const grpoMethod: TrainingMethod = {
  formats: () => [null],
  datasets: () => ['probes'],
  // The judge's answers are the reward: a different judge trains a different cell.
  // ... and so do the options of the classifiers its rewards name (a persona classifier's training replies).
  options: (train, _run, experiment) => {
    const classifiers = rewardClassifierOptions(classifiersOf(train), experiment);
    return { train: { grpo: train.grpo }, models: { judge: experiment.models.judge ?? experiment.models.teacher ?? experiment.models.subject }, ...(classifiers ? { rewardClassifiers: classifiers } : {}) };
  },
  train: async ({ backend, job, train, datasets, ctx, constitution }) =>
    backend.train({ ...job, objective: 'grpo', options: train.grpo, dataset: datasets[0], judge: await ctx.model('judge'), classifiers: await rewardClassifiers(classifiersOf(train), { ctx, constitution }) }),
};

/** The classifiers the reward signals name. */
const classifiersOf = (train: TrainOptions) => train.grpo.rewards.flatMap((s) => (s.kind === 'classifier' ? [s.classifier!] : []));
