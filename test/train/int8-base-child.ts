/**
 * One LoRA SFT step on an int8 base, run as a child process by memory.test.ts so that its peak
 * memory is the training's own: `tsx int8-base-child.ts <modelDir> <runDir>`. Then the same batch
 * through a forward-only graph with the int8 base weights fed as tensors (no external data file, no
 * backward): the base model's loss evaluated another way. Prints one JSON line.
 */
import { Graph } from '../../src/engine/graph/index.js';
import { loadTokenizer } from '../../src/engine/io/model-dir.js';
import { Session, floats } from '../../src/engine/runtime/index.js';
import { makeBatch, tokenizeText } from '../../src/train/data.js';
import { batchFeeds, buildTrainGraph } from '../../src/train/graph.js';
import { sftOptionsSchema, trainSft } from '../../src/train/index.js';
import { readInt8Base } from '../../src/train/setup.js';

const [model, runDir] = process.argv.slice(2);
const text = 'the keeper of the lighthouse';
const options = sftOptionsSchema.parse({
  lora: { rank: 4, alpha: 8, targets: ['q', 'v'] },
  baseWeights: 'int8',
  batchSize: 1,
  gradAccumulation: 1,
  maxLength: 64,
  maxSteps: 1,
});
const started = performance.now();
const out = await trainSft({ model, runDir, rows: [{ text }], threads: 2, seed: 7, options });
const seconds = (performance.now() - started) / 1000;
const peakRssBytes = process.resourceUsage().maxRSS * 1024;

// the adapter starts with B = 0, so the step's loss is the base model's: evaluate it once more
const { config, weights } = readInt8Base(model);
const g = new Graph('int8-forward');
const lora = { rank: 4, alpha: 8, targets: options.lora.targets };
const tg = buildTrainGraph(g, { config, lora, objective: 'logprobs', baseWeights: 'int8' });
for (const t of tg.trainables) weights.set(t.name, new Float32Array(t.shape[0] * t.shape[1]));
const session = await Session.create(g, { weights, weightsAs: 'feed', threads: 2, outputs: ['logp'] });
const tokenizer = loadTokenizer(model);
const rows = tokenizeText(tokenizer, text, options.maxLength);
if (rows.length !== 1) throw new Error(`the text should be one row of at most ${options.maxLength} tokens`);
const batch = makeBatch([rows], config.padTokenId ?? 0);
const result = await session.run({ ...batchFeeds(batch, config.numHeads / config.numKvHeads, config.slidingWindow), lora_scale_0: { data: new Float32Array([0]), dims: [] } }, ['logp']);
await session.release();
console.log(
  JSON.stringify({
    steps: out.steps,
    loss: out.metrics.firstLoss,
    forwardLoss: -floats(result.logp)[0] / batch.targetTokens,
    seconds,
    peakRssBytes,
  }),
);
