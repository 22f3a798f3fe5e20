/**
 * Checkpoints of a training run, everything needed to continue exactly where it stopped:
 *   checkpoints/step-00000050/params.safetensors     trainable tensors (f32, by graph name)
 *                            /optimizer.safetensors  AdamW moments m.<name>, v.<name>
 *                            /state.json             step, RNG state, data cursor, AdamW step
 *                            /adapter/               the adapter in PEFT format (usable as is)
 *   checkpoints/latest                              name of the newest complete checkpoint
 * A checkpoint is written into a temporary directory, its files fsynced, then renamed into place and
 * `latest` replaced atomically, so a SIGKILL at any moment leaves the previous checkpoint intact.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/journal.js';
import { SafetensorsFile, writeSafetensors } from '../engine/io/safetensors.js';
import type { AdamW, Param } from './optim.js';

/** Where the run is: enough to rebuild the data order, the schedule and the random streams. */
export interface TrainState {
  /** Optimizer steps done. */
  step: number;
  /** Epoch and index of the next micro-batch within that epoch's order. */
  epoch: number;
  cursor: number;
  rng: number[];
  /** Free-form per-objective state (e.g. GRPO's running reward statistics). */
  extra?: Record<string, unknown>;
}

export interface Checkpoint {
  dir: string;
  state: TrainState;
  params: Map<string, Float32Array>;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
  optimizerStep: number;
}

const LATEST = 'latest';

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes checkpoint `state.step` under `root` and keeps the newest `keep`. `writeAdapter(dir)`, when
 * given, writes the PEFT adapter into the checkpoint's adapter/ folder.
 */
export function saveCheckpoint(
  root: string,
  params: readonly Param[],
  optimizer: AdamW,
  state: TrainState,
  options: { keep?: number; writeAdapter?: (dir: string) => void } = {},
): string {
  const name = `step-${String(state.step).padStart(8, '0')}`;
  const final = join(root, name);
  const tmp = join(root, `.${name}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeSafetensors(join(tmp, 'params.safetensors'), params.map((p) => ({ name: p.name, shape: p.shape, data: p.data })));
  writeSafetensors(
    join(tmp, 'optimizer.safetensors'),
    params.flatMap((p, i) => [
      { name: `m.${p.name}`, shape: p.shape, data: optimizer.m[i] },
      { name: `v.${p.name}`, shape: p.shape, data: optimizer.v[i] },
    ]),
    { step: String(optimizer.step) },
  );
  writeFileAtomic(join(tmp, 'state.json'), JSON.stringify(state) + '\n');
  if (options.writeAdapter) options.writeAdapter(join(tmp, 'adapter'));
  for (const file of ['params.safetensors', 'optimizer.safetensors']) fsyncPath(join(tmp, file));
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  fsyncPath(root);
  writeFileAtomic(join(root, LATEST), name + '\n');
  prune(root, options.keep ?? 2);
  return final;
}

function prune(root: string, keep: number): void {
  const names = readdirSync(root)
    .filter((n) => /^step-\d+$/.test(n))
    .sort();
  for (const old of names.slice(0, Math.max(0, names.length - keep))) rmSync(join(root, old), { recursive: true, force: true });
  for (const n of readdirSync(root)) if (n.startsWith('.step-') && n.includes('.tmp-')) rmSync(join(root, n), { recursive: true, force: true });
}

/** The newest complete checkpoint under `root`, or null when the run has none yet. */
export function loadLatestCheckpoint(root: string): Checkpoint | null {
  const pointer = join(root, LATEST);
  if (!existsSync(pointer)) return null;
  const dir = join(root, readFileSync(pointer, 'utf8').trim());
  const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as TrainState;
  const params = new Map<string, Float32Array>();
  const m = new Map<string, Float32Array>();
  const v = new Map<string, Float32Array>();
  const pf = SafetensorsFile.open(join(dir, 'params.safetensors'));
  const of = SafetensorsFile.open(join(dir, 'optimizer.safetensors'));
  try {
    for (const name of pf.names()) params.set(name, pf.readFloat32(name));
    for (const name of of.names()) (name.startsWith('m.') ? m : v).set(name.slice(2), of.readFloat32(name));
    return { dir, state, params, m, v, optimizerStep: Number(of.metadata.step) };
  } finally {
    pf.close();
    of.close();
  }
}

/** Puts a checkpoint's values back into live parameters and optimizer (matched by name). */
export function restoreCheckpoint(ckpt: Checkpoint, params: readonly Param[], optimizer: AdamW): void {
  params.forEach((p, i) => {
    const values = ckpt.params.get(p.name);
    const m = ckpt.m.get(p.name);
    const v = ckpt.v.get(p.name);
    if (!values || !m || !v) throw new Error(`checkpoint ${ckpt.dir} has no state for parameter ${p.name}`);
    if (values.length !== p.data.length) throw new Error(`checkpoint ${ckpt.dir}: ${p.name} has ${values.length} values, expected ${p.data.length}`);
    p.data.set(values);
    optimizer.m[i].set(m);
    optimizer.v[i].set(v);
  });
  optimizer.step = ckpt.optimizerStep;
}
