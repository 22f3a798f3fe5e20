import { TINY } from './support.js';

/**
 * The options the crash test's child and its uninterrupted reference run share: the tiny run with
 * more items per stage (so the kill lands mid-stage) and inoculation prompts added.
 */
export const CRASH_OPTIONS = {
  ...TINY,
  concurrency: 3,
  expansion: { perTrait: 8, batchSize: 5 },
  generalPrompts: { count: 6 },
  dpo: { samplesPerPrompt: 2 },
  reflection: { samplesPerPrompt: 2 },
  interaction: { ...TINY.interaction, turns: 4 },
  inoculation: { datasets: ['chat' as const] },
};
