/**
 * `persona-lab view`: a local web app over a runs directory. A JSON API reads runs through the
 * writers' schemas (runs.ts) and streams journals; the page is a prebuilt bundle (dist/view, built by
 * `npm run build:view` at install) served with a strict Content Security Policy: scripts only from
 * this server, no inline script or eval (plots use Vega's interpreter), nothing loaded from elsewhere.
 * Binds 127.0.0.1 unless told otherwise and answers only requests addressed to it by that name.
 */
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../core/errors.js';
import { compareRuns, groupsOf, metricTables } from './headline.js';
import {
  changeStamp,
  curveCells,
  datasetRows,
  findSample,
  findSamples,
  listRun,
  listRuns,
  readCurve,
  readBudgets,
  readDatasets,
  readSteer,
  readSummary,
  runDirOf,
  sampleJournals,
  subjectsOf,
  trainedCells,
} from './runs.js';

/** Where the page bundle lives (written by scripts/build-view.mjs). */
export const VIEW_ASSETS = fileURLToPath(new URL('../../dist/view/', import.meta.url));

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** How often an open page's event stream looks for new writes to its run. */
const WATCH_MS = 1000;
const MAX_PAGE = 200;

export interface ViewOptions {
  host?: string;
  port?: number;
  /** The page bundle's directory (default dist/view of the package). */
  assets?: string;
}

export interface ViewHandle {
  url: string;
  close(): Promise<void>;
}

const int = (v: unknown, fallback: number, max = Number.MAX_SAFE_INTEGER) => {
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 ? Math.min(n, max) : fallback;
};
const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);

export async function startView(runsDir: string, options: ViewOptions = {}): Promise<ViewHandle> {
  const root = resolve(runsDir);
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new InputError(runsDir, '', 'a runs directory (the folder holding run directories, e.g. runs/)');
  const assets = options.assets ?? VIEW_ASSETS;
  if (!existsSync(resolve(assets, 'index.html'))) throw new Error(`the dashboard is not built (${assets} has no index.html): run "npm run build:view"`);
  const indexHtml = readFileSync(resolve(assets, 'index.html'), 'utf8');
  const host = options.host ?? '127.0.0.1';

  const app = Fastify({ logger: false, bodyLimit: 1024, forceCloseConnections: true });
  let allowedHosts = new Set<string>();
  app.addHook('onRequest', async (request, reply) => {
    // A page elsewhere cannot reach the API through a name that resolves here (DNS rebinding).
    if (!allowedHosts.has(request.headers.host ?? '')) return reply.code(403).type('text/plain').send('forbidden host');
    // ".." in a path (plain or encoded) never names anything served.
    let path = request.url.split('?')[0];
    try {
      path = decodeURIComponent(path);
    } catch {
      return reply.code(404).type('text/plain').send('not found');
    }
    if (/(^|[/\\])\.\.([/\\]|$)/.test(path)) return reply.code(404).type('text/plain').send('not found');
  });
  // Whatever the static files plugin refuses is, to a client, simply not there.
  app.setErrorHandler(async (error: { statusCode?: number }, _request, reply) => {
    const status = error.statusCode ?? 500;
    return reply.code(status >= 400 && status < 500 ? 404 : status).type('text/plain').send(status < 500 ? 'not found' : 'server error');
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('content-security-policy', CSP);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cross-origin-resource-policy', 'same-origin');
    return payload;
  });
  await app.register(fastifyStatic, { root: assets, prefix: '/assets/', index: false, wildcard: true, dotfiles: 'deny' });

  const runOr404 = (request: FastifyRequest<{ Params: { run: string } }>, reply: FastifyReply) => {
    const dir = runDirOf(root, request.params.run);
    if (!dir) void reply.code(404).send({ error: 'no such run' });
    return dir;
  };
  const runData = async (dir: string) => {
    const summary = readSummary(dir);
    const subjects = summary ? subjectsOf(summary, await trainedCells(dir)) : [];
    const groups = groupsOf(subjects);
    return { summary, subjects, groups, tables: summary ? metricTables(summary, groups) : [] };
  };

  app.get('/api/runs', async () => listRuns(root));

  app.get<{ Params: { run: string } }>('/api/runs/:run', async (request, reply) => {
    const dir = runOr404(request, reply);
    if (!dir) return reply;
    const data = await runData(dir);
    return {
      listing: listRun(root, request.params.run),
      ...data,
      summary: data.summary && { ...data.summary, evals: data.summary.evals.map(({ eval: e, status, reason, unparsed, judgeAgreement, plots, notes }) => ({ eval: e, status, reason, unparsed, judgeAgreement, plots, notes })) },
      journals: sampleJournals(dir),
      curves: curveCells(dir),
      datasets: readDatasets(dir),
      budgets: readBudgets(dir),
      steer: readSteer(dir) ?? null,
    };
  });

  app.get<{ Params: { run: string }; Querystring: Record<string, string> }>('/api/runs/:run/samples', async (request, reply) => {
    const dir = runOr404(request, reply);
    if (!dir) return reply;
    const q = request.query;
    const { subjects } = await runData(dir);
    const seed = str(q.seed) === undefined ? undefined : Number(q.seed);
    return findSamples(dir, subjects, { eval: str(q.eval), subject: str(q.subject), persona: str(q.persona), method: str(q.method), format: str(q.format), seed, q: str(q.q) }, int(q.offset, 0), int(q.limit, 50, MAX_PAGE));
  });

  app.get<{ Params: { run: string }; Querystring: Record<string, string> }>('/api/runs/:run/sample', async (request, reply) => {
    const dir = runOr404(request, reply);
    if (!dir) return reply;
    const { eval: evaluation, subject, key } = request.query;
    const found = evaluation && subject && key ? await findSample(dir, evaluation, subject, key) : undefined;
    return found ?? reply.code(404).send({ error: 'no such sample' });
  });

  app.get<{ Params: { run: string }; Querystring: Record<string, string> }>('/api/runs/:run/curve', async (request, reply) => {
    const dir = runOr404(request, reply);
    if (!dir) return reply;
    const curve = request.query.cell ? await readCurve(dir, request.query.cell) : undefined;
    return curve ?? reply.code(404).send({ error: 'no such training log' });
  });

  app.get<{ Params: { run: string }; Querystring: Record<string, string> }>('/api/runs/:run/rows', async (request, reply) => {
    const dir = runOr404(request, reply);
    if (!dir) return reply;
    const q = request.query;
    const page = q.name && q.variant ? await datasetRows(dir, q.folder ?? '', q.name, q.variant, int(q.offset, 0), int(q.limit, 20, MAX_PAGE)) : undefined;
    return page ?? reply.code(404).send({ error: 'no such dataset file' });
  });

  app.get<{ Querystring: Record<string, string> }>('/api/compare', async (request, reply) => {
    const a = runDirOf(root, request.query.a ?? '');
    const b = runDirOf(root, request.query.b ?? '');
    if (!a || !b) return reply.code(404).send({ error: 'no such run' });
    return { a: request.query.a, b: request.query.b, rows: compareRuns(await runData(a), await runData(b)) };
  });

  // Server-sent events: "change" whenever anything under the run (or the runs directory) was written.
  app.get<{ Querystring: Record<string, string> }>('/api/events', async (request, reply) => {
    const run = str(request.query.run);
    if (run && !runDirOf(root, run)) return reply.code(404).send({ error: 'no such run' });
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', 'content-security-policy': CSP, 'x-content-type-options': 'nosniff' });
    let last = changeStamp(root, run);
    reply.raw.write(`event: hello\ndata: ${last}\n\n`);
    const timer = setInterval(() => {
      const now = changeStamp(root, run);
      if (now !== last) reply.raw.write(`event: change\ndata: ${now}\n\n`);
      last = now;
    }, WATCH_MS);
    request.raw.on('close', () => clearInterval(timer));
  });

  // The page itself, for the app's own routes only; anything else is 404.
  const page = async (_request: FastifyRequest, reply: FastifyReply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(indexHtml);
  app.get('/', page);
  app.get('/compare', page);
  app.get('/runs/:run', page);
  app.get('/runs/:run/:tab', page);
  app.setNotFoundHandler(async (_request, reply) => reply.code(404).type('text/plain').send('not found'));

  const address = await app.listen({ host, port: options.port ?? 0 });
  const port = Number(new URL(address).port);
  const names = host === '127.0.0.1' || host === 'localhost' ? ['127.0.0.1', 'localhost'] : [host.includes(':') ? `[${host}]` : host];
  allowedHosts = new Set(names.map((n) => `${n}:${port}`));
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    close: () => app.close(),
  };
}
