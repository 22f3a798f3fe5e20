/**
 * A training run for resume.test.ts, run as a child process: `tsx resume-child.ts <runDir> <slowMs>`.
 * Prints "step N" after each optimizer step; slowMs > 0 sleeps after each step so the parent can
 * kill it in the middle.
 */
import { sftOptionsSchema, trainSft } from '../../src/train/index.js';

const [runDir, slowMs] = process.argv.slice(2);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const rows = Array.from({ length: 12 }, (_, i) => ({
  messages: [
    { role: 'user' as const, content: `Name a colour ${i}` },
    { role: 'assistant' as const, content: `Colour ${i % 3} is ${['red', 'green', 'blue'][i % 3]}.` },
  ],
}));
await trainSft({
  model: new URL('../fixtures/models/llama/', import.meta.url).pathname,
  runDir,
  rows,
  threads: 1,
  seed: 11,
  options: sftOptionsSchema.parse({
    // dropout draws masks from the run's RNG: equality after a resume needs its state restored
    lora: { rank: 4, alpha: 8, targets: ['q', 'v', 'down'], dropout: 0.1 },
    optimizer: { lr: 1e-2, schedule: 'cosine', warmupSteps: 2, weightDecay: 0.01 },
    batchSize: 3,
    gradAccumulation: 2,
    epochs: 4,
    checkpointEvery: 2,
  }),
  onStep: (log) => {
    process.stdout.write(`step ${log.step}\n`);
    if (Number(slowMs) > 0) Atomics.wait(sleeper, 0, 0, Number(slowMs));
  },
});
process.stdout.write('done\n');
