/**
 * The report as a person sees it: written from a constructed run directory, opened from disk in real
 * headless Chromium, screenshotted. Hostile model replies must show as text and run nothing, the
 * plots must be there, and the page must load nothing from anywhere.
 * PERSONA_LAB_KEEP_REPORT=1 keeps the temporary directory (report and screenshot) for a look.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { writeReport } from '../../src/report/index.js';
import { HOSTILE, HOSTILE_CATEGORY, makeRun, SCRIPT_REPLY } from './fixture.js';
import { openWatchedPage } from '../support/chromium.js';


describe('report in headless Chromium', () => {
  let dir: string;
  let browser: Browser;
  let page: Page;
  let requests: string[] = [];
  let dialogs: string[] = [];
  let consoleErrors: string[] = [];
  let files: { html: string; markdown: string };
  let screenshot: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'persona-lab-report-'));
    makeRun(join(dir, 'run'));
    files = await writeReport(join(dir, 'run'));
    const watched = await openWatchedPage(1200);
    ({ browser, page, requests, dialogs, consoleErrors } = watched);
    const { context } = watched;
    // Everything but the report file itself is refused (and recorded by the request listener).
    const reportUrl = pathToFileURL(files.html).href;
    await context.route('**/*', (route) => (route.request().url() === reportUrl ? route.continue() : route.abort()));
    await page.goto(reportUrl, { waitUntil: 'load' });
    screenshot = join(dir, 'report.png');
    await page.screenshot({ path: screenshot, fullPage: true });
  });

  after(async () => {
    await browser?.close();
    if (process.env.PERSONA_LAB_KEEP_REPORT) console.log(`report kept in ${dir}`);
    else if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('writes the page and the Markdown beside the run', () => {
    assert.equal(files.html, join(dir, 'run', 'report.html'));
    assert.equal(files.markdown, join(dir, 'run', 'report.md'));
    assert.ok(statSync(files.markdown).size > 0);
  });

  it('shows a <script> reply as text and runs none of the hostile replies', async () => {
    const shown = await page.locator('.transcript .content').allTextContents();
    assert.ok(shown.some((t) => t.includes(SCRIPT_REPLY)), 'the <script> reply appears verbatim as text');
    assert.ok(shown.some((t) => t.includes(HOSTILE.img)), 'the <img onerror> reply appears verbatim as text');
    assert.ok(shown.some((t) => t.includes(HOSTILE.svg)), 'the </svg> reply appears verbatim as text');
    assert.ok((await page.locator('.judge').allTextContents()).some((t) => t.includes(HOSTILE.reason)), 'the judge reason appears as text');
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    assert.deepEqual(dialogs, []);
    assert.equal(await page.locator('script').count(), 0, 'the page holds no script element');
    assert.equal(await page.locator('img, iframe, object, embed, link[rel]').count(), 0, 'no element that loads anything');
    const handlers = await page.evaluate(() => [...document.querySelectorAll('*')].flatMap((el) => [...el.attributes].filter((a) => a.name.startsWith('on')).map((a) => a.name)));
    assert.deepEqual(handlers, []);
  });

  it('makes no network request: only the file itself is loaded', () => {
    assert.deepEqual(requests, [pathToFileURL(files.html).href]);
    assert.deepEqual(consoleErrors, []);
  });

  it('inlines non-empty SVG plots for every plotted section, with hostile labels as text', async () => {
    for (const id of ['comparison', 'confusion', 'preferences', 'leakage', 'drift', 'big-five', 'capability']) {
      const svgs = page.locator(`section#${id} figure > svg`);
      assert.ok((await svgs.count()) > 0, `section ${id} has a plot`);
      const box = await svgs.first().boundingBox();
      assert.ok(box && box.width > 100 && box.height > 60, `section ${id}: plot has a size (${JSON.stringify(box)})`);
      assert.ok((await svgs.first().locator('path, line, rect').count()) > 5, `section ${id}: plot has marks`);
    }
    // The leakage category holding "</svg><script>" is a text label inside the plot, not markup.
    const labels = await page.locator('section#leakage svg text').allTextContents();
    assert.ok(labels.some((t) => t.includes('</svg>') || t.includes(HOSTILE_CATEGORY.slice(0, 12))), 'hostile category drawn as text');
    assert.equal(await page.locator('section#leakage svg svg').count(), 0, 'no nested svg from the label');
  });

  it('has tables with n and 95% intervals, and one-line notes for absent sections', async () => {
    const headers = await page.locator('section#comparison table th').allTextContents();
    assert.deepEqual(headers.slice(0, 5), ['persona', 'condition', 'strength', '95% CI', 'n']);
    const firstRow = await page.locator('section#comparison table tbody tr').first().locator('td').allTextContents();
    assert.equal(firstRow[1], 'base', 'baselines come first');
    assert.equal(firstRow[3], '[0.03, 0.25]');
    assert.equal(firstRow[4], '60');
    assert.equal(await page.locator('h2').filter({ hasText: 'Sample transcripts' }).count(), 1);
  });

  it('produces a full-page screenshot', () => {
    const png = readFileSync(screenshot);
    assert.equal(png.subarray(1, 4).toString(), 'PNG');
    assert.ok(png.length > 20_000, `screenshot is ${png.length} bytes`);
  });
});
