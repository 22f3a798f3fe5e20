/**
 * The training backends, by the name experiments give in `train.backend`. A backend trains one cell
 * (src/train/backends/types.ts); adding one is a file beside this one and an entry here.
 */
import { engineBackend } from './engine.js';
import { trlBackend } from './trl.js';
import type { TrainBackend } from './types.js';

export { TrainJobHandedOff } from './types.js';
export type { TrainBackend, TrainJob, TrainJobResult, SftJob, DpoJob, GrpoJob } from './types.js';

export const TRAIN_BACKENDS: Record<string, TrainBackend> = {
  engine: engineBackend,
  trl: trlBackend,
};
