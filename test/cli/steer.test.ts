import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import { startFakeServer } from '../support/openai-server.js';
import { runCli } from '../support/cli.js';

test('steer needs the engine: an endpoint subject is refused (exit 2, models.subject named, nothing written)', async () => {
  const server = await startFakeServer();
  try {
    const dir = mkdtempSync(join(tmpdir(), 'pl-cli-steer-'));
    const file = join(dir, 'exp.yaml');
    writeFileSync(file, YAML.stringify({ name: 'steer', constitutions: [resolve('examples/constitutions/skeptic.yaml')], models: { subject: `openai:m@${server.baseURL}` }, output: join(dir, 'run') }));
    const result = await runCli(['steer', file]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /exp\.yaml: models\.subject: a local model \("local:<dir>" or "tiny"\) for the steer stage/);
    assert.equal(existsSync(join(dir, 'run')), false);
  } finally {
    await server.close();
  }
});
