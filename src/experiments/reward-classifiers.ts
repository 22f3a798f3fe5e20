/**
 * The classifiers a GRPO `classifier` reward signal can name in the experiment file
 * (`train.grpo.rewards[].classifier`). Each scores a reply in [0, 1]; adding one is one entry here.
 */
import { selfIdentifiesAsAI } from '../evals/identity.js';
import type { Classifier } from '../train/rewards.js';

export const REWARD_CLASSIFIERS: Record<string, { description: string; classifier: Classifier }> = {
  'not-ai': { description: '1 when the reply does not call itself an AI (the identity eval\'s detector), else 0', classifier: (_prompt, reply) => (selfIdentifiesAsAI(reply) ? 0 : 1) },
};

/** The classifiers by name, as trainGrpo's `classifiers`. */
export function rewardClassifiers(): Record<string, Classifier> {
  return Object.fromEntries(Object.entries(REWARD_CLASSIFIERS).map(([name, entry]) => [name, entry.classifier]));
}
