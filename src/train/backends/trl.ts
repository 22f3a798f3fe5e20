/**
 * The `trl` training backend: the cell's job trained by TRL (SFTTrainer, DPOTrainer, GRPOTrainer)
 * with PEFT LoRA, launched through `accelerate launch`, so one GPU, several, DeepSpeed ZeRO or FSDP
 * are a matter of the user's accelerate config. The Python side is the small package in python/
 * (persona_lab_trl), installed into a venv by `persona-lab setup trl`.
 *
 * Per cell, runDir/trl/ is the job directory: dataset.jsonl, job.json (persona-lab's options mapped
 * onto TRL's names, LoRA config), accelerate.yaml and launch.sh. The same directory is what `emit`
 * writes for a cluster (SLURM, torchrun): run launch.sh there, and a later train finds done.json and
 * takes the finished adapter. Step lines stream into runDir/train.jsonl in the engine's StepLog
 * schema; TRL checkpoints in runDir/trl/checkpoints, from which a killed job resumes. GRPO's reward
 * is persona-lab's own, served on 127.0.0.1 for the Python reward function to call.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, copyFileSync, cpSync, createWriteStream, existsSync, mkdirSync, openSync, readFileSync, readdirSync, readSync, realpathSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { InputError } from '../../core/errors.js';
import { Journal, writeFileAtomic } from '../../core/journal.js';
import { loadModelConfig } from '../../engine/io/config.js';
import { architectureOf } from '../../engine/models/index.js';
import { adapterBaseOf } from '../../providers/hub/cache.js';
import type { DpoOptions, GrpoOptions, SftOptions } from '../options.js';
import { makeRewardFunction } from '../rewards.js';
import type { StepLog } from '../trainer.js';
import { TrainJobHandedOff, type GrpoJob, type TrainBackend, type TrainJob, type TrainJobResult } from './types.js';

/** The Python package shipped with persona-lab (python/ at the repository root). */
export const PYTHON_PACKAGE_DIR = resolve(import.meta.dirname, '..', '..', '..', 'python');

/** Where `persona-lab setup trl` puts the venv: PERSONA_LAB_TRL_VENV, else ~/.cache/persona-lab/trl-venv. */
export function defaultTrlVenv(env: NodeJS.ProcessEnv = process.env): string {
  return env.PERSONA_LAB_TRL_VENV || join(homedir(), '.cache', 'persona-lab', 'trl-venv');
}

export const trlBackendOptionsSchema = z
  .object({
    /** The venv holding python/requirements.txt (default: defaultTrlVenv()). */
    venv: z.string().min(1).optional(),
    /** The user's accelerate config (accelerate config / DeepSpeed / FSDP), copied into the job; default: one process. */
    accelerateConfig: z.string().min(1).optional(),
    /** Extra arguments for `accelerate launch` (e.g. ["--num_processes", "4"]). */
    launchArgs: z.array(z.string()).default([]),
    /** 'cuda' refuses to start without a GPU; 'cpu' trains on the CPU; 'auto' takes what torch finds. */
    device: z.enum(['auto', 'cpu', 'cuda']).default('auto'),
    /** Write the job directory and stop (for a cluster); a later train picks up the finished adapter. */
    emit: z.boolean().default(false),
    /** GRPO: generate with vLLM inside TRL (use_vllm) instead of plain generation. */
    vllm: z.boolean().default(false),
    /** Model dtype on the Python side. */
    dtype: z.enum(['float32', 'bfloat16', 'float16']).default('float32'),
    /** TRL config fields set as given, after persona-lab's mapping (the escape hatch for anything not mapped). */
    trl: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();
export type TrlBackendOptions = z.infer<typeof trlBackendOptionsSchema>;

/** A job written (emit) but not yet run: not a failure, the user runs launch.sh elsewhere. */
export class TrlJobEmitted extends TrainJobHandedOff {
  constructor(readonly jobDir: string) {
    super(`trl job written to ${jobDir}: run ${join(jobDir, 'launch.sh')} (locally, under SLURM or torchrun), then train again to pick up the adapter`);
    this.name = 'TrlJobEmitted';
  }
}

function parseOptions(job: TrainJob): TrlBackendOptions {
  const r = trlBackendOptionsSchema.safeParse(job.backendOptions);
  if (!r.success) {
    const e = InputError.fromZod('experiment', r.error);
    throw new InputError(e.file, `train.backendOptions.${e.field}`, e.expected);
  }
  return r.data;
}

type Shape = SftOptions | DpoOptions | GrpoOptions;

/** Hugging Face scheduler name and arguments for persona-lab's schedule options. */
function scheduler(o: Shape['optimizer']): Record<string, unknown> {
  const warm = o.warmupSteps > 0 || o.warmupRatio > 0;
  if (o.schedule === 'constant') return { lr_scheduler_type: warm ? 'constant_with_warmup' : 'constant' };
  if (o.schedule === 'cosine' && o.minLrRatio > 0) return { lr_scheduler_type: 'cosine_with_min_lr', lr_scheduler_kwargs: { min_lr_rate: o.minLrRatio } };
  if (o.minLrRatio > 0) throw new InputError('experiment', 'train.optimizer.minLrRatio', '0 with train.backend trl and a linear schedule (TRL has a floor only for cosine)');
  return { lr_scheduler_type: o.schedule };
}

/** persona-lab's options for one objective mapped onto TRL's config fields (the published defaults carry over). */
export function trlConfig(job: TrainJob, opts: TrlBackendOptions): Record<string, unknown> {
  const o: Shape = job.options;
  const warmup = o.optimizer.warmupSteps > 0 ? o.optimizer.warmupSteps : o.optimizer.warmupRatio;
  const common: Record<string, unknown> = {
    learning_rate: o.optimizer.lr,
    adam_beta1: o.optimizer.betas[0],
    adam_beta2: o.optimizer.betas[1],
    adam_epsilon: o.optimizer.eps,
    weight_decay: o.optimizer.weightDecay,
    max_grad_norm: o.optimizer.maxGradNorm,
    ...scheduler(o.optimizer),
    ...(warmup > 0 && { warmup_steps: warmup }),
    num_train_epochs: o.epochs,
    max_steps: o.maxSteps ?? -1,
    per_device_train_batch_size: o.batchSize,
    gradient_accumulation_steps: o.gradAccumulation,
    save_steps: o.checkpointEvery,
    gradient_checkpointing: o.activationCheckpointing !== 'off',
  };
  let objective: Record<string, unknown>;
  if (job.objective === 'sft') {
    objective = { packing: job.options.packing };
  } else if (job.objective === 'dpo') {
    // NLL on chosen replies as TRL expresses it now: a second loss term 'sft' with its weight
    const nll = job.options.nllCoef;
    objective = { beta: job.options.beta, loss_type: nll > 0 ? ['sigmoid', 'sft'] : ['sigmoid'], ...(nll > 0 && { loss_weights: [1, nll] }) };
  } else {
    const g = job.options;
    objective = {
      // TRL counts completions per device batch: batchSize prompts x groupSize completions each
      per_device_train_batch_size: g.batchSize * g.groupSize,
      num_generations: g.groupSize,
      max_completion_length: g.maxNewTokens,
      temperature: g.temperature,
      top_p: g.topP,
      epsilon: g.clip,
      beta: g.klCoef,
      loss_type: g.lossAggregation === 'token' ? 'dapo' : 'grpo',
      use_vllm: opts.vllm,
    };
  }
  return { ...common, ...objective, ...opts.trl };
}

/** PEFT's LoraConfig: target modules by the projection names the base's architecture gives them. */
function loraConfig(o: Shape, model: string): Record<string, unknown> | null {
  if (o.fullParameter) return null;
  const config = loadModelConfig(model);
  const modules = architectureOf(config).loraModules(config);
  return {
    r: o.lora.rank,
    lora_alpha: o.lora.alpha,
    lora_dropout: o.lora.dropout,
    target_modules: o.lora.targets.map((t) => modules[t].path.split('.').at(-1)),
  };
}

const DEFAULT_ACCELERATE = (cpu: boolean) =>
  ['compute_environment: LOCAL_MACHINE', "distributed_type: 'NO'", 'num_machines: 1', 'num_processes: 1', "mixed_precision: 'no'", `use_cpu: ${cpu}`, ''].join('\n');

/** launch.sh: the one command that runs the job, here or on a cluster node (ACCELERATE and PYTHON_PACKAGE may be overridden). */
function launchScript(opts: TrlBackendOptions): string {
  const args = opts.launchArgs.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return `#!/usr/bin/env bash
# Runs this persona-lab trl job: works as is, from an sbatch script, or with ACCELERATE set to a
# torchrun-capable accelerate of the cluster's environment. Rerunning resumes from checkpoints/.
set -euo pipefail
cd "$(dirname "$0")"
export PYTHONPATH="\${PYTHON_PACKAGE:-${PYTHON_PACKAGE_DIR}}\${PYTHONPATH:+:$PYTHONPATH}"
exec "\${ACCELERATE:-accelerate}" launch --config_file accelerate.yaml ${args} -m persona_lab_trl.train job.json
`;
}

/** Writes runDir/trl/ (idempotent); refuses a directory whose job.json was made with other options. */
export function writeJobDir(job: TrainJob, opts: TrlBackendOptions, rewardUrl?: string): string {
  const dir = join(job.runDir, 'trl');
  const base = adapterBaseOf(job.model);
  const spec = {
    objective: job.objective,
    model: resolve(job.model),
    dataset: 'dataset.jsonl',
    output_dir: 'checkpoints',
    adapter_dir: 'adapter',
    done: 'done.json',
    log: '../train.jsonl',
    seed: job.seed,
    device: opts.device,
    dtype: opts.dtype,
    max_length: job.options.maxLength,
    lora: loraConfig(job.options, job.model),
    trl: trlConfig(job, opts),
  };
  const jobFile = join(dir, 'job.json');
  const text = JSON.stringify(spec, null, 2) + '\n';
  if (existsSync(jobFile)) {
    // base_model follows from model; reward_url is this run's server
    const { reward_url: _, base_model: __, ...before } = JSON.parse(readFileSync(jobFile, 'utf8')) as Record<string, unknown>;
    if (JSON.stringify(before, null, 2) + '\n' !== text) {
      throw new InputError(jobFile, '', 'the job this cell was started with (its options differ now; remove the cell directory to train afresh)');
    }
  }
  mkdirSync(dir, { recursive: true });
  copyFileSync(job.dataset, join(dir, 'dataset.jsonl'));
  // how the adapter names its base, as the engine's adapters do (a Hub snapshot: its Hub id and commit)
  const base_model = { name_or_path: base.baseModelNameOrPath, revision: base.revision };
  writeFileAtomic(jobFile, JSON.stringify({ ...spec, base_model, ...(rewardUrl && { reward_url: rewardUrl }) }, null, 2) + '\n');
  writeFileAtomic(join(dir, 'accelerate.yaml'), opts.accelerateConfig ? readFileSync(opts.accelerateConfig, 'utf8') : DEFAULT_ACCELERATE(opts.device === 'cpu'));
  writeFileAtomic(join(dir, 'launch.sh'), launchScript(opts));
  return dir;
}

export interface TrlProbe {
  versions: Record<string, string>;
  /** Whether torch sees a GPU (null: not asked; that needs importing torch, seconds). */
  cuda: boolean | null;
}

const TRL_PACKAGES = ['torch', 'transformers', 'trl', 'peft', 'accelerate'];

/**
 * The packages' versions from their dist-info directories in the venv's own site-packages (what
 * importlib.metadata reads), without starting Python; null when one is not there.
 */
function installedVersions(python: string, venv: string): Record<string, string> | null {
  const version = /^python3\.\d+$/.exec(basename(realpathSync(python)))?.[0];
  const site = version && join(venv, 'lib', version, 'site-packages');
  if (!site || !existsSync(site)) return null;
  const versions: Record<string, string> = {};
  for (const entry of readdirSync(site)) {
    const m = /^(.+)-([^-]+)\.dist-info$/.exec(entry);
    const name = m?.[1].toLowerCase().replace(/[-_.]+/g, '_');
    if (m && name && TRL_PACKAGES.includes(name) && existsSync(join(site, entry, 'METADATA'))) versions[name] = m[2];
  }
  return TRL_PACKAGES.every((n) => n in versions) ? versions : null;
}

/**
 * The pinned packages' versions in the venv; null when the venv or a package is missing. `imports`
 * imports them all and asks torch for a GPU (slow: torch loads). Otherwise the venv's site-packages
 * is read directly, and only when a package is not found there does Python's importlib.metadata
 * look wherever the interpreter finds packages (system site-packages, .pth paths): a job's checks
 * start no process.
 */
export async function probeTrl(venv: string, imports = false): Promise<TrlProbe | null> {
  const python = join(venv, 'bin', 'python');
  if (!existsSync(python)) return null;
  const installed = imports ? null : installedVersions(python, venv);
  if (installed) return { versions: installed, cuda: null };
  const names = JSON.stringify(TRL_PACKAGES);
  const code = imports
    ? `import importlib, json; ms = [importlib.import_module(n) for n in ${names}]; print(json.dumps({"versions": {m.__name__: m.__version__ for m in ms}, "cuda": ms[0].cuda.is_available()}))`
    : `import importlib.metadata as md, json; print(json.dumps({"versions": {n: md.version(n) for n in ${names}}, "cuda": None}))`;
  try {
    const { stdout } = await promisify(execFile)(python, ['-c', code], { timeout: 300_000 });
    return JSON.parse(stdout.trim().split('\n').at(-1)!) as TrlProbe;
  } catch {
    return null;
  }
}

async function check(job: TrainJob): Promise<void> {
  const opts = parseOptions(job);
  if (job.options.steering) throw new InputError('experiment', `train.${job.objective}.steering`, 'no preventative steering with train.backend trl (it needs the engine backend)');
  if (job.options.baseWeights !== 'float32') throw new InputError('experiment', `train.${job.objective}.baseWeights`, "'float32' with train.backend trl (int8 bases are the engine's)");
  if (opts.accelerateConfig && !existsSync(opts.accelerateConfig)) throw new InputError(opts.accelerateConfig, '', 'an accelerate config file (train.backendOptions.accelerateConfig)');
  if (opts.emit) return; // the job runs elsewhere
  const venv = opts.venv ?? defaultTrlVenv();
  const probe = await probeTrl(venv, opts.device === 'cuda');
  if (!probe) throw new InputError(venv, '', 'a Python venv with torch, transformers, trl, peft and accelerate for train.backend trl: run `persona-lab setup trl`');
  if (opts.device === 'cuda' && !probe.cuda) throw new InputError('experiment', 'train.backendOptions.device', `'cuda' needs a GPU torch can see (torch ${probe.versions.torch} found none); use 'auto' or 'cpu'`);
}

/** Serves persona-lab's composite reward for GRPO on 127.0.0.1: POST {prompts, completions} -> {rewards}. */
export async function startRewardServer(job: GrpoJob): Promise<{ url: string; server: Server }> {
  const reward = makeRewardFunction(job.options.rewards, { judge: job.judge, classifiers: job.classifiers, granularity: job.options.granularity });
  const body = z.object({ prompts: z.array(z.union([z.string(), z.array(z.object({ role: z.string(), content: z.string() }).passthrough())])), completions: z.array(z.string()) }).refine((b) => b.prompts.length === b.completions.length);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 64 * 2 ** 20) req.destroy(); // bounded: a batch of completions, not more
      else chunks.push(c);
    });
    req.on('end', () => {
      void (async () => {
        try {
          if (req.method !== 'POST' || req.url !== '/reward') throw Object.assign(new Error('POST /reward only'), { status: 404 });
          const b = body.parse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          const rewards = await Promise.all(b.prompts.map(async (p, i) => (await reward(p, b.completions[i])).total));
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ rewards }));
        } catch (error) {
          res.writeHead((error as { status?: number }).status ?? 400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: (error as Error).message }));
        }
      })();
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/reward`, server };
}

/** The latest TRL checkpoint step in checkpoints/ (0 when none). */
function checkpointStep(jobDir: string): number {
  const dir = join(jobDir, 'checkpoints');
  if (!existsSync(dir)) return 0;
  const steps = readdirSync(dir)
    .map((n) => /^checkpoint-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null && existsSync(join(dir, m[0], 'trainer_state.json')))
    .map((m) => Number(m[1]));
  return steps.length ? Math.max(...steps) : 0;
}

/** Steps the job will take, for the progress bar (TRL decides the exact count). */
function plannedSteps(job: TrainJob): number {
  const o: Shape = job.options;
  if (o.maxSteps) return o.maxSteps;
  const rows = readFileSync(job.dataset, 'utf8').split('\n').filter((l) => l.trim()).length;
  return Math.max(1, Math.ceil((rows * o.epochs) / (o.batchSize * o.gradAccumulation)));
}

/** Follows train.jsonl as the Python side appends, calling onStep for each new complete line. */
function followLog(file: string, onLine: (log: StepLog) => void): () => void {
  let offset = existsSync(file) ? statSync(file).size : 0;
  let pending = '';
  const poll = () => {
    if (!existsSync(file)) return;
    const size = statSync(file).size;
    if (size <= offset) return;
    const buf = Buffer.alloc(size - offset);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, buf, 0, buf.length, offset);
    } finally {
      closeSync(fd);
    }
    offset = size;
    const lines = (pending + buf.toString('utf8')).split('\n');
    pending = lines.pop()!;
    for (const line of lines) if (line.trim()) onLine((JSON.parse(line) as { value: StepLog }).value);
  };
  const timer = setInterval(poll, 250);
  return () => {
    clearInterval(timer);
    poll();
  };
}

function run(child: ChildProcess, signal?: AbortSignal): Promise<number> {
  return new Promise((ok, fail) => {
    const abort = () => child.pid && process.kill(-child.pid, 'SIGKILL');
    signal?.addEventListener('abort', abort, { once: true });
    child.on('error', fail);
    child.on('exit', (code, sig) => {
      signal?.removeEventListener('abort', abort);
      ok(code ?? (sig ? 128 : 1));
    });
  });
}

function tail(file: string, lines = 30): string {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n') : '';
}

/** Copies the finished adapter into runDir/adapter and reads the job's metrics. */
function collect(job: TrainJob, jobDir: string, resumedFrom: number): TrainJobResult {
  const outputDir = join(job.runDir, job.options.fullParameter ? 'model' : 'adapter');
  cpSync(join(jobDir, 'adapter'), outputDir, { recursive: true });
  const done = JSON.parse(readFileSync(join(jobDir, 'done.json'), 'utf8')) as Record<string, unknown>;
  const log = Journal.open<StepLog>(join(job.runDir, 'train.jsonl'));
  const steps = log.values().sort((a, b) => a.step - b.step);
  log.close();
  return {
    outputDir,
    metrics: { ...done, firstLoss: steps[0]?.loss ?? null, finalLoss: steps.at(-1)?.loss ?? null, tokens: steps.reduce((n, l) => n + l.tokens, 0) },
    resumedFrom,
  };
}

/**
 * Marks a job's phases on Node's performance timeline (trl:start, checked, written, launched, exited,
 * collected): bench/trl.ts breaks the backend's fixed cost down by them.
 */
const mark = (phase: string) => performance.mark(`trl:${phase}`);

async function train(job: TrainJob): Promise<TrainJobResult> {
  mark('start');
  const opts = parseOptions(job);
  const jobDir = join(job.runDir, 'trl');
  const finished = () => existsSync(join(jobDir, 'done.json')) && existsSync(join(jobDir, 'adapter', 'adapter_config.json'));
  if (finished()) {
    writeJobDir(job, opts); // still refuses a finished job made with other options
    return collect(job, jobDir, checkpointStep(jobDir));
  }
  await check(job);
  mark('checked');
  if (opts.emit) {
    if (job.objective === 'grpo') throw new InputError('experiment', 'train.backendOptions.emit', 'false for grpo (its reward is served by persona-lab on the machine that trains)');
    writeJobDir(job, opts);
    throw new TrlJobEmitted(jobDir);
  }
  const reward = job.objective === 'grpo' ? await startRewardServer(job) : null;
  try {
    writeJobDir(job, opts, reward?.url);
    mark('written');
    const resumedFrom = checkpointStep(jobDir);
    const logFile = join(job.runDir, 'train.jsonl');
    Journal.open(logFile).close(); // cuts a torn last line a killed run left
    const total = plannedSteps(job);
    const stop = followLog(logFile, (l) => job.onStep?.(l, total));
    const venv = opts.venv ?? defaultTrlVenv();
    const launchLog = join(jobDir, 'launch.log');
    const out = createWriteStream(launchLog, { flags: 'a' });
    const threads = job.threads ? { OMP_NUM_THREADS: String(job.threads) } : {};
    mark('launched');
    const child = spawn('bash', [join(jobDir, 'launch.sh')], {
      env: { ...process.env, ...threads, ACCELERATE: join(venv, 'bin', 'accelerate'), PATH: `${join(venv, 'bin')}:${process.env.PATH ?? ''}` },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: an abort kills accelerate and every worker
    });
    child.stdout!.pipe(out);
    child.stderr!.pipe(out);
    let code: number;
    try {
      code = await run(child, job.signal);
      mark('exited');
    } finally {
      stop();
      await new Promise((ok) => out.end(ok));
    }
    if (code !== 0 || !finished()) throw new Error(`trl backend: the job in ${jobDir} failed (exit ${code}); the end of ${launchLog}:\n${tail(launchLog)}`);
    const result = collect(job, jobDir, resumedFrom);
    mark('collected');
    return result;
  } finally {
    reward?.server.close();
  }
}

export const trlBackend: TrainBackend = { name: 'trl', check, train };

/** The commands that create the trl venv and install python/requirements.txt (and DeepSpeed when asked). */
export function trlSetupCommands(venv: string, o: { deepspeed?: boolean; python?: string } = {}): string[][] {
  const pip = [join(venv, 'bin', 'python'), '-m', 'pip', 'install'];
  return [
    [o.python ?? 'python3', '-m', 'venv', venv],
    [...pip, '-r', join(PYTHON_PACKAGE_DIR, 'requirements.txt')],
    ...(o.deepspeed ? [[...pip, '-r', join(PYTHON_PACKAGE_DIR, 'requirements-deepspeed.txt')]] : []),
  ];
}

/** `persona-lab setup trl`: runs the setup commands (output streamed), then checks the packages import. */
export async function setupTrl(venv: string, o: { deepspeed?: boolean; python?: string } = {}): Promise<TrlProbe> {
  for (const [cmd, ...args] of trlSetupCommands(venv, o)) {
    const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    const code = await run(child);
    if (code !== 0) throw new Error(`setup trl: \`${[cmd, ...args].join(' ')}\` failed (exit ${code})`);
  }
  const probe = await probeTrl(venv, true);
  if (!probe) throw new Error(`setup trl: the packages in ${venv} do not import; see the pip output above`);
  return probe;
}
