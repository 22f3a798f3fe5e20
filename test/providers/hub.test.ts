/**
 * Hub models against a loopback Hub (test/support/hub-server.ts) speaking the file-resolution
 * protocol: the cache layout Python's huggingface_hub shares, resume by range request, checksums,
 * gated models and tokens, offline mode, revisions, and hf: references loading in the engine.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import { downloadFileToCacheDir, scanCacheDir } from '@huggingface/hub';
import { InputError } from '../../src/core/errors.js';
import { cachedHubModel, hubRepoOfDir, hubSnapshotOfDir, parseHubRef, pullHubModels, pullModel, resolveHubModel } from '../../src/providers/hub/index.js';
import { parseLocalModelRef } from '../../src/providers/index.js';
import { Model } from '../../src/engine/generate/model.js';
import { setup } from '../../src/train/setup.js';
import { loadLoraAdapter } from '../../src/engine/io/index.js';
import { fakeCommit, filesOfDir, gitOid, repoOf, sha256, startFakeHub, type FakeHub } from '../support/hub-server.js';
import { runCli } from '../support/cli.js';

const MODEL = join(import.meta.dirname, '..', 'fixtures', 'models', 'llama');
const TOKEN = 'hf_loopbackTestToken0123456789';

describe('Hugging Face Hub cache', () => {
  let hub: FakeHub;
  let home: string;
  let env: NodeJS.ProcessEnv;
  const files = filesOfDir(MODEL);
  const main = fakeCommit('main');
  const v1 = fakeCommit('v1');

  before(async () => {
    const v1Files = files.map((f) => (f.path === 'generation_config.json' ? { ...f, content: Buffer.from('{"bos_token_id": 1, "eos_token_id": 2}\n') } : f));
    hub = await startFakeHub({
      'acme/tiny-llama': { commits: new Map([[main, files], [v1, v1Files]]), refs: new Map([['main', main], ['v1', v1]]) },
      'acme/gated': repoOf(files, { seed: 'gated', token: TOKEN }),
    });
  });
  after(() => hub.close());
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'hub-cache-'));
    env = { HF_HOME: home, HF_ENDPOINT: hub.url };
    hub.log.length = 0;
  });

  test('pull lays files out as huggingface_hub does: blobs by etag, relative snapshot symlinks, refs', async () => {
    const result = await pullModel(parseHubRef('acme/tiny-llama'), { env });
    const repoDir = join(home, 'hub', 'models--acme--tiny-llama');
    assert.equal(result.commit, main);
    assert.equal(result.dir, join(repoDir, 'snapshots', main));
    assert.equal(readFileSync(join(repoDir, 'refs', 'main'), 'utf8'), main);
    for (const f of files) {
      const pointer = join(result.dir, f.path);
      assert.ok(lstatSync(pointer).isSymbolicLink(), `${f.path} is a symlink`);
      const etag = f.lfs ? sha256(f.content) : gitOid(f.content);
      assert.equal(readlinkSync(pointer), join('..', '..', 'blobs', etag), `${f.path} links to its blob by etag`);
      assert.deepEqual(readFileSync(pointer), f.content);
    }
    assert.ok(files.some((f) => f.lfs) && files.some((f) => !f.lfs), 'the fixture has LFS and plain files');
    assert.deepEqual(readdirSync(join(repoDir, 'blobs')).filter((n) => n.endsWith('.incomplete')), []);
    // LFS downloads follow the Hub's redirect to its CDN
    assert.ok(hub.log.some((r) => r.url.startsWith('/cdn/')));
  });

  test("Hugging Face's own cache reader sees what pull wrote: repo, commit, refs and every file", async () => {
    const result = await pullModel(parseHubRef('acme/tiny-llama'), { env });
    const cache = join(home, 'hub');
    const info = await scanCacheDir(cache);
    assert.deepEqual(info.warnings, []);
    const [repo] = info.repos;
    assert.deepEqual(repo.id, { name: 'acme/tiny-llama', type: 'model' });
    assert.equal(repo.revisions[0].commitOid, main);
    assert.deepEqual(repo.revisions[0].refs, ['main']);
    assert.equal(repo.filesCount, files.length);
    assert.equal(repo.size, files.reduce((n, f) => n + f.content.length, 0));
    // @huggingface/hub's download helper finds the pulled file in place and asks the Hub nothing
    hub.log.length = 0;
    const pointer = await downloadFileToCacheDir({ repo: 'acme/tiny-llama', path: 'model.safetensors', revision: main, cacheDir: cache, hubUrl: hub.url });
    assert.equal(pointer, join(result.dir, 'model.safetensors'));
    assert.equal(hub.log.length, 0);
  });

  test('HF_HUB_CACHE wins over HF_HOME; a second pull fetches nothing', async () => {
    const cache = join(home, 'elsewhere');
    const first = await pullModel(parseHubRef('acme/tiny-llama'), { env: { ...env, HF_HUB_CACHE: cache } });
    assert.ok(first.dir.startsWith(cache));
    assert.equal(existsSync(join(home, 'hub')), false);
    hub.log.length = 0;
    const second = await pullModel(parseHubRef('hf:acme/tiny-llama'), { env: { ...env, HF_HUB_CACHE: cache } });
    assert.equal(second.dir, first.dir);
    assert.deepEqual(second.files.map((f) => f.fetched), files.map(() => 0));
    assert.equal(hub.log.filter((r) => r.url.includes('/resolve/') || r.url.startsWith('/cdn/')).length, 0);
  });

  test('an interrupted download resumes with a range request and is checked end to end', async () => {
    const weights = files.find((f) => f.path === 'model.safetensors')!;
    hub.cutOnce.add('model.safetensors');
    await assert.rejects(pullModel(parseHubRef('acme/tiny-llama'), { env }));
    const blob = join(home, 'hub', 'models--acme--tiny-llama', 'blobs', sha256(weights.content));
    const partial = statSync(`${blob}.incomplete`).size;
    assert.ok(partial > 0 && partial < weights.content.length, `partial file of ${partial} bytes`);
    hub.log.length = 0;
    const progress: number[] = [];
    const result = await pullModel(parseHubRef('acme/tiny-llama'), { env, onProgress: (p) => progress.push(p.bytes) });
    const ranged = hub.log.find((r) => r.url.startsWith(`/cdn/${sha256(weights.content)}`) && r.range?.startsWith(`bytes=${partial}-`));
    assert.ok(ranged, `a range request from byte ${partial}: ${JSON.stringify(hub.log)}`);
    assert.equal(result.files.find((f) => f.path === 'model.safetensors')!.fetched, weights.content.length - partial);
    assert.deepEqual(readFileSync(blob), weights.content);
    assert.equal(existsSync(`${blob}.incomplete`), false);
    assert.equal(progress.at(-1), files.reduce((n, f) => n + f.content.length, 0));
  });

  test('concurrent pulls fetch each file once; a lock left by a dead process is taken over', async () => {
    const weights = files.find((f) => f.path === 'model.safetensors')!;
    const locks = join(home, 'hub', '.locks', 'models--acme--tiny-llama');
    mkdirSync(locks, { recursive: true });
    const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid!;
    writeFileSync(join(locks, `${sha256(weights.content)}.persona-lab.lock`), String(dead));
    const [a, b] = await Promise.all([pullModel(parseHubRef('acme/tiny-llama'), { env }), pullModel(parseHubRef('acme/tiny-llama'), { env })]);
    assert.equal(a.dir, b.dir);
    assert.deepEqual(readFileSync(join(a.dir, 'model.safetensors')), weights.content);
    const downloads = hub.log.filter((r) => r.method === 'GET' && r.url === `/cdn/${sha256(weights.content)}`);
    assert.equal(downloads.length, 1, 'the weights were fetched once');
    assert.equal(a.files.find((f) => f.path === 'model.safetensors')!.fetched + b.files.find((f) => f.path === 'model.safetensors')!.fetched, weights.content.length);
    assert.deepEqual(readdirSync(locks), []);
  });

  test('a file whose bytes fail the checksum is removed, never linked', async () => {
    hub.corrupt.add('config.json');
    try {
      await assert.rejects(pullModel(parseHubRef('acme/tiny-llama'), { env }), /config\.json failed its checksum \(git sha1/);
    } finally {
      hub.corrupt.delete('config.json');
    }
    const repoDir = join(home, 'hub', 'models--acme--tiny-llama');
    const config = files.find((f) => f.path === 'config.json')!;
    assert.equal(existsSync(join(repoDir, 'blobs', gitOid(config.content))), false);
    assert.equal(existsSync(join(repoDir, 'blobs', `${gitOid(config.content)}.incomplete`)), false);
    assert.equal(existsSync(join(repoDir, 'snapshots', main, 'config.json')), false);
  });

  test('gated models: 401 without or with a wrong token is bad input naming HF_TOKEN; the right token is sent', async () => {
    for (const token of [undefined, 'hf_wrongToken']) {
      await assert.rejects(pullModel(parseHubRef('acme/gated'), { env: { ...env, HF_TOKEN: token } }), (e) => e instanceof InputError && e.field === 'HF_TOKEN' && /401/.test(e.message));
    }
    const result = await pullModel(parseHubRef('acme/gated'), { env: { ...env, HF_TOKEN: TOKEN } });
    assert.ok(existsSync(join(result.dir, 'model.safetensors')));
    assert.ok(hub.log.some((r) => r.authorization === `Bearer ${TOKEN}`));
  });

  test('the CLI never prints the token: a bad token exits 2 with a one-line error', async () => {
    const secret = 'hf_secretNeverPrinted42';
    const bad = await runCli(['pull', 'acme/gated'], { env: { ...env, HF_TOKEN: secret } });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /HF_TOKEN/);
    assert.ok(!bad.stderr.includes(secret) && !bad.stdout.includes(secret));
    const good = await runCli(['--json', 'pull', 'acme/gated'], { env: { ...env, HF_TOKEN: TOKEN } });
    assert.equal(good.code, 0, good.stderr);
    assert.ok(!good.stderr.includes(TOKEN) && !good.stdout.includes(TOKEN));
    const result = JSON.parse(good.stdout) as { dir: string; commit: string };
    assert.ok(existsSync(join(result.dir, 'config.json')));
  });

  test('revisions: a tag pulls its own commit and records refs/<tag>; a cached commit needs no network', async () => {
    const result = await pullModel(parseHubRef('acme/tiny-llama@v1'), { env });
    assert.equal(result.commit, v1);
    assert.equal(readFileSync(join(home, 'hub', 'models--acme--tiny-llama', 'refs', 'v1'), 'utf8'), v1);
    assert.match(readFileSync(join(result.dir, 'generation_config.json'), 'utf8'), /"eos_token_id": 2/);
    hub.log.length = 0;
    const pinned = await pullModel(parseHubRef(`acme/tiny-llama@${v1}`), { env });
    assert.equal(pinned.dir, result.dir);
    assert.equal(pinned.offline, true);
    assert.equal(hub.log.length, 0);
  });

  test('HF_HUB_OFFLINE: served from the cache without a request; a missing model is bad input', async () => {
    await pullModel(parseHubRef('acme/tiny-llama'), { env });
    hub.log.length = 0;
    const offline = { ...env, HF_HUB_OFFLINE: '1' };
    const dir = await resolveHubModel('hf:acme/tiny-llama', { env: offline });
    assert.equal(dir, join(home, 'hub', 'models--acme--tiny-llama', 'snapshots', main));
    assert.equal(hub.log.length, 0);
    await assert.rejects(resolveHubModel('hf:acme/tiny-llama@v1', { env: offline }), (e) => e instanceof InputError && e.field === 'HF_HUB_OFFLINE');
    const cli = await runCli(['pull', 'acme/gated'], { env: offline });
    assert.equal(cli.code, 2);
    assert.match(cli.stderr, /HF_HUB_OFFLINE/);
    assert.equal(hub.log.length, 0);
  });

  test('an unreachable Hub falls back to a cached snapshot; without one it fails', async () => {
    await pullModel(parseHubRef('acme/tiny-llama'), { env });
    const dead = { ...env, HF_ENDPOINT: 'http://127.0.0.1:9' };
    assert.equal((await pullModel(parseHubRef('acme/tiny-llama'), { env: dead })).offline, true);
    await assert.rejects(pullModel(parseHubRef('acme/gated'), { env: dead }));
  });

  test('hf: references load in the engine from the cached snapshot, adapters included', async () => {
    await assert.rejects(async () => cachedHubModel('hf:acme/tiny-llama', env), (e) => e instanceof InputError && /persona-lab pull acme\/tiny-llama/.test(e.message));
    const [pulled] = await pullHubModels({ teacher: 'openai:gpt-x', subject: 'hf:acme/tiny-llama+/some/adapter', judge: 'tiny' }, { env, progress: false });
    const saved = { HF_HOME: process.env.HF_HOME, HF_HUB_OFFLINE: process.env.HF_HUB_OFFLINE };
    process.env.HF_HOME = home;
    try {
      const adapter = join(MODEL, '..', 'llama-lora-a');
      const parsed = parseLocalModelRef(`hf:acme/tiny-llama+${adapter}*0.5`);
      assert.equal(parsed.path, pulled.dir);
      assert.deepEqual(parsed.adapters, [{ path: adapter, scale: 0.5 }]);
      const fromHub = Model.load(parsed.path, { threads: 1 });
      const direct = Model.load(MODEL, { threads: 1 });
      const tokens = [1, 5, 9, 12];
      assert.deepEqual(await fromHub.logits([tokens]), await direct.logits([tokens]));
    } finally {
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  test('adapters trained on a Hub model record its Hub id as base_model_name_or_path and the commit as revision; local bases their absolute path', async () => {
    const { dir } = await pullModel(parseHubRef('acme/tiny-llama'), { env });
    const { dir: v1Dir } = await pullModel(parseHubRef('acme/tiny-llama@v1'), { env });
    assert.equal(hubRepoOfDir(dir), 'acme/tiny-llama');
    assert.deepEqual(hubSnapshotOfDir(v1Dir), { repo: 'acme/tiny-llama', commit: v1 });
    assert.equal(hubRepoOfDir(MODEL), undefined);
    const out = mkdtempSync(join(tmpdir(), 'hub-adapter-'));
    try {
      const shape = { lora: { rank: 2, alpha: 4, dropout: 0, targets: ['q' as const, 'v' as const] }, fullParameter: false };
      for (const [base, name, revision] of [[dir, 'acme/tiny-llama', main], [v1Dir, 'acme/tiny-llama', v1], [MODEL, MODEL, null]] as const) {
        const s = await setup({ model: base, options: shape, seed: 1, objective: 'sft', threads: 1 });
        s.writeOutput(join(out, 'adapter'));
        const written = JSON.parse(readFileSync(join(out, 'adapter', 'adapter_config.json'), 'utf8'));
        assert.equal(written.base_model_name_or_path, name);
        assert.equal(written.revision, revision);
        const loaded = loadLoraAdapter(join(out, 'adapter')).config;
        assert.equal(loaded.baseModelNameOrPath, name);
        assert.equal(loaded.revision, revision);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  test('runs pull their Hub models before any stage: a missing model stops generate with nothing written', async () => {
    const file = join(home, 'exp.yaml');
    const output = join(home, 'run');
    writeFileSync(file, YAML.stringify({
      name: 'hub',
      constitutions: [resolve('examples/constitutions/skeptic.yaml')],
      models: { subject: 'hf:acme/no-such-model', teacher: 'tiny' },
      seeds: [1],
      output,
    }));
    const result = await runCli(['generate', file], { env });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /exp\.yaml: models\.subject: hf:acme\/no-such-model@main: a model and revision that exist on the Hub/);
    assert.equal(existsSync(output), false);
  });

  test('export takes hf: references (pulled on demand) like local ones', async () => {
    const out = join(home, 'from-hub.gguf');
    const result = await runCli(['export', 'hf:acme/tiny-llama', out, '--to', 'gguf'], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(readFileSync(out).subarray(0, 4).toString(), 'GGUF');
    assert.ok(existsSync(join(home, 'hub', 'models--acme--tiny-llama', 'snapshots', main, 'model.safetensors')));
  });
});
