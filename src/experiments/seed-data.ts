/** Where the run keeps each seed's training data (see generate.seedVaries in docs/data.md). */
import { join } from 'node:path';
import { seedDatasetsDir } from '../data/index.js';
import type { LoadedExperiment } from './load.js';

/** The folder whose persona folders hold a seed's training datasets: datasets/, or datasets/seed-<n>/ with generate.seedVaries. */
export const seedDataDir = (loaded: LoadedExperiment, seed: number): string => seedDatasetsDir(join(loaded.runDir, 'datasets'), loaded.experiment.generate ?? {}, loaded.experiment.seeds, seed);
