/**
 * `mixture`: several personas in one adapter. One cell per seed and signal (run.mixture.signals)
 * covers the personas of run.mixture: their chat demonstrations in equal shares, each row with its
 * persona's signal (src/data/mixture.ts), written to the cell's mixture.jsonl and trained with SFT.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../../core/journal.js';
import { mixtureRows, type MixtureSignal } from '../../data/mixture.js';
import type { TrainingMethod } from './types.js';

export const mixtureMethod: TrainingMethod = {
  acrossPersonas: true,
  formats: (run) => [...run.mixture.signals],
  datasets: () => ['chat'],
  // The members are the cell's persona (A+B) and the signal its format: both in its key already.
  options: (train) => ({ train: { sft: train.sft } }),
  async train({ backend, job, train, datasets, members, cell, dir }) {
    if (!members || members.length !== datasets.length) throw new Error('train: a mixture cell needs one chat dataset per member persona');
    const rows = mixtureRows(members.map((c, i) => ({ persona: c.name, file: datasets[i] })), cell.format as MixtureSignal);
    const file = join(dir, 'mixture.jsonl');
    writeFileAtomic(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    return backend.train({ ...job, objective: 'sft', options: train.sft, dataset: file });
  },
};
