#!/usr/bin/env node
// Bundles the dashboard's page (src/view/app) into dist/view/ so `persona-lab view` needs no network:
// one script (preact, vega, vega-lite, the Vega expression interpreter), one stylesheet, index.html.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export async function buildView(out = join(root, 'dist', 'view')) {
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: [join(root, 'src', 'view', 'app', 'main.tsx')],
    outfile: join(out, 'app.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'linked',
    logLevel: 'warning',
  });
  for (const file of ['index.html', 'style.css']) copyFileSync(join(root, 'src', 'view', 'app', file), join(out, file));
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = await buildView();
  console.log(`built the dashboard into ${out}`);
}
