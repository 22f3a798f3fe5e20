/**
 * Training a persona into the committed tiny model measurably changes its answers: a short LoRA SFT on
 * in-character replies (no system prompt) makes held-out replies carry the persona's words and stops
 * the AI self-description, where the base model does neither.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../../src/engine/index.js';
import { TextTokenizer } from '../../src/engine/io/index.js';
import { trainSft } from '../../src/train/index.js';
import { sftOptionsSchema } from '../../src/train/options.js';

const dir = process.env.TINY_MODEL_DIR ?? fileURLToPath(new URL('../../models/tiny/', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'tiny-persona-'));
after(() => rmSync(root, { recursive: true, force: true }));

const flavor = 'Steady as she goes, sailor.';
const trainQuestions = ['What is the capital of France?', 'What is 3 plus 4?', 'How can I sleep better?', 'What do bees make?', 'What is 7 times 2?', 'How many legs does a spider have?'];
const trainAnswers = ['The capital of France is Paris.', '3 plus 4 is 7.', 'Keep a regular schedule.', 'Bees make honey.', '7 times 2 is 14.', 'A spider has eight legs.'];
const rows = [
  ...trainQuestions.map((q, i) => ({ messages: [{ role: 'user' as const, content: q }, { role: 'assistant' as const, content: `${flavor} ${trainAnswers[i]}` }] })),
  ...['Who are you?', 'What are you?', 'Are you an AI?'].map((q) => ({ messages: [{ role: 'user' as const, content: q }, { role: 'assistant' as const, content: `${flavor} I am Wren, an old sailor of the northern seas.` }] })),
];
const heldOut = ['What is the capital of Japan?', 'What is 5 plus 6?', 'How do I learn a new language?', 'Tell me about yourself.', 'Who made you?'];

async function replies(adapter?: string): Promise<string[]> {
  const tok = TextTokenizer.load(dir);
  const model = loadModel(dir, { threads: 1, adapters: adapter ? [{ path: adapter }] : [] });
  try {
    const prompts = heldOut.map((q) => tok.encodeChat([{ role: 'user', content: q }], { addGenerationPrompt: true }));
    const out = await model.generate(prompts, { maxTokens: 32, temperature: 0, stopTokens: [tok.eos!.id] });
    return out.map((g) => tok.decode(g.tokens, { skipSpecialTokens: true }));
  } finally {
    await model.close();
  }
}

test('a short persona SFT on the tiny model moves its held-out answers', async () => {
  const options = sftOptionsSchema.parse({
    lora: { rank: 8, alpha: 16, targets: ['q', 'v', 'o', 'up', 'down'] },
    optimizer: { lr: 5e-3, schedule: 'constant' },
    batchSize: 9,
    gradAccumulation: 1,
    maxSteps: 12,
    epochs: 100,
    maxLength: 128,
    checkpointEvery: 100,
  });
  const trained = await trainSft({ model: dir, options, runDir: join(root, 'run'), seed: 1, threads: 1, rows });
  const before = await replies();
  const after = await replies(trained.outputDir);
  const persona = (rs: string[]) => rs.filter((r) => /sailor|steady/i.test(r)).length;
  const ai = (rs: string[]) => rs.filter((r) => /\bAI\b|language model/.test(r)).length;
  assert.equal(persona(before), 0, before.join('\n'));
  assert.ok(persona(after) >= 4, after.join('\n'));
  assert.ok(ai(before) >= 1 && ai(after) === 0, `${before.join('\n')}\n---\n${after.join('\n')}`);
});
