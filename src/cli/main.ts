/**
 * The persona-lab command line. Every command validates all input before writing anything; bad input
 * prints one line naming the file, the field and what was expected, and exits 2.
 */
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InputError } from '../core/errors.js';
import { clearResponseCache, EndpointUnreachableError } from '../providers/index.js';
import { serveModels } from '../providers/server.js';
import { EXPORT_SHAPES, exportDataset, type ExportShape } from '../data/index.js';
import type { StageContext } from '../experiments/context.js';
import type { LoadedExperiment } from '../experiments/load.js';
import { generateStage, prepareStage, progressBoard, type StageOptions } from '../experiments/stages.js';
import type { EvalSummary } from '../evals/summary.js';
import { initProject } from './init.js';
import { validateFiles } from './validate.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export interface GlobalOptions {
  json?: boolean;
  cache?: boolean;
}

/** Prints a result: JSON on stdout with --json, else the human lines. */
export function emit(options: GlobalOptions, result: unknown, human: string): void {
  process.stdout.write(options.json ? JSON.stringify(result, null, 2) + '\n' : human.endsWith('\n') ? human : human + '\n');
}

export function buildProgram(): Command {
  const program = new Command('persona-lab')
    .description('Character training for language models: write a persona as a constitution, generate training data, train LoRA adapters, steer, evaluate and report.')
    .version(pkg.version)
    .addOption(new Option('--json', 'print machine-readable JSON results on stdout (progress goes to stderr)'))
    .addOption(new Option('--no-cache', 'do not read or write the model response cache'))
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
or "tiny" (the bundled model). Exit codes: 0 ok, 1 failure, 2 bad input.`,
    );

  program
    .command('init')
    .description('scaffold a constitution and an experiment in a directory (never overwrites files)')
    .argument('[dir]', 'target directory', '.')
    .action((dir: string) => {
      const written = initProject(dir);
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
    body: (ctx: StageContext, stage: StageOptions, file: string) => Promise<{ result: T; lines: string[] }>,
    check?: (loaded: LoadedExperiment, file: string) => unknown,
  ) =>
    program
      .command(name)
      .description(description)
      .argument('<experiment>', 'experiment YAML')
      .action(async (file: string) => {
        const options = program.opts();
        const stage: StageOptions = { noCache: options.cache === false, progress: options.json ? 'silent' : 'auto' };
        const ctx = await prepareStage(file, stage, check && ((loaded) => check(loaded, file)));
        try {
          const { result, lines } = await body(ctx, stage, file);
          emit(options, result, lines.join('\n'));
        } finally {
          await ctx.close();
        }
      });
  const runner = () => import('../experiments/runner.js');
  const statusLines = (summary: EvalSummary) => summary.evals.map((e) => `${e.eval}: ${e.status}${e.reason ? ` (${e.reason})` : ''}`);

  stageCommand('generate', 'generate every training-data format of the experiment (resumable: re-run to continue)', async (ctx, stage) => {
    const summary = await generateStage(ctx, stage);
    const lines = summary.personas.flatMap((p) => Object.entries(p.datasets).map(([name, m]) => `${p.persona} ${name}: ${Object.entries(m.rows).map(([split, n]) => `${n} ${split}`).join(', ')}`));
    return { result: summary, lines: [`datasets in ${summary.dir}`, ...lines] };
  });

  stageCommand(
    'train',
    "train the matrix of the experiment's run: section (SFT per data format, DPO, DPO + introspection SFT, GRPO; per persona x seed) from the run's datasets; finished adapters are skipped, interrupted ones resume",
    async (ctx, stage) => {
      const summary = await (await runner()).trainStage(ctx, stage);
      return { result: summary, lines: [`${summary.cells.length} adapter(s), ${summary.trained} trained now`, ...summary.cells.map((c) => `${c.slug} ${c.method} seed ${c.seed}: ${c.output}`)] };
    },
    async (loaded) => (await runner()).checkMatrix(loaded),
  );

  stageCommand(
    'eval',
    'evaluate base, prompted, every trained adapter of the run and run.subjects with the configured judges; writes <run>/evals/summary.json (resumable)',
    async (ctx, stage) => {
      const summary = await (await runner()).evalStage(ctx, stage);
      return { result: summary, lines: [`evaluated ${summary.subjects.map((s) => s.name).join(', ')}`, ...statusLines(summary), `wrote ${ctx.run.path('evals', 'summary.json')}`] };
    },
    async (loaded) => (await runner()).checkSubjects(loaded),
  );

  program
    .command('run')
    .description('generate -> train -> eval -> report for the experiment\'s matrix (personas x formats x methods x seeds); resumable: re-run to continue')
    .argument('<experiment>', 'experiment YAML')
    .action(async (file: string) => {
      const options = program.opts();
      const summary = await (await runner()).runExperiment(file, { noCache: options.cache === false, progress: options.json ? 'silent' : 'auto' });
      const evals = summary.eval ? statusLines(summary.eval) : [];
      const last = summary.report ? `report: ${summary.report.html}` : `run directory: ${summary.run}`;
      emit(options, summary, [...evals, last].join('\n'));
    });

  stageCommand(
    'steer',
    'persona vectors per trait, a steering layer sweep, projection monitoring, data screening, the assistant axis and capping threshold (local subject; resumable)',
    async (ctx, stage, file) => {
      const { runSteerStage, steerOptionsSchema } = await import('../steer/index.js');
      const board = progressBoard(stage.progress);
      try {
        const { experiment, constitutions } = ctx.loaded;
        const summary = await runSteerStage({
          constitutions: constitutions.map((c) => c.constitution),
          options: experiment.steer ?? steerOptionsSchema.parse({}),
          subject: experiment.models.subject,
          teacher: await ctx.model('teacher'),
          judge: await ctx.model('judge'),
          run: ctx.run,
          baseDir: dirname(resolve(file)),
          seed: experiment.seeds[0],
          onProgress: board.update,
        });
        return { result: summary, lines: [...summary.traits.map((t) => `${t.persona} trait ${t.trait}: ${t.vectorFile}`), `wrote ${ctx.run.path('steer')}`] };
      } finally {
        board.stop();
        ctx.saveAccounting();
      }
    },
    async (loaded, file) => {
      try {
        (await import('../steer/index.js')).requireLocal(loaded.experiment.models.subject);
      } catch (error) {
        if (error instanceof InputError) throw new InputError(file, error.field, error.expected);
        throw error;
      }
    },
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
      try {
        const result = await buildTinyModel({ outDir: o.out, seed: o.seed, examples: o.examples, steps: o.steps }, {
          onProgress: (p) => p.totalSteps && board.update(`tiny ${p.stage}`, p.step ?? 0, p.totalSteps),
        });
        emit(program.opts(), result, `wrote ${result.outDir}: ${result.parameters} parameters, loss ${result.firstLoss?.toFixed(3)} -> ${result.finalLoss?.toFixed(3)} in ${Math.round(result.seconds)} s`);
      } finally {
        board.stop();
      }
    });

  program
    .command('export')
    .description('convert a dataset JSONL between training shapes (TRL SFT/DPO, OpenAI fine-tuning, plain text)')
    .argument('<input>', 'dataset JSONL written by generate')
    .argument('<output>', 'file to write')
    .requiredOption('--to <shape>', `target shape: ${Object.keys(EXPORT_SHAPES).join(', ')}`)
    .option('--keep-meta', 'keep the provenance field on each row')
    .action((input: string, output: string, options: { to: string; keepMeta?: boolean }) => {
      const result = exportDataset(input, output, options.to as ExportShape, { keepMeta: options.keepMeta });
      emit(program.opts(), { output, ...result }, `wrote ${result.rows} rows to ${output}`);
    });

  program
    .command('report')
    .description('write a self-contained HTML report and a Markdown summary of a run')
    .argument('<run-dir>', 'the run directory (runs/<name>)')
    .option('--out <file>', 'HTML file to write (default <run>/report.html; the Markdown goes beside it)')
    .action(async (runDir: string, options: { out?: string }) => {
      const { writeReport } = await import('../report/index.js');
      const written = await writeReport(runDir, { outFile: options.out });
      emit(program.opts(), written, `wrote ${written.html}\nwrote ${written.markdown}`);
    });

  program
    .command('serve')
    .description('serve the local engine as an OpenAI-compatible server (chat completions with streaming, completions, embeddings, models)')
    .requiredOption('--model <dir>', 'a Hugging Face model directory, or "tiny" for the bundled model')
    .option('--adapter <dir[*scale]>', 'a PEFT LoRA adapter to apply unmerged (repeatable; *scale weights it)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--name <id>', 'the model id clients ask for', 'persona-lab')
    .option('--host <host>', 'address to bind (loopback by default)', '127.0.0.1')
    .option('--port <port>', 'port (0 = any free port)', (v) => Number(v), 8000)
    .action(async (options: { model: string; adapter: string[]; name: string; host: string; port: number }) => {
      const { createLocalChatModel, parseLocalModelRef } = await import('../engine/provider.js');
      const base = options.model === 'tiny' ? parseLocalModelRef('tiny').path : options.model;
      const model = createLocalChatModel(`local:${[base, ...options.adapter].join('+')}`);
      const handle = await serveModels({ [options.name]: model }, { host: options.host, port: options.port });
      emit(program.opts(), { url: handle.url, model: options.name }, `serving ${model.id} as "${options.name}" at ${handle.url} (Ctrl-C stops)`);
      await new Promise<void>((resolve) => process.once('SIGINT', resolve).once('SIGTERM', resolve));
      await handle.close();
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

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help') return 0;
    if (code?.startsWith('commander.')) return 2;
    if (error instanceof InputError || error instanceof EndpointUnreachableError) {
      process.stderr.write(`error: ${error.message}\n`);
      return 2;
    }
    process.stderr.write(`error: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv);
