/**
 * The persona-lab command line. Every command validates all input before writing anything; bad input
 * prints one line naming the file, the field and what was expected, and exits 2.
 */
import { Command, Option } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InputError, ProviderError } from '../core/errors.js';
import { printable, redactCredentials } from '../core/redact.js';
import { lockRunDir } from '../core/run-lock.js';
import { clearResponseCache, EndpointUnreachableError, parseLocalModelRef, resolveModelRef } from '../providers/index.js';
import type { ChatModel } from '../providers/types.js';
import { TrainJobHandedOff } from '../train/backends/types.js';
import { EXPORT_SHAPES, exportDataset, type ExportShape } from '../data/index.js';
import { checkEvalChanges, checkGenerateChanges, ON_CHANGE } from '../experiments/changes.js';
import type { StageContext } from '../experiments/context.js';
import { checkModelInputs } from '../experiments/inputs.js';
import { limitOverrides, loadExperiment, type LoadedExperiment } from '../experiments/load.js';
import { generateStage, prepareStage, progressBoard, type StageOptions } from '../experiments/stages.js';
import { cellLabel } from '../experiments/methods/index.js';
import { failedEvals } from '../evals/outcome.js';
import type { EvalSummary } from '../evals/summary.js';
import { INIT_PROFILES, initProject, type InitProfile } from './init.js';
import { validateFiles } from './validate.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** A command that finished but whose result is not usable (a failed eval): exit 1, one line. */
class StageFailedError extends Error {}

export interface GlobalOptions {
  json?: boolean;
  cache?: boolean;
}

/** Prints a result: JSON on stdout with --json, else the human lines. */
export function emit(options: GlobalOptions, result: unknown, human: string): void {
  process.stdout.write(options.json ? JSON.stringify(result, null, 2) + '\n' : human.endsWith('\n') ? human : human + '\n');
}

/**
 * Ctrl-C during resumable work: say where the finished work is and how to continue, then exit 130
 * (journals and checkpoints are written as work finishes, so nothing finished is lost). Returns the
 * function that removes the handler.
 */
function resumeOnInterrupt(where: string): () => void {
  const command = ['persona-lab', ...process.argv.slice(2)].map((a) => (/^[\w./:=@+-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
  const handler = () => {
    process.stderr.write(`\ninterrupted: finished work is kept in ${where}; run the same command again to resume where it stopped:\n  ${redactCredentials(command)}\n`);
    process.exit(130);
  };
  process.once('SIGINT', handler);
  return () => process.off('SIGINT', handler);
}

export function buildProgram(): Command {
  const program = new Command('persona-lab')
    .description('Character training for language models: write a persona as a constitution, generate training data, train LoRA adapters, steer, evaluate and report.')
    .version(pkg.version)
    .addOption(new Option('--json', 'print machine-readable JSON results on stdout (progress goes to stderr)'))
    .addOption(new Option('--no-cache', 'do not read or write the model response cache'))
    .addOption(new Option('--on-change <mode>', 'work the run made under other options: refuse (and name the changed fields) or redo it beside the old').choices(ON_CHANGE).default('refuse'))
    .showHelpAfterError('(run persona-lab --help for usage)')
    .addHelpText(
      'after',
      `
Getting started:
  persona-lab init my-persona          scaffold a constitution and an experiment
  persona-lab validate my-persona/*.yaml
  persona-lab run my-persona/experiment.yaml

Models are named by short strings: "openai:<model>" (OPENAI_BASE_URL / OPENAI_API_KEY),
"openai:<model>@http://127.0.0.1:8000/v1" (vLLM, llama.cpp, Ollama), "local:<hf model dir>[+<adapter dir>]",
"hf:<org>/<name>[@<revision>]" (Hugging Face Hub, see \`persona-lab pull\`), or "tiny" (the bundled model). Exit codes: 0 ok, 1 failure, 2 bad input.`,
    );

  program
    .command('init')
    .description('scaffold a constitution and an experiment in a directory (never overwrites files)')
    .argument('[dir]', 'target directory', '.')
    .addOption(new Option('--profile <profile>', 'quick: a report on the bundled model in minutes; paper: every format, method and eval at published sizes (hours on a GPU)').choices(INIT_PROFILES).default('quick'))
    .action((dir: string, options: { profile: InitProfile }) => {
      const written = initProject(dir, options.profile);
      emit(program.opts(), { written }, written.map((f) => `wrote ${f}`).join('\n'));
    });

  program
    .command('validate')
    .description('check constitutions and experiments (YAML or JSON) against their schemas')
    .argument('<files...>', 'files to check')
    .option('--endpoints', 'also check that every endpoint an experiment names answers')
    .action(async (files: string[], options: { endpoints?: boolean }) => {
      const results = await validateFiles(files, { endpoints: options.endpoints });
      emit(program.opts(), results, results.map((r) => `ok ${r.file}: ${r.summary}`).join('\n'));
    });

  /**
   * A command over an experiment file: the experiment, its endpoints and `check` are validated before
   * the run directory is touched; then the stage runs and its result is printed; the run is closed.
   */
  const stageCommand = <T>(
    name: string,
    description: string,
    body: (ctx: StageContext, stage: StageOptions, file: string) => Promise<{ result: T; lines: string[]; failed?: string[] }>,
    check?: (loaded: LoadedExperiment, file: string, stage: StageOptions) => unknown,
  ) =>
    program
      .command(name)
      .description(description)
      .argument('<experiment>', 'experiment YAML')
      .action(async (file: string) => {
        const options = program.opts();
        const stage: StageOptions = { noCache: options.cache === false, progress: options.json ? 'silent' : 'auto', onChange: options.onChange };
        const ctx = await prepareStage(file, stage, check && ((loaded) => check(loaded, file, stage)));
        const release = resumeOnInterrupt(ctx.loaded.runDir);
        try {
          const { result, lines, failed } = await body(ctx, stage, file);
          emit(options, result, lines.join('\n'));
          if (failed?.length) throw new StageFailedError(`${name}: ${failed.join(', ')} failed (see above)`);
        } finally {
          release();
          await ctx.close();
        }
      });
  const runner = () => import('../experiments/runner.js');
  const statusLines = (summary: EvalSummary) => summary.evals.map((e) => `${e.eval}: ${e.status}${e.reason ? ` (${e.reason})` : ''}`);

  stageCommand('generate', 'generate every training-data format of the experiment (resumable: re-run to continue)', async (ctx, stage) => {
    const summary = await generateStage(ctx, stage);
    const lines = summary.personas.flatMap((p) => Object.entries(p.datasets).map(([name, m]) => `${p.persona} ${name}: ${Object.entries(m.rows).map(([split, n]) => `${n} ${split}`).join(', ')}`));
    return { result: summary, lines: [`datasets in ${summary.dir}`, ...lines] };
  }, (loaded, _file, stage) => checkGenerateChanges(loaded, stage.onChange));

  stageCommand(
    'train',
    "train the matrix of the experiment's run: section (SFT per data format, DPO, DPO + introspection SFT, GRPO; per persona x seed) from the run's datasets; finished adapters are skipped, interrupted ones resume",
    async (ctx, stage) => {
      const summary = await (await runner()).trainStage(ctx, stage);
      return { result: summary, lines: [`${summary.cells.length} adapter(s), ${summary.trained} trained now`, ...summary.cells.map((c) => `${c.slug} ${cellLabel(c.cell.method, c.cell.format)} seed ${c.cell.seed}: ${c.output}`)] };
    },
    async (loaded, _file, stage) => (await runner()).checkMatrix(loaded, stage.onChange, true),
  );

  stageCommand(
    'eval',
    'evaluate base, prompted, every trained adapter of the run and run.subjects with the configured judges; writes <run>/evals/summary.json (resumable)',
    async (ctx, stage) => {
      const summary = await (await runner()).evalStage(ctx, stage);
      return { result: summary, lines: [`evaluated ${summary.subjects.map((s) => s.name).join(', ')}`, ...statusLines(summary), `wrote ${ctx.run.path('evals', 'summary.json')}`], failed: failedEvals(summary) };
    },
    async (loaded, _file, stage) => {
      const { checkSubjects, evalOptionsFor } = await runner();
      checkSubjects(loaded);
      await checkModelInputs(loaded);
      checkEvalChanges(loaded, evalOptionsFor(loaded, loaded.runDir), stage.onChange);
    },
  );

  program
    .command('run')
    .description('generate -> train -> eval -> report for the experiment\'s matrix (personas x formats x methods x seeds); resumable: re-run to continue')
    .argument('<experiment>', 'experiment YAML')
    .option('--dry-run', 'print the plan (stages, models, datasets, trained cells, subjects, each eval\'s sample sizes) with estimated calls and tokens per role, cost (prices:) and ETA, and run nothing')
    .option('--set <key.path=value>', 'override an option of the experiment file (repeatable; the value is YAML), e.g. --set eval.bootstrap=200', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--limit <n>', 'smoke test: at most n samples per eval and subject, n prompts per trait and n generated items per dataset (--set generate.limit=n --set eval.limit=n)')
    .action(async (file: string, runOptions: { dryRun?: boolean; set: string[]; limit?: string }) => {
      const options = program.opts();
      runOptions.set = [...runOptions.set, ...limitOverrides(runOptions.limit)];
      if (runOptions.dryRun) {
        const { planRun, planText } = await import('../experiments/plan.js');
        const plan = await planRun(file, runOptions.set);
        return emit(options, plan, planText(plan));
      }
      const release = resumeOnInterrupt(loadExperiment(file, runOptions.set).runDir);
      const summary = await (await runner()).runExperiment(file, { noCache: options.cache === false, progress: options.json ? 'silent' : 'auto', onChange: options.onChange, set: runOptions.set }).finally(release);
      const evals = summary.eval ? statusLines(summary.eval) : [];
      const last = summary.report ? `browse it: persona-lab view ${dirname(summary.run)}\nreport: ${summary.report.html}` : `run directory: ${summary.run}`;
      const headline = summary.eval ? await (await import('../view/headline.js')).headlineOfRun(summary.run, summary.eval) : '';
      emit(options, summary, [...evals, ...(headline ? ['', headline, ''] : []), last].join('\n'));
      const failed = summary.eval ? failedEvals(summary.eval) : [];
      if (failed.length) throw new StageFailedError(`run: ${failed.join(', ')} failed (see above)`);
    });

  stageCommand(
    'steer',
    'persona vectors per trait, a steering layer sweep, projection monitoring, data screening, the assistant axis and capping threshold (local subject; resumable)',
    async (ctx, stage) => {
      const summary = await (await import('../experiments/steer-stage.js')).steerStage(ctx, stage);
      return { result: summary, lines: [...summary.traits.map((t) => `${t.persona} trait ${t.trait}: ${t.vectorFile}`), `wrote ${ctx.run.path('steer')}`] };
    },
    async (loaded, _file, stage) => (await import('../experiments/steer-stage.js')).checkSteer(loaded, stage.onChange),
  );

  program
    .command('tiny')
    .description('the bundled tiny model (models/tiny)')
    .command('build')
    .description('pretrain the tiny chat model from scratch with the engine on its generated corpus (reproducible per seed; a killed build resumes)')
    .option('--out <dir>', 'model directory to write', 'models/tiny')
    .option('--seed <n>', 'seed of corpus, initial weights and data order', (v) => Number(v))
    .option('--examples <n>', 'dialogues in the corpus', (v) => Number(v))
    .option('--steps <n>', 'optimizer steps', (v) => Number(v))
    .action(async (o: { out: string; seed?: number; examples?: number; steps?: number }) => {
      const { buildTinyModel } = await import('../experiments/tiny/index.js');
      const board = progressBoard(program.opts().json ? 'silent' : 'auto');
      const release = resumeOnInterrupt(`${o.out}.build (checkpoints)`);
      try {
        const result = await buildTinyModel({ outDir: o.out, seed: o.seed, examples: o.examples, steps: o.steps }, {
          onProgress: (p) => p.totalSteps && board.update(`tiny ${p.stage}`, p.step ?? 0, p.totalSteps),
        });
        emit(program.opts(), result, `wrote ${result.outDir}: ${result.parameters} parameters, loss ${result.firstLoss?.toFixed(3)} -> ${result.finalLoss?.toFixed(3)} in ${Math.round(result.seconds)} s`);
      } finally {
        release();
        board.stop();
      }
    });

  program
    .command('export')
    .description('convert a dataset JSONL between training shapes (TRL SFT/DPO, OpenAI fine-tuning, plain text), or write a model with its adapters as GGUF (merged, or a LoRA GGUF) or as a merged Hugging Face model directory')
    .argument('<input>', 'dataset JSONL written by generate, or a model: "local:<dir>[+<adapter>[*scale]]...", "hf:<org>/<name>[@rev][+<adapter>]", "tiny" or a model directory')
    .argument('<output>', 'file (or, with --to hf, directory) to write')
    .requiredOption('--to <shape>', `target: ${Object.keys(EXPORT_SHAPES).join(', ')} (datasets); gguf, gguf-lora, hf (models)`)
    .option('--keep-meta', 'keep the provenance field on each row (datasets)')
    .option('--adapter <dir[*scale]>', 'a PEFT LoRA adapter to merge or convert (repeatable; models)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--dtype <dtype>', 'stored float type: f32 or f16 for GGUF (default f16), f32, f16 or bf16 for hf (default: as the base stores it)')
    .action(async (input: string, output: string, options: { to: string; keepMeta?: boolean; adapter: string[]; dtype?: string }) => {
      const { MODEL_EXPORT_FORMATS } = await import('../engine/export.js');
      if ((MODEL_EXPORT_FORMATS as readonly string[]).includes(options.to)) {
        const result = await exportModelCommand(input, output, options.to as (typeof MODEL_EXPORT_FORMATS)[number], options);
        emit(program.opts(), result, `wrote ${result.format} (${result.adapters} adapter(s)) to ${output}`);
        return;
      }
      const result = exportDataset(input, output, options.to as ExportShape, { keepMeta: options.keepMeta });
      emit(program.opts(), { output, ...result }, `wrote ${result.rows} rows to ${output}`);
    });

  program
    .command('pull')
    .description('download a model from the Hugging Face Hub into the shared Hub cache (HF_HOME / HF_HUB_CACHE; HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE honoured); resumable')
    .argument('<model>', '<org>/<name>[@<revision>] (or hf:<org>/<name>[@<revision>])')
    .option('--include <pattern>', 'files to fetch (repeatable; default: config, tokenizer, chat template and *.safetensors)', (v: string, all: string[]) => [...all, v], [] as string[])
    .action(async (model: string, options: { include: string[] }) => {
      const { parseHubRef, pullModel, pullProgressBar } = await import('../providers/hub/index.js');
      const bar = program.opts().json ? undefined : pullProgressBar(model);
      try {
        const result = await pullModel(parseHubRef(model), { include: options.include.length ? options.include : undefined, onProgress: bar?.update });
        bar?.stop();
        const fetched = result.files.reduce((n, f) => n + f.fetched, 0);
        emit(program.opts(), result, `${result.repo}@${result.revision} (commit ${result.commit.slice(0, 10)}): ${result.offline ? 'from the cache' : `${result.files.length} files, ${(fetched / 2 ** 20).toFixed(1)} MiB fetched`}\n${result.dir}`);
      } finally {
        bar?.stop();
      }
    });

  program
    .command('report')
    .description('write a self-contained HTML report and a Markdown summary of a run')
    .argument('<run-dir>', 'the run directory (runs/<name>)')
    .option('--out <file>', 'HTML file to write (default <run>/report.html; the Markdown goes beside it)')
    .action(async (runDir: string, options: { out?: string }) => {
      const { writeReport } = await import('../report/index.js');
      const lock = existsSync(runDir) ? lockRunDir(resolve(runDir)) : undefined;
      const written = await writeReport(runDir, { outFile: options.out }).finally(() => lock?.release());
      emit(program.opts(), written, `wrote ${written.html}\nwrote ${written.markdown}`);
    });

  program
    .command('view')
    .description('browse runs in a local web app: headline, every eval, transcripts, training curves, datasets, steering, preferences, two-run comparison (updates live)')
    .argument('[runs-dir]', 'the folder holding run directories', 'runs')
    .option('--host <host>', 'address to bind (loopback by default)', '127.0.0.1')
    .option('--port <port>', 'port (0 = any free port)', (v) => Number(v), 7860)
    .option('--open', 'open the page in the default browser')
    .action(async (runsDir: string, options: { host: string; port: number; open?: boolean }) => {
      const { startView } = await import('../view/server.js');
      const handle = await startView(runsDir, { host: options.host, port: options.port });
      emit(program.opts(), { url: handle.url, runsDir }, `persona-lab view: ${runsDir} at ${handle.url} (Ctrl-C stops)`);
      if (options.open) await (await import('open')).default(handle.url);
      await new Promise<void>((resolve) => process.once('SIGINT', resolve).once('SIGTERM', resolve));
      await handle.close();
    });

  program
    .command('serve')
    .description('serve the local engine as an OpenAI-compatible server (chat completions with streaming, completions, embeddings, models, /health)')
    .requiredOption('--model <dir>', 'a Hugging Face model directory, a .gguf file, "hf:<org>/<name>[@revision]" (pulled into the Hub cache), or "tiny" for the bundled model')
    .option('--adapter <[name=]dir[*scale]>', 'a PEFT LoRA adapter (repeatable): name=dir serves base+adapter as its own model id; a bare dir is applied to the base model itself; *scale weights it', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--steered <name=ref>', 'a steered or capped model served as its own model id (repeatable): name=steered(<base>):<vector file>[@<layer>*<coef>] or name=capped(<base>):<capping.json>', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--name <id>', 'the model id clients ask for', 'persona-lab')
    .option('--host <host>', 'address to bind (loopback by default)', '127.0.0.1')
    .option('--port <port>', 'port (0 = any free port)', (v) => Number(v), 8000)
    .option('--concurrency <n>', 'requests worked on at once', (v) => Number(v), 8)
    .option('--max-queue <n>', 'requests that may wait; more get 503 with Retry-After', (v) => Number(v), 64)
    .option('--timeout <seconds>', 'a request unanswered after this long gets 504', (v) => Number(v), 300)
    .option('--body-limit <bytes>', 'largest request body (413 beyond)', (v) => Number(v), 1024 * 1024)
    .option('--log-prompts', 'put each request\'s last message (truncated) in the access log')
    .action(async (options: { model: string; adapter: string[]; steered: string[]; name: string; host: string; port: number; concurrency: number; maxQueue: number; timeout: number; bodyLimit: number; logPrompts?: boolean }) => {
      const { LocalChatModel } = await import('../engine/provider.js');
      const open = (ref: string) => Object.assign(LocalChatModel.open(parseLocalModelRef(ref)), { boundedContext: true });
      const { serveModels } = await import('../providers/server.js');
      for (const [flag, value] of [['--concurrency', options.concurrency], ['--max-queue', options.maxQueue], ['--timeout', options.timeout], ['--body-limit', options.bodyLimit]] as const) {
        if (!(Number.isInteger(value) && value >= (flag === '--max-queue' ? 0 : 1))) throw new InputError('serve', flag, `a whole number${flag === '--max-queue' ? '' : ' >= 1'} (got ${value})`);
      }
      const base = options.model === 'tiny' ? parseLocalModelRef('tiny').path : options.model.startsWith('hf:') ? await (await import('../providers/hub/index.js')).resolveHubModel(options.model) : options.model;
      const named = options.adapter.filter((a) => a.includes('='));
      const stacked = options.adapter.filter((a) => !a.includes('='));
      const models: Record<string, ChatModel> = { [options.name]: open(`local:${[base, ...stacked].join('+')}`) };
      for (const a of named) {
        const [id, dir] = [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)];
        if (!id || !dir || id in models) throw new InputError('serve', '--adapter', `name=dir[*scale] with a new, non-empty name (got "${a}")`);
        models[id] = open(`local:${[base, ...stacked, dir].join('+')}`);
      }
      for (const s of options.steered) {
        const [id, ref] = [s.slice(0, s.indexOf('=')), s.slice(s.indexOf('=') + 1)];
        const resolved = s.includes('=') && id && !(id in models) ? resolveModelRef(ref) : undefined;
        if (resolved?.provider !== 'steered') throw new InputError('serve', '--steered', `name=steered(<base>):<vector file>[@<layer>*<coef>] or name=capped(<base>):<capping.json> with a new, non-empty name (got "${s}")`);
        const { model } = await resolved.entry.create(resolved.ref, { env: process.env, cwd: process.cwd(), noCache: true });
        models[id] = Object.assign(model, { boundedContext: true });
      }
      const handle = await serveModels(models, { host: options.host, port: options.port, concurrency: options.concurrency, maxQueue: options.maxQueue, timeoutMs: options.timeout * 1000, bodyLimit: options.bodyLimit, logPrompts: options.logPrompts });
      emit(program.opts(), { url: handle.url, models: Object.keys(models) }, `serving ${Object.entries(models).map(([id, m]) => `${m.id} as "${id}"`).join(', ')} at ${handle.url} (Ctrl-C stops)`);
      await new Promise<void>((resolve) => process.once('SIGINT', resolve).once('SIGTERM', resolve));
      await handle.close();
      await Promise.all(Object.values(models).map((m) => m.close?.()));
    });

  program
    .command('setup')
    .description('install optional backends')
    .command('trl')
    .description('create the venv of the trl training backend (torch, transformers, trl, peft, accelerate; pinned in python/requirements.txt)')
    .option('--venv <dir>', 'where to create it (default PERSONA_LAB_TRL_VENV or ~/.cache/persona-lab/trl-venv)')
    .option('--python <exe>', 'the Python 3.10+ to create it with', 'python3')
    .option('--deepspeed', 'also install DeepSpeed (for ZeRO-2/3 accelerate configs; needs CUDA)')
    .option('--print', 'print the commands instead of running them')
    .action(async (options: { venv?: string; python: string; deepspeed?: boolean; print?: boolean }) => {
      const { defaultTrlVenv, setupTrl, trlSetupCommands } = await import('../train/backends/trl.js');
      const venv = resolve(options.venv ?? defaultTrlVenv());
      if (options.print) {
        const commands = trlSetupCommands(venv, options).map((c) => c.join(' '));
        return emit(program.opts(), { venv, commands }, commands.join('\n'));
      }
      const probe = await setupTrl(venv, options);
      emit(program.opts(), { venv, ...probe }, `trl backend ready in ${venv}: ${Object.entries(probe.versions).map(([k, v]) => `${k} ${v}`).join(', ')}; GPU ${probe.cuda ? 'yes' : 'no'}`);
    });

  program
    .command('cache')
    .description('manage the on-disk model response cache (.cache/persona-lab/responses or PERSONA_LAB_CACHE_DIR)')
    .command('clear')
    .description('delete every cached model response')
    .action(async () => {
      const removed = await clearResponseCache();
      emit(program.opts(), { removed }, `removed ${removed} cached responses`);
    });

  return program;
}

/** `export --to gguf|gguf-lora|hf`: the model reference resolved (Hub models pulled), then written. */
async function exportModelCommand(input: string, output: string, format: 'gguf' | 'gguf-lora' | 'hf', options: { adapter: string[]; dtype?: string }) {
  const { exportModel } = await import('../engine/export.js');
  const dtype = options.dtype?.toUpperCase();
  if (dtype !== undefined && !['F32', 'F16', 'BF16'].includes(dtype)) throw new InputError('(command line)', 'dtype', `f32, f16 or bf16 (found "${options.dtype}")`);
  let ref = /^(local:|hf:|tiny$)/.test(input) ? input : `local:${input}`;
  if (ref.startsWith('hf:')) {
    const { resolveHubModel } = await import('../providers/hub/index.js');
    const [hub, ...rest] = ref.split('+');
    ref = `local:${[await resolveHubModel(hub), ...rest].join('+')}`;
  }
  if (options.adapter.length > 0) ref = ref === 'tiny' ? `local:${parseLocalModelRef('tiny').path}+${options.adapter.join('+')}` : `${ref}+${options.adapter.join('+')}`;
  return exportModel(parseLocalModelRef(ref), format, resolve(output), { dtype: dtype as 'F32' | 'F16' | 'BF16' | undefined });
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  // every subcommand too: their usage errors must reach the exit code 2 below, not exit 1 directly
  const overrideExit = (command: Command): void => {
    command.exitOverride();
    command.commands.forEach(overrideExit);
  };
  overrideExit(program);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    const { code, exitCode } = error as { code?: string; exitCode?: number };
    // help asked for is success; help shown because a subcommand is missing is a usage error
    if (code === 'commander.helpDisplayed' || code === 'commander.version' || (code === 'commander.help' && exitCode === 0)) return 0;
    if (code?.startsWith('commander.')) return 2;
    if (error instanceof InputError || error instanceof EndpointUnreachableError) {
      process.stderr.write(`error: ${printable(redactCredentials(error.message))}\n`);
      return 2;
    }
    // A training job written for another machine: done for now, the next `train` picks it up.
    if (error instanceof TrainJobHandedOff) {
      process.stderr.write(`${printable(error.message)}\n`);
      return 0;
    }
    // A retry give-up or a failed stage is one line; anything else is a bug, with its stack.
    if (error instanceof ProviderError || error instanceof StageFailedError) {
      process.stderr.write(`error: ${printable(redactCredentials(error.message.split('\n')[0]))}\n`);
      return 1;
    }
    process.stderr.write(`error: ${printable(redactCredentials((error as Error).stack ?? String(error)))}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv);
