/** The options the crash test's child and its uninterrupted reference run share. */
export const CRASH_OPTIONS = {
  seed: 7,
  concurrency: 3,
  expansion: { perTrait: 8, batchSize: 5 },
  generalPrompts: { count: 6 },
  chat: { samplesPerPrompt: 1 },
  introspective: { perTrait: 3 },
  documents: { count: 4 },
  dpo: { samplesPerPrompt: 2 },
  reflection: { samplesPerPrompt: 2 },
  interaction: { free: 2, leading: 2, turns: 4 },
  inoculation: { datasets: ['chat' as const] },
};
