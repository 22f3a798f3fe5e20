import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
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
  };
  const file = join(dir, 'exp.yaml');
  writeFileSync(file, YAML.stringify(experiment));
  const result = await runCli(['--json', 'run', file], { env: { PERSONA_LAB_CACHE_DIR: join(dir, 'cache') } });
  assert.equal(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout) as { report: { html: string }; eval: { subjects: { name: string }[]; evals: { eval: string; status: string }[] } };
  assert.deepEqual(summary.eval.subjects.map((s) => s.name).sort(), ['base', 'prompted', 'skeptic.sft-chat.seed-1', 'skeptic.sft-introspective.seed-1']);
  assert.deepEqual(summary.eval.evals.map((e) => [e.eval, e.status]), [['classifier', 'ok'], ['identity', 'ok']]);
  assert.ok(existsSync(summary.report.html));
  for (const format of ['chat', 'introspective']) assert.ok(existsSync(join(dir, 'run', 'adapters', 'skeptic', `sft-${format}`, 'seed-1', 'adapter', 'adapter_model.safetensors')));
});
