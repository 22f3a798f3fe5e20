import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import YAML from 'yaml';
import { closedPort, runCli } from '../support/cli.js';
import { startLoopback, TINY, type Loopback } from '../data/support.js';

let server: Loopback;
const dir = mkdtempSync(join(tmpdir(), 'pl-cli-generate-'));
before(async () => (server = await startLoopback()));
after(() => server.close());

const experiment = (baseURL: string, name: string) => ({
  name,
  constitutions: [resolve('examples/constitutions/skeptic.yaml')],
  models: { subject: `openai:student@${baseURL}`, teacher: `openai:teacher@${baseURL}` },
  seeds: [7],
  output: join(dir, name),
  generate: { ...TINY, datasets: ['chat', 'introspective', 'documents'] },
});

test('generate writes datasets with progress, and a re-run resumes without model calls', async () => {
  const file = join(dir, 'exp.yaml');
  writeFileSync(file, YAML.stringify(experiment(server.server.baseURL, 'gen')));
  const env = { PERSONA_LAB_CACHE_DIR: join(dir, 'cache') };
  const first = await runCli(['--json', 'generate', file], { env });
  assert.equal(first.code, 0, first.stderr);
  const summary = JSON.parse(first.stdout) as { personas: { persona: string; datasets: Record<string, { rows: Record<string, number> }> }[] };
  assert.equal(summary.personas[0].persona, 'Skeptic');
  for (const name of ['chat', 'introspective', 'documents']) assert.ok(Object.values(summary.personas[0].datasets[name].rows).some((n) => n > 0), name);
  const manifest = JSON.parse(readFileSync(join(dir, 'gen', 'manifest.json'), 'utf8')) as { seeds: number[]; personaLabVersion: string };
  assert.deepEqual(manifest.seeds, [7]);
  assert.ok(existsSync(join(dir, 'gen', 'accounting.json')));

  const calls = server.server.requests.length;
  const second = await runCli(['generate', file], { env: { ...env, PERSONA_LAB_CACHE_DIR: join(dir, 'empty-cache') } });
  assert.equal(second.code, 0, second.stderr);
  assert.equal(server.server.requests.length, calls, 'finished items are not generated again');
  assert.match(second.stdout, /Skeptic chat: \d+ main/);
});

test('an unreachable endpoint stops generate before anything is written', async () => {
  const file = join(dir, 'dead.yaml');
  writeFileSync(file, YAML.stringify(experiment(`http://127.0.0.1:${await closedPort()}/v1`, 'dead')));
  const result = await runCli(['generate', file]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /dead\.yaml: models\.subject: a reachable OpenAI-compatible endpoint at http:\/\/127\.0\.0\.1:\d+\/v1 \(ECONNREFUSED\)/);
  assert.equal(existsSync(join(dir, 'dead')), false);
});
