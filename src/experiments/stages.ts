/**
 * The stage commands (generate, eval, ...) as functions of an experiment file: validate everything
 * (the experiment, its constitutions, its endpoints) before the run directory is touched, then run
 * the stage with progress, resumably, and record the run's token accounting.
 */
import { dirname } from 'node:path';
import { createProgress, type Progress, type ProgressMode } from '../core/progress.js';
import { generate, type GenerateSummary } from '../data/index.js';
import { openStage, type StageContext } from './context.js';
import { loadExperiment } from './load.js';
import { checkEndpoints } from './preflight.js';

export interface StageOptions {
  noCache?: boolean;
  progress?: ProgressMode;
}

/** One progress display per label, created on first use. */
export function progressBoard(mode: ProgressMode = 'auto') {
  const bars = new Map<string, Progress>();
  return {
    update(label: string, done: number, total: number) {
      if (!bars.has(label)) bars.set(label, createProgress(label, mode));
      bars.get(label)!.update(done, total);
    },
    stop() {
      for (const bar of bars.values()) bar.stop();
    },
  };
}

/** Loads and checks an experiment, then opens its run; nothing is written if any check fails. */
export async function prepareStage(file: string, options: StageOptions): Promise<StageContext> {
  const loaded = loadExperiment(file);
  await checkEndpoints(file, loaded.experiment);
  return openStage(loaded, { noCache: options.noCache });
}

export async function generateStage(ctx: StageContext, options: StageOptions = {}): Promise<GenerateSummary> {
  const { loaded } = ctx;
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
    ctx.saveAccounting();
  }
}
