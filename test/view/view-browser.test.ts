/**
 * `persona-lab view` as a person uses it: the real command serving two finished runs, driven in real
 * headless Chromium. From the runs list to a run's headline, from a headline number to its transcripts,
 * filtering, a shared link, a training curve, the other tabs, and a two-run comparison. Hostile model
 * output shows as text and runs nothing; the page obeys its CSP; the server binds 127.0.0.1 and serves
 * nothing outside the runs directory. Screenshots go to test-artifacts/view/ (ignored by git).
 */
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { HOSTILE_REASON, HOSTILE_REPLY, makeFinishedRun } from './fixture.js';
import { openWatchedPage } from '../support/chromium.js';

const ARTIFACTS = join('test-artifacts', 'view');
const SECRET = 'secret-outside-the-runs-directory';

/** A GET with the path sent exactly as written (no URL normalisation of "..", unlike fetch). */
function rawGet(url: string, path: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method: 'GET', headers: { host: `${hostname}:${port}` } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('persona-lab view in headless Chromium', () => {
  let dir: string;
  let url: string;
  let server: ChildProcess;
  let browser: Browser;
  let page: Page;
  let trainedSubject: string;
  let requests: string[] = [];
  let dialogs: string[] = [];
  let consoleErrors: string[] = [];
  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

  before(async () => {
    execFileSync(process.execPath, ['scripts/build-view.mjs']);
    mkdirSync(ARTIFACTS, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'persona-lab-view-'));
    writeFileSync(join(dir, 'secret.txt'), SECRET);
    trainedSubject = makeFinishedRun(join(dir, 'runs'), 'quick-a').trainedSubject;
    makeFinishedRun(join(dir, 'runs'), 'quick-b', 0.1);
    server = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '--json', 'view', join(dir, 'runs'), '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    url = await new Promise<string>((resolve, reject) => {
      let out = '';
      server.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const match = /"url":\s*"([^"]+)"/.exec(out);
        if (match) resolve(match[1]);
      });
      server.once('exit', (code) => reject(new Error(`view exited with ${code}: ${out}`)));
    });
    const watched = await openWatchedPage(1300);
    ({ browser, page, requests, dialogs, consoleErrors } = watched);
  });

  after(async () => {
    await browser?.close();
    server?.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('binds 127.0.0.1 by default', async () => {
    assert.equal(new URL(url).hostname, '127.0.0.1');
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    if (external) {
      const refused = await new Promise<boolean>((resolve) => {
        const socket = connect({ host: external, port: Number(new URL(url).port) });
        socket.once('connect', () => {
          socket.destroy();
          resolve(false);
        });
        socket.once('error', () => resolve(true));
      });
      assert.ok(refused, `the dashboard must not answer on ${external}`);
    }
  });

  it('serves nothing outside the runs directory: traversal attempts get 404', async () => {
    const attempts = [
      '/assets/../../secret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/assets/%2e%2e/%2e%2e/%2e%2e/package.json',
      '/../secret.txt',
      '/runs/..%2f..%2fsecret.txt',
      '/api/runs/..%2f..%2fsecret.txt',
      '/api/runs/..',
      '/api/runs/quick-a/curve?cell=../../../secret.txt',
      '/api/runs/quick-a/curve?cell=..%2f..%2f..%2fsecret.txt',
      '/api/runs/quick-a/sample?eval=..&subject=..%2f..%2fsecret&key=x',
      '/api/runs/quick-a/rows?folder=..%2f..&name=secret&variant=txt',
      '/api/runs/quick-a/rows?folder=sailor&name=chat&variant=..%2f..%2f..%2fsecret.txt',
      '/api/compare?a=..&b=quick-a',
    ];
    for (const path of attempts) {
      const { status, body } = await rawGet(url, path);
      assert.equal(status, 404, `${path} answered ${status}`);
      assert.ok(!body.includes(SECRET), path);
    }
    // The same endpoints do answer for what lies inside.
    assert.equal((await rawGet(url, '/api/runs/quick-a/curve?cell=sailor/sft-chat/seed-1')).status, 200);
    // A name that only resolves here (DNS rebinding) is refused.
    const { hostname, port } = new URL(url);
    const rebound = await new Promise<number>((resolve, reject) => {
      request({ host: hostname, port, path: '/api/runs', headers: { host: `evil.example:${port}` } }, (res) => resolve(res.statusCode ?? 0))
        .on('error', reject)
        .end();
    });
    assert.equal(rebound, 403);
  });

  it('sends a strict Content Security Policy with the page', async () => {
    const res = await fetch(url);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.doesNotMatch(await res.text(), /<script>(?!<\/script>)/, 'no inline script');
  });

  it('goes from the runs list to a headline, and from a headline number to its transcripts', async () => {
    await page.goto(url);
    await page.locator('table.runs a', { hasText: 'quick-a' }).click();
    await page.locator('table.headline').waitFor();
    const headline = await page.locator('table.headline').innerText();
    assert.match(headline, /sailor · sft · chat/);
    assert.match(headline, /prompting/);
    assert.match(headline, /steering/);
    assert.match(headline, /training/);
    // sft chat over seeds 1 and 2: mean of 0.62 and 0.70.
    const sftRow = page.locator('table.headline tr', { hasText: 'sailor · sft · chat' });
    assert.match(await sftRow.innerText(), /0\.660/);
    // The dpo cell had no cell in the summary: it was found in the train journal.
    assert.match(headline, /sailor · dpo/);
    await shot('headline');

    await sftRow.locator('a.to-samples').first().click();
    await page.waitForURL(/\/samples\?/);
    assert.match(page.url(), /persona=sailor/);
    assert.match(page.url(), /method=sft/);
    await page.locator('.pager .count', { hasText: 'of 6 samples' }).waitFor();
    await page.locator('table.samples tbody tr').first().click();
    await page.locator('.transcript').waitFor();
    assert.match(await page.locator('.transcript').innerText(), /Weather \d is fine/);
    assert.match(await page.locator('.transcript .raw').first().innerText(), /^5\d$/, 'the raw verdict of the judge');
    await shot('transcript');
  });

  it('filters samples; hostile replies show as text and run nothing; links can be shared', async () => {
    await page.locator('form.filters select[name=eval]').selectOption('identity');
    await page.locator('form.filters select[name=subject]').selectOption(trainedSubject);
    await page.locator('form.filters button[type=submit]').click();
    await page.locator('.pager .count', { hasText: '1–1 of 1 samples' }).waitFor();
    await page.locator('table.samples tbody tr').first().click();
    await page.locator('.transcript .raw').first().waitFor();
    const contents = await page.locator('.transcript .content').allTextContents();
    assert.ok(contents.some((t) => t.includes(HOSTILE_REPLY)), 'the reply with <script> and an onerror image appears verbatim');
    assert.ok((await page.locator('.transcript .raw').allTextContents()).some((t) => t.includes(JSON.stringify(HOSTILE_REASON).slice(1, -1))), 'the judge raw verdict (JSON) appears verbatim');
    // The classifier's record of the same reply shows its probabilities.
    await page.locator('form.filters select[name=eval]').selectOption('classifier');
    await page.locator('form.filters button[type=submit]').click();
    await page.locator('.pager .count', { hasText: '1–1 of 1 samples' }).waitFor();
    await page.locator('table.samples tbody tr').first().click();
    await page.locator('.transcript .probabilities').waitFor();
    assert.ok((await page.locator('.transcript .content').allTextContents()).some((t) => t.includes(HOSTILE_REPLY)));
    assert.match(await page.locator('.transcript .probabilities').innerText(), /sailor/);
    assert.equal(await page.locator('main img, main script, main iframe').count(), 0);
    assert.equal(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned), undefined);
    assert.deepEqual(dialogs, []);
    await shot('hostile');

    const shared = await page.context().newPage();
    await shared.goto(page.url());
    await shared.locator('.transcript .probabilities').waitFor();
    assert.ok((await shared.locator('.transcript .content').allTextContents()).some((t) => t.includes(HOSTILE_REPLY)), 'the shared link opens the same transcript');
    await shared.close();
  });

  it('opens a training curve', async () => {
    await page.locator('nav.tabs a', { hasText: 'Training' }).click();
    await page.locator('form.filters select[name=cell]').selectOption('sailor/sft-chat/seed-2');
    await page.waitForURL(/cell=sailor%2Fsft-chat%2Fseed-2/);
    await page.locator('[data-plot="loss per step"] svg').waitFor();
    assert.match(await page.locator('main').innerText(), /30 steps logged/);
    assert.ok((await page.locator('[data-plot="loss per step"] svg path').count()) > 0, 'the loss curve is drawn');
    await shot('training');
  });

  it('shows datasets with a row viewer, steering plots and preference rankings', async () => {
    await page.locator('nav.tabs a', { hasText: 'Datasets' }).click();
    assert.match(await page.locator('table.datasets').innerText(), /tooLong: 1/);
    await page.locator('table.datasets a', { hasText: 'train: 3' }).click();
    await page.locator('#rows pre.json', { hasText: 'Tell me about knots 0' }).waitFor();
    assert.match(await page.locator('table.budgets').innerText(), /chat\s+3\s+42\s+2\s+28/);
    await page.locator('table.datasets tr', { hasText: 'sailor/format-comparison' }).locator('a', { hasText: 'train: 2' }).click();
    await page.locator('#rows h2', { hasText: 'sailor/format-comparison / chat / train' }).waitFor();
    await page.locator('#rows .pager', { hasText: 'rows 1–2 of 2' }).waitFor();
    assert.equal(await page.locator('#rows pre.json').count(), 2);

    await page.locator('nav.tabs a', { hasText: 'Steering' }).click();
    await page.locator('[data-plot="steering sweep"] svg').waitFor();
    await page.locator('[data-plot="monitor scatter"] svg').waitFor();
    assert.match(await page.locator('table.capping').innerText(), /-0\.900/);
    await shot('steering');

    await page.locator('nav.tabs a', { hasText: 'Preferences' }).click();
    await page.locator('section.ranking svg').first().waitFor();
    assert.match(await page.locator('section.ranking table').innerText(), /stoic\s+0\.800\s+\[0\.400, 1\.200\]/);

    await page.locator('nav.tabs a', { hasText: 'Evals' }).click();
    await page.locator('section.eval').first().waitFor();
    const evals = await page.locator('main').innerText();
    assert.match(evals, /pooled over 2 seeds/);
    assert.match(evals, /vs base \(base\)/);
    await shot('evals');
  });

  it('compares two runs: the difference and its interval', async () => {
    await page.goto(url);
    await page.locator('form.compare-picker select[name=a]').selectOption('quick-a');
    await page.locator('form.compare-picker select[name=b]').selectOption('quick-b');
    await page.locator('form.compare-picker button').click();
    await page.locator('table.comparison').waitFor();
    const row = page.locator('table.comparison tr', { hasText: 'sailor · sft · chat' }).filter({ hasText: 'expression' });
    const cells = await row.locator('td').allInnerTexts();
    assert.match(cells[5], /^0\.100 \[/, `b - a is 0.1 (${cells[5]})`);
    await shot('compare');
  });

  it('updates live: a run that appears while the page is open is listed without a reload', async () => {
    await page.goto(url);
    await page.locator('table.runs').waitFor();
    assert.equal(await page.locator('table.runs a', { hasText: 'quick-c' }).count(), 0);
    makeFinishedRun(join(dir, 'runs'), 'quick-c');
    await page.locator('table.runs a', { hasText: 'quick-c' }).waitFor({ timeout: 15_000 });
  });

  it('loaded nothing from anywhere else and broke no policy', () => {
    const origin = new URL(url).origin;
    assert.deepEqual(
      requests.filter((r) => !r.startsWith(origin)),
      [],
    );
    assert.deepEqual(consoleErrors, []);
  });
});
