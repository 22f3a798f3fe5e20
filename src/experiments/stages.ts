/**
 * The stage commands (generate, eval, ...) as functions of an experiment file: validate everything
 * (the experiment, its constitutions, its endpoints) before the run directory is touched, then run
 * the stage with progress, resumably, and record the run's token accounting.
 */
import cliProgress from 'cli-progress';
import { dirname } from 'node:path';
import { barFormat, createProgress, type Progress, type ProgressMode } from '../core/progress.js';
import { generate, type GenerateSummary } from '../data/index.js';
import { checkGenerateChanges, type OnChange } from './changes.js';
import { openStage, type StageContext } from './context.js';
import { loadExperiment, type LoadedExperiment } from './load.js';
import { checkEndpoints } from './preflight.js';
import { pullHubModels } from '../providers/hub/index.js';

export interface StageOptions {
  noCache?: boolean;
  /** key.path=value overrides of the experiment file (--set). */
  set?: string[];
  progress?: ProgressMode;
  /** What to do with work the run made under other options: refuse (default) or redo it. */
  onChange?: OnChange;
}

/**
 * One progress display per label, created on first use: on a TTY one multi-bar block (several
 * labels advance side by side, e.g. an eval's subjects), otherwise throttled lines per label.
 */
export function progressBoard(mode: ProgressMode = 'auto', stream: NodeJS.WriteStream = process.stderr) {
  const resolved = mode === 'auto' ? (stream.isTTY ? 'bar' : 'lines') : mode;
  if (resolved === 'bar') {
    const multi = new cliProgress.MultiBar({ format: barFormat('{label} {bar} {value}/{total} | ETA {eta_formatted}'), stream, hideCursor: true, etaBuffer: 50 }, cliProgress.Presets.shades_classic);
    const bars = new Map<string, cliProgress.SingleBar>();
    return {
      update(label: string, done: number, total: number) {
        const bar = bars.get(label);
        if (!bar) bars.set(label, multi.create(total, done, { label: label.padEnd(32) }));
        else {
          bar.setTotal(total);
          bar.update(done);
        }
      },
      stop() {
        multi.stop();
      },
    };
  }
  const bars = new Map<string, Progress>();
  return {
    update(label: string, done: number, total: number) {
      if (!bars.has(label)) bars.set(label, createProgress(label, resolved, stream));
      bars.get(label)!.update(done, total);
    },
    stop() {
      for (const bar of bars.values()) bar.stop();
    },
  };
}

/**
 * Loads and checks an experiment (and, with `check`, what the stage needs of it), then opens its run;
 * nothing is written if any check fails.
 */
export async function prepareStage(file: string, options: StageOptions, check?: (loaded: LoadedExperiment, options: StageOptions) => unknown): Promise<StageContext> {
  const loaded = loadExperiment(file, options.set);
  // Hub models are pulled before anything else: a missing or gated model fails now, not hours in,
  // and every later check resolves hf: references to their cached snapshots.
  const { experiment } = loaded;
  const refs = { ...Object.fromEntries(Object.entries(experiment.models).map(([role, ref]) => [`models.${role}`, ref])), ...Object.fromEntries((experiment.run?.subjects ?? []).map((s, i) => [`run.subjects[${i}].model`, s.model])) };
  await pullHubModels(refs, { file, progress: options.progress !== 'silent' });
  await checkEndpoints(file, loaded.experiment);
  await check?.(loaded, options);
  return openStage(loaded, { noCache: options.noCache });
}

export async function generateStage(ctx: StageContext, options: StageOptions = {}): Promise<GenerateSummary> {
  const { loaded } = ctx;
  checkGenerateChanges(loaded, options.onChange)();
  const board = progressBoard(options.progress);
  try {
    return await generate(
      loaded.experiment,
      loaded.constitutions.map((c) => c.constitution),
      { teacher: await ctx.model('teacher'), subject: await ctx.model('subject') },
      ctx.run,
      loaded.experiment.generate ?? {},
      { baseDir: dirname(loaded.file), file: loaded.file, onProgress: (e) => board.update(`${e.persona ?? 'shared'} ${e.dataset}`, e.done, e.total) },
    );
  } finally {
    board.stop();
    ctx.saveAccounting('generate');
  }
}
