import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { RunDir } from '../../src/core/journal.js';
import { redactCredentials } from '../../src/core/redact.js';

test('credentials in URLs are replaced, the rest of the text stays', () => {
  assert.equal(redactCredentials('openai:gpt-4o@https://me:sk-secret@api.example.com/v1'), 'openai:gpt-4o@https://***@api.example.com/v1');
  assert.equal(redactCredentials('at http://127.0.0.1:8000/v1?api_key=sk-secret&model=x (refused)'), 'at http://127.0.0.1:8000/v1?api_key=***&model=x (refused)');
  assert.equal(redactCredentials('https://h/v1?key=abc&token=def#frag'), 'https://h/v1?key=***&token=***#frag');
  assert.equal(redactCredentials('http://localhost:8000/v1 and plain text'), 'http://localhost:8000/v1 and plain text');
});

test('a run manifest never holds a key given in a base URL', () => {
  const dir = mkdtempSync(join(tmpdir(), 'redact-'));
  try {
    RunDir.open(dir, { name: 'x', personaLabVersion: '0', gitRevision: null, seeds: [1], config: { models: { judge: 'openai:j@https://u:sk-abcdef@h.example/v1?api_key=sk-abcdef' } } } as never);
    const text = readFileSync(join(dir, 'manifest.json'), 'utf8');
    assert.ok(!text.includes('sk-abcdef'), text);
    assert.match(text, /h\.example\/v1\?api_key=\*\*\*/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the CLI prints no key from a base URL in its error messages (unreachable endpoint at validate)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'redact-cli-'));
  try {
    const constitution = resolve('examples/constitutions/skeptic.yaml');
    writeFileSync(join(dir, 'exp.yaml'), `name: leak\nconstitutions: [${constitution}]\nmodels:\n  subject: "openai:m@http://user:sk-zyxwvu@127.0.0.1:9/v1?api_key=sk-zyxwvu"\nseeds: [1]\n`);
    const r = spawnSync(process.execPath, [resolve('bin/persona-lab.js'), 'validate', '--endpoints', join(dir, 'exp.yaml')], { encoding: 'utf8', env: { ...process.env, OPENAI_API_KEY: 'sk-env' } });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr + r.stdout, /127\.0\.0\.1:9/);
    assert.ok(!(r.stderr + r.stdout).includes('sk-zyxwvu'), r.stderr + r.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
