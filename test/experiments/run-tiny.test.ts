import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import { evalSummarySchema, type EvalSummary } from '../../src/evals/summary.js';
import { runCli } from '../support/cli.js';

// The README's main job, trimmed to one seed: offline on the bundled tiny model, every stage real.
test('persona-lab run: the quick format comparison runs offline on the tiny model end to end', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pl-run-tiny-'));
  const quick = YAML.parse(readFileSync('examples/formats-quick.yaml', 'utf8')) as Record<string, any>;
  const experiment = {
    ...quick,
    constitutions: quick.constitutions.map((c: string) => resolve('examples', c)),
    seeds: [1],
    output: join(dir, 'run'),
    eval: { ...quick.eval, evals: ['classifier', 'identity'] },
    steer: { ...quick.steer, extract: { ...quick.steer.extract, promptsFile: resolve('examples', quick.steer.extract.promptsFile) } },
  };
  const file = join(dir, 'exp.yaml');
  writeFileSync(file, YAML.stringify(experiment));
  const result = await runCli(['--json', 'run', file], { env: { PERSONA_LAB_CACHE_DIR: join(dir, 'cache') } });
  assert.equal(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout) as { report: { html: string; markdown: string }; eval: EvalSummary };
  // Prompting, steering and training side by side: the steered subject exists when the sweep found an effect.
  const steer = JSON.parse(readFileSync(join(dir, 'run', 'steer', 'summary.json'), 'utf8')) as { traits: { sweep: { chosen: unknown }; shifts: { cell?: { format: string } }[] }[] };
  const steered = steer.traits[0].sweep.chosen ? ['skeptic.steered-t0'] : [];
  assert.deepEqual(summary.eval.subjects.map((s) => s.name).sort(), ['base', 'prompted', 'skeptic.capped', 'skeptic.sft-chat.seed-1', 'skeptic.sft-introspective.seed-1', ...steered].sort());
  // the steer stage ran after training: both trained cells' fine-tuning shift along the vector
  assert.deepEqual(steer.traits[0].shifts.map((s) => s.cell?.format), ['chat', 'introspective']);
  // The trained cells stay structured to the summary (and its published schema) and the report.
  const written = evalSummarySchema.parse(JSON.parse(readFileSync(join(dir, 'run', 'evals', 'summary.json'), 'utf8')));
  assert.deepEqual(
    written.subjects.filter((s) => s.kind !== 'steered').map((s) => [s.name, s.kind]),
    [['base', 'base'], ['prompted', 'prompted'], ['skeptic.sft-chat.seed-1', 'trained'], ['skeptic.sft-introspective.seed-1', 'trained'], ['skeptic.capped', 'capped']],
  );
  const cells = written.subjects.flatMap((s) => (s.cell ? [s.cell] : []));
  assert.deepEqual(cells.map(({ persona, method, format, seed, backend }) => ({ persona, method, format, seed, backend })), [
    { persona: 'Skeptic', method: 'sft', format: 'chat', seed: 1, backend: 'engine' },
    { persona: 'Skeptic', method: 'sft', format: 'introspective', seed: 1, backend: 'engine' },
  ]);
  for (const cell of cells) assert.match(cell.optionsHash, /^[0-9a-f]{16}$/);
  assert.notEqual(cells[0].optionsHash, cells[1].optionsHash, 'different data, different options hash');
  const markdown = readFileSync(summary.report.markdown, 'utf8');
  assert.match(markdown, /## Headline: prompting, steering and training compared/);
  assert.match(markdown, /\| Skeptic \| sft\/introspective \| trained \|/);
  assert.match(markdown, /\| Skeptic \| skeptic\.capped \| capped \|/);
  assert.match(markdown, /## Steering sweep/);
  assert.match(markdown, /## Fine-tuning shift along the persona vectors/);
  assert.deepEqual(summary.eval.evals.map((e) => [e.eval, e.status]), [['classifier', 'ok'], ['identity', 'ok']]);
  assert.ok(existsSync(summary.report.html));
  for (const format of ['chat', 'introspective']) assert.ok(existsSync(join(dir, 'run', 'adapters', 'skeptic', `sft-${format}`, 'seed-1', 'adapter', 'adapter_model.safetensors')));
});
