/**
 * The `vllm:` provider: big trained models evaluated on vLLM with their LoRA adapters, over the
 * OpenAI protocol (through OpenAIChatModel, so retries, caching and accounting are the endpoint's).
 *
 *   "vllm:<base model>[+<adapter dir>[=<name>]]..."   a managed `vllm serve` child process
 *   "vllm:<served model>@<baseURL>[+<adapter dir>[=<name>]]..."   attach to a running server
 *
 * Managed: `vllm serve <base> --host 127.0.0.1 --port <free> --enable-lora --max-lora-rank <r>
 * --lora-modules name=path ...`, health-checked on /v1/models, its output in <logDir>/vllm-<port>.log,
 * stopped when persona-lab exits. One server per base model: a later reference to the same base
 * with other adapters loads them at run time (POST /v1/load_lora_adapter; the child is started with
 * VLLM_ALLOW_RUNTIME_LORA_UPDATING). Attached servers get the same runtime loading. The rank limit
 * is set from the adapters' own rank: vLLM's default (16) is below the recipe's 64 and 256.
 *
 * A vllm subject is black-box: generation, judging and the black-box evals. Steering, persona
 * vectors, capping and activation capture need the engine; assertVllmStage refuses them up front.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename, join, resolve } from 'node:path';
import { InputError, ProviderError } from '../core/errors.js';
import { OpenAIChatModel } from './openai.js';
import type { ChatModel } from './types.js';

export interface VllmAdapter {
  name: string;
  path: string;
}

export interface VllmRef {
  /** The base model (managed) or the served model name (attached). */
  model: string;
  /** Attach to this server instead of starting one. */
  baseURL?: string;
  adapters: VllmAdapter[];
}

/** vLLM's accepted --max-lora-rank values. */
const LORA_RANKS = [1, 8, 16, 32, 64, 128, 256, 320, 512];

export function parseVllmRef(ref: string, cwd = process.cwd()): VllmRef {
  const m = /^vllm:([^+@]+?)(?:@(https?:\/\/[^+\s]+))?((?:\+[^+]+)*)$/.exec(ref);
  if (!m) throw new InputError('model reference', ref, 'expected "vllm:<base model>[+<adapter dir>[=<name>]]..." or "vllm:<model>@<baseURL>[+...]"');
  const adapters = m[3]
    .split('+')
    .filter(Boolean)
    .map((part) => {
      const [path, name] = part.split('=');
      const abs = resolve(cwd, path);
      return { path: abs, name: name || basename(resolve(abs, '..')) + '-' + basename(abs) };
    });
  return { model: m[2] || !existsSync(resolve(cwd, m[1])) ? m[1] : resolve(cwd, m[1]), baseURL: m[2], adapters };
}

/** The LoRA rank the server must allow: the largest adapter rank, rounded up to a value vLLM accepts. */
export function maxLoraRank(adapters: readonly VllmAdapter[]): number {
  let r = 16;
  for (const a of adapters) {
    const file = join(a.path, 'adapter_config.json');
    if (!existsSync(file)) throw new InputError(file, '', 'a PEFT adapter (adapter_config.json) for the vllm provider');
    r = Math.max(r, Number((JSON.parse(readFileSync(file, 'utf8')) as { r?: number }).r ?? 0));
  }
  const allowed = LORA_RANKS.find((x) => x >= r);
  if (!allowed) throw new InputError('model reference', 'vllm', `LoRA rank at most 512 (vLLM's limit; found ${r})`);
  return allowed;
}

export interface VllmServeOptions {
  /** The vllm executable (default: PERSONA_LAB_VLLM or `vllm` on PATH). */
  binary?: string;
  host?: string;
  port: number;
  /** Arguments appended as given (tensor parallelism, memory utilisation, dtype...). */
  extraArgs?: readonly string[];
}

/** The `vllm serve` command line for a reference (managed mode). */
export function vllmServeArgs(ref: VllmRef, o: VllmServeOptions): string[] {
  const args = ['serve', ref.model, '--host', o.host ?? '127.0.0.1', '--port', String(o.port)];
  if (ref.adapters.length > 0) {
    args.push('--enable-lora', '--max-lora-rank', String(maxLoraRank(ref.adapters)), '--max-loras', String(Math.max(1, ref.adapters.length)));
    args.push('--lora-modules', ...ref.adapters.map((a) => `${a.name}=${a.path}`));
  }
  return [...args, ...(o.extraArgs ?? [])];
}

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}

export interface VllmServer {
  baseURL: string;
  child?: ChildProcess;
  logFile?: string;
  /** Adapter names the server already serves. */
  served: Set<string>;
  stop(): Promise<void>;
}

export interface StartVllmOptions extends Partial<VllmServeOptions> {
  /** Where the server's log goes (default .cache/persona-lab/vllm under cwd). */
  logDir?: string;
  cwd?: string;
  /** How long to wait for /v1/models to answer (default 20 minutes: big models load slowly). */
  startupTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

const running = new Set<ChildProcess>();
let exitHook = false;

/** Starts `vllm serve` for a reference and waits until it answers; a missing vllm is an InputError naming the fix. */
export async function startVllm(ref: VllmRef, o: StartVllmOptions = {}): Promise<VllmServer> {
  const env = o.env ?? process.env;
  const binary = o.binary ?? env.PERSONA_LAB_VLLM ?? 'vllm';
  const port = o.port ?? (await freePort());
  const host = o.host ?? '127.0.0.1';
  const args = vllmServeArgs(ref, { binary, host, port, extraArgs: o.extraArgs });
  const logDir = o.logDir ?? join(o.cwd ?? process.cwd(), '.cache', 'persona-lab', 'vllm');
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, `vllm-${port}.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(binary, args, { env: { ...env, VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'True' }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  running.add(child);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => running.forEach((c) => c.kill('SIGKILL')));
  }
  const exited = new Promise<Error>((ok) => {
    child.once('error', (e: NodeJS.ErrnoException) =>
      ok(e.code === 'ENOENT' ? new InputError('model reference', 'vllm', `the vllm executable "${binary}" (not found: pip install vllm on a GPU machine, or set PERSONA_LAB_VLLM)`) : e),
    );
    child.once('exit', (code, signal) => {
      running.delete(child);
      ok(new ProviderError(`vllm serve exited (${signal ?? `code ${code}`}) before answering; see ${logFile}`));
    });
  });
  const baseURL = `http://${host}:${port}/v1`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(killer);
    log.end();
  };
  const deadline = Date.now() + (o.startupTimeoutMs ?? 20 * 60_000);
  let failure: Error | undefined;
  void exited.then((e) => (failure = e));
  while (!failure) {
    try {
      const r = await fetch(`${baseURL}/models`, { signal: AbortSignal.timeout(2000) });
      if (r.ok) return { baseURL, child, logFile, served: new Set(ref.adapters.map((a) => a.name)), stop };
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new ProviderError(`vllm serve did not answer on ${baseURL} within ${Math.round((o.startupTimeoutMs ?? 0) / 1000)} s; see ${logFile}`);
    }
    await new Promise((ok) => setTimeout(ok, 250));
  }
  throw failure;
}

/** Loads an adapter into a running server (vLLM's runtime LoRA endpoint). */
export async function loadVllmAdapter(server: VllmServer, adapter: VllmAdapter): Promise<void> {
  if (server.served.has(adapter.name)) return;
  const r = await fetch(`${server.baseURL}/load_lora_adapter`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ lora_name: adapter.name, lora_path: adapter.path }),
  });
  if (!r.ok) throw new ProviderError(`vllm at ${server.baseURL} refused adapter ${adapter.name} (${r.status} ${(await r.text()).slice(0, 300)}); start it with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True and --enable-lora`);
  server.served.add(adapter.name);
}

const servers = new Map<string, Promise<VllmServer>>();

/**
 * A ChatModel for a `vllm:` reference: the last adapter named (or the base when none) served by
 * the base model's server, started or attached once per base and kept until exit.
 */
export async function createVllmChatModel(ref: string, o: StartVllmOptions = {}): Promise<ChatModel> {
  const parsed = parseVllmRef(ref, o.cwd);
  const key = parsed.baseURL ?? parsed.model;
  let pending = servers.get(key);
  if (!pending) {
    pending = parsed.baseURL
      ? Promise.resolve({ baseURL: parsed.baseURL.replace(/\/$/, ''), served: new Set<string>(), stop: async () => {} })
      : startVllm(parsed, o);
    pending.catch(() => servers.delete(key));
    servers.set(key, pending);
  }
  const server = await pending;
  for (const a of parsed.adapters) await loadVllmAdapter(server, a);
  const served = parsed.adapters.at(-1)?.name ?? parsed.model;
  return new OpenAIChatModel({ model: served, baseURL: server.baseURL, apiKey: (o.env ?? process.env).VLLM_API_KEY || 'sk-no-key-required' });
}

/** Stops every managed server this process started (tests; the CLI relies on the exit hook). */
export async function stopVllmServers(): Promise<void> {
  const all = [...servers.values()];
  servers.clear();
  await Promise.all(all.map(async (p) => (await p.catch(() => null))?.stop()));
}

/** Stages a vllm subject supports: everything black-box. */
export const VLLM_STAGES = ['generate', 'judge', 'evals', 'report'] as const;

/** Refuses white-box stages (steering, persona vectors, capping, activation capture) for a vllm subject, before anything is written. */
export function assertVllmStage(ref: string, stage: string, file: string, field: string): void {
  if (ref.startsWith('vllm:') && !(VLLM_STAGES as readonly string[]).includes(stage)) {
    throw new InputError(file, field, `a local engine model ("local:...") for the ${stage} stage: a vllm subject serves text only (supported: ${VLLM_STAGES.join(', ')}), and ${stage} needs activations`);
  }
}
