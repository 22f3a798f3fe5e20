/**
 * `dpo-introspection`, the open recipe's second half for one persona and seed: the DPO-trained model
 * (this persona's and seed's `dpo` cell) generates introspection data on-policy (self-reflection,
 * self-interaction), an SFT adapter is trained on it from the base, and the two adapters are mixed
 * linearly (train.mix.weights: DPO 1.0 + SFT 0.25 by default).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { InputError } from '../../core/errors.js';
import { personaSlug } from '../../core/slug.js';
import { RunDir, writeFileAtomic } from '../../core/journal.js';
import { datasetFile, generate, type GenerateSummary } from '../../data/index.js';
import { createChatModel } from '../../providers/index.js';
import type { TrainingMethod } from './types.js';

export const dpoIntrospectionMethod: TrainingMethod = {
  formats: () => [null],
  requires: ['dpo'],
  datasets: () => [],
  // The on-policy data is generated here, so the generation options train the cell too.
  options: (train, run, experiment) => ({ train: { sft: train.sft, dpo: train.dpo, mix: train.mix }, run: { introspection: run.introspection }, generate: experiment.generate ?? {} }),
  check(train, file) {
    if (train.sft.fullParameter || train.dpo.fullParameter) throw new InputError(file, 'train', 'LoRA (not fullParameter) for sft and dpo: dpo-introspection mixes adapters');
  },
  async train({ ctx, cell, dir, base, train, run: runOptions, backend, constitution, cellDir, job, onData }) {
    const { loaded, run } = ctx;
    const dpo = join(cellDir('dpo', null), 'adapter');
    if (!existsSync(join(dpo, 'adapter_config.json'))) throw new Error(`train: the DPO adapter ${dpo} is missing (the dpo cell of ${cell.persona} seed ${cell.seed} runs first)`);
    const sub = RunDir.open(join(dir, 'introspection'), {
      name: `${loaded.experiment.name}/${personaSlug(cell.persona)}/${cell.method}/seed-${cell.seed}/introspection`,
      personaLabVersion: run.manifest.personaLabVersion,
      gitRevision: run.manifest.gitRevision,
      seeds: [cell.seed],
      config: { introspector: { base: base.path, adapter: dpo } },
    });
    const introspector = await createChatModel({ provider: 'local', path: base.path, adapters: [{ path: dpo, scale: 1 }], concurrency: base.concurrency }, { noCache: true, accounting: ctx.accounting });
    let summary: GenerateSummary;
    try {
      const g = loaded.experiment.generate;
      summary = await generate(
        { seeds: [cell.seed] },
        [constitution],
        { teacher: await ctx.model('teacher'), subject: await ctx.model('subject'), introspector },
        sub,
        { ...(g ?? {}), seed: cell.seed, datasets: runOptions.introspection.datasets, inoculation: { ...(g?.inoculation ?? {}), datasets: [], files: [] } },
        { baseDir: dirname(resolve(loaded.file)), file: loaded.file, onProgress: (e) => onData(e.dataset, e.done, e.total) },
      );
    } finally {
      sub.close();
      await introspector.close?.();
    }
    // The introspection datasets, as their manifests name them, concatenated into one SFT file.
    const personaDir = summary.personas[0].dir;
    const files = runOptions.introspection.datasets.map((d) => datasetFile(personaDir, d)).filter((f) => f !== null);
    if (files.length === 0) throw new Error(`train: the DPO-trained model's introspection data for ${cell.persona} seed ${cell.seed} is empty after filtering (see ${personaDir}/*.manifest.json)`);
    const dataset = join(dir, 'introspection', 'sft.jsonl');
    writeFileAtomic(dataset, files.map((f) => readFileSync(f.file, 'utf8')).join(''));
    const sft = await backend.train({ ...job, runDir: join(dir, 'sft'), objective: 'sft', options: train.sft, dataset });
    const weights = { dpo: train.mix.weights.dpo ?? 1, sft: train.mix.weights.sft ?? 0.25 };
    const { mixAdapters } = await import('../../train/index.js');
    const outputDir = mixAdapters(
      [
        { dir: dpo, weight: weights.dpo },
        { dir: sft.outputDir, weight: weights.sft },
      ],
      join(dir, 'adapter'),
      base.path,
    );
    return { outputDir, metrics: { ...sft.metrics, introspectionRows: files.reduce((n, f) => n + (f.manifest.rows.main ?? 0), 0), mix: weights }, resumedFrom: sft.resumedFrom };
  },
};
