/**
 * Headless Chromium (Debian's package, driven by playwright-core) for the tests of what a person
 * sees: a page whose requests, dialogs and console errors are recorded, so a test can assert that
 * hostile model output ran nothing and fetched nothing.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface WatchedPage {
  browser: Browser;
  context: BrowserContext;
  page: Page;
  requests: string[];
  dialogs: string[];
  consoleErrors: string[];
}

/** Launches Chromium and opens a page that records every request, dialog (dismissed) and console error. */
export async function openWatchedPage(width: number): Promise<WatchedPage> {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  const watched: WatchedPage = { browser, context, page, requests: [], dialogs: [], consoleErrors: [] };
  page.on('request', (r) => watched.requests.push(r.url()));
  page.on('dialog', (d) => {
    watched.dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('console', (m) => {
    if (m.type() === 'error') watched.consoleErrors.push(m.text());
  });
  return watched;
}
