import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';

const cli = (...args: string[]) => spawnSync(process.execPath, [resolve('bin/persona-lab.js'), ...args], { encoding: 'utf8' });

test('usage errors exit 2 at every level of the command tree, help exits 0', () => {
  for (const args of [['bogus'], ['serve'], ['serve', '--model', 'tiny', '--bogus'], ['cache'], ['serve', '--model', 'tiny', '--concurrency', '0']]) {
    const r = cli(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status}, stderr ${r.stderr}`);
    assert.ok(r.stderr.length > 0, 'says why on stderr');
    assert.equal(r.stdout, '');
  }
  assert.equal(cli('--help').status, 0);
  assert.equal(cli('serve', '--help').status, 0);
});

test('validate refuses an experiment whose local model directory is missing, naming the role (exit 2)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'validate-local-'));
  try {
    const write = (subject: string) =>
      writeFileSync(join(dir, 'exp.yaml'), `name: v\nconstitutions: [${resolve('examples/constitutions/skeptic.yaml')}]\nmodels:\n  subject: "${subject}"\n  judge: tiny\nseeds: [1]\n`);
    write(`local:${join(dir, 'no-such-model')}`);
    const missing = cli('validate', join(dir, 'exp.yaml'));
    assert.equal(missing.status, 2, missing.stderr);
    assert.match(missing.stderr, /models\.subject: a Hugging Face model directory with config\.json at .*no-such-model/);
    write(`local:${resolve('models/tiny')}+${join(dir, 'no-adapter')}`);
    const adapter = cli('validate', join(dir, 'exp.yaml'));
    assert.equal(adapter.status, 2);
    assert.match(adapter.stderr, /no-adapter: adapter_config\.json: a PEFT adapter directory/);
    write(`local:${resolve('models/tiny')}`);
    assert.equal(cli('validate', join(dir, 'exp.yaml')).status, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an error quoting a garbage file prints escapes, not raw bytes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'garbage-'));
  try {
    const bytes = Buffer.alloc(4000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131 + 7) % 256;
    writeFileSync(join(dir, 'bad.json'), bytes);
    const r = cli('validate', join(dir, 'bad.json'));
    assert.equal(r.status, 2);
    assert.match(r.stderr, /bad\.json: malformed JSON/);
    assert.doesNotMatch(r.stderr, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\ufffd]/, 'no control characters or undecodable bytes');
    assert.ok(r.stderr.split('\n').every((line) => line.length < 600));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Ctrl-C during resumable work says where the work is kept and how to resume, exit 130', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'interrupt-'));
  try {
    const child = spawn(process.execPath, [resolve('bin/persona-lab.js'), 'tiny', 'build', '--out', join(dir, 'm'), '--examples', '200', '--steps', '400'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    await new Promise<void>((started) =>
      child.stderr!.on('data', (d) => {
        stderr += d;
        if (/tiny train/.test(stderr)) started();
      }),
    );
    child.kill('SIGINT');
    assert.equal(await exited, 130);
    assert.match(stderr, /interrupted: finished work is kept in .*m\.build.*run the same command again to resume/s);
    assert.match(stderr, /persona-lab tiny build --out \S+ --examples 200 --steps 400/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
