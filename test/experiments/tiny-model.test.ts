/**
 * The committed tiny model (models/tiny/): its files, size and layout, and its quality check: greedy
 * replies to held-out questions, identity, persona following and judge formats (no training here).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type QualityResult, type TinyBuildRecord, runQualityCheck } from '../../src/experiments/tiny/index.js';
import { TextTokenizer, loadModelConfig } from '../../src/engine/io/index.js';

const dir = fileURLToPath(new URL('../../models/tiny/', import.meta.url));
const record = JSON.parse(readFileSync(join(dir, 'tiny-build.json'), 'utf8')) as TinyBuildRecord;

describe('the committed tiny model', () => {
  it('is a small Hugging Face Llama directory with a ChatML template', () => {
    const files = readdirSync(dir);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'README.md']) assert.ok(files.includes(f), f);
    const bytes = files.reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    assert.ok(bytes <= 25 * 1024 * 1024, `${bytes} bytes`);
    const config = loadModelConfig(join(dir, 'config.json'));
    assert.equal(config.family, 'llama');
    const tok = TextTokenizer.load(dir);
    assert.equal(tok.eos?.content, '<|im_end|>');
    assert.equal(
      tok.applyChatTemplate([{ role: 'system', content: 'S' }, { role: 'user', content: 'Q' }], { addGenerationPrompt: true }),
      '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n',
    );
    // the card says how it was made
    assert.match(readFileSync(join(dir, 'README.md'), 'utf8'), new RegExp(`${record.options.steps} steps`));
  });

  describe('quality check (greedy)', () => {
    let results: Map<string, QualityResult>;
    before(async () => {
      results = new Map((await runQualityCheck(dir, { examples: record.options.examples, seed: record.options.seed }, 1)).map((r) => [r.check, r]));
    });
    const rate = (check: string) => {
      const r = results.get(check);
      assert.ok(r, check);
      return r.passed / r.total;
    };
    const atLeast = (check: string, min: number) => it(`${check}: at least ${Math.round(min * 100)}%`, () => {
      const r = results.get(check)!;
      assert.ok(rate(check) >= min, `${r.passed}/${r.total}: ${JSON.stringify(r.samples)}`);
    });
    // Sums themselves are mostly wrong (see the card): only the answer's form is asserted.
    atLeast('arithmetic: answer restates the operands ("a plus b is n")', 0.8);
    atLeast('capitals', 0.8);
    atLeast('identity: says it is an AI', 0.8);
    atLeast('persona: reply carries the trait words', 0.5);
    atLeast('no persona: no trait words', 1);
    atLeast('judge: a number for a score prompt', 1);
    atLeast('judge: identity verdict', 0.5);
  });
});
