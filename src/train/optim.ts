/**
 * Optimisation in plain TypeScript over Float32Arrays: AdamW, global-norm gradient clipping,
 * gradient accumulation and learning-rate schedules. Numerics follow PyTorch's torch.optim.AdamW and
 * Hugging Face's schedules (checked against fixtures PyTorch computed, test/train/optim.test.ts).
 */

/** A trainable tensor: its name (PEFT / HF naming), shape and values, updated in place. */
export interface Param {
  name: string;
  shape: number[];
  data: Float32Array;
  /** Decoupled weight decay applies (false for norms and biases in full-parameter training). */
  decay?: boolean;
}

export interface AdamWOptions {
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

/** What a checkpoint saves to resume AdamW exactly. */
export interface AdamWState {
  step: number;
  /** First and second moments, in parameter order. */
  m: Float32Array[];
  v: Float32Array[];
}

export class AdamW {
  step = 0;
  readonly m: Float32Array[];
  readonly v: Float32Array[];

  constructor(
    readonly params: Param[],
    readonly options: AdamWOptions,
  ) {
    this.m = params.map((p) => new Float32Array(p.data.length));
    this.v = params.map((p) => new Float32Array(p.data.length));
  }

  /**
   * One update with learning rate `lr`, as torch.optim.AdamW: decay the weights by lr * wd, update the
   * moments, step by lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
   */
  update(grads: readonly Float32Array[], lr: number): void {
    if (grads.length !== this.params.length) throw new Error(`AdamW: ${grads.length} gradients for ${this.params.length} parameters`);
    this.step += 1;
    const [b1, b2] = this.options.betas;
    const { eps } = this.options;
    const stepSize = lr / (1 - b1 ** this.step);
    const rootBias2 = Math.sqrt(1 - b2 ** this.step);
    for (let p = 0; p < this.params.length; p++) {
      const param = this.params[p];
      const w = param.data;
      const g = grads[p];
      const m = this.m[p];
      const v = this.v[p];
      if (g.length !== w.length) throw new Error(`AdamW: gradient of ${param.name} has ${g.length} values, expected ${w.length}`);
      const decay = param.decay === false ? 1 : 1 - lr * this.options.weightDecay;
      for (let i = 0; i < w.length; i++) {
        const gi = g[i];
        const mi = b1 * m[i] + (1 - b1) * gi;
        const vi = b2 * v[i] + (1 - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] = w[i] * decay - (stepSize * mi) / (Math.sqrt(vi) / rootBias2 + eps);
      }
    }
  }

  state(): AdamWState {
    return { step: this.step, m: this.m, v: this.v };
  }

  load(state: AdamWState): void {
    if (state.m.length !== this.m.length) throw new Error(`AdamW state has ${state.m.length} moments, expected ${this.m.length}`);
    this.step = state.step;
    for (let p = 0; p < this.m.length; p++) {
      this.m[p].set(state.m[p]);
      this.v[p].set(state.v[p]);
    }
  }
}

/** The L2 norm of all gradients together. */
export function globalNorm(grads: readonly Float32Array[]): number {
  let sum = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) sum += g[i] * g[i];
  return Math.sqrt(sum);
}

/**
 * Scales gradients in place so their global norm is at most `maxNorm` (torch.nn.utils.clip_grad_norm_:
 * coefficient maxNorm / (norm + 1e-6), capped at 1). Returns the norm before clipping.
 */
export function clipGradNorm(grads: readonly Float32Array[], maxNorm: number): number {
  const norm = globalNorm(grads);
  if (!(maxNorm > 0)) return norm;
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) for (const g of grads) for (let i = 0; i < g.length; i++) g[i] *= coef;
  return norm;
}

/**
 * Sums micro-batch gradients of *summed* losses and divides by the total normaliser (tokens or pairs)
 * of the whole optimizer step, so accumulation over k micro-batches equals one batch k times larger.
 */
export class GradAccumulator {
  readonly sums: Float32Array[];
  normaliser = 0;
  lossSum = 0;
  microBatches = 0;

  constructor(sizes: readonly number[]) {
    this.sums = sizes.map((n) => new Float32Array(n));
  }

  add(grads: readonly Float32Array[], lossSum: number, normaliser: number): void {
    for (let p = 0; p < grads.length; p++) {
      const s = this.sums[p];
      const g = grads[p];
      for (let i = 0; i < s.length; i++) s[i] += g[i];
    }
    this.lossSum += lossSum;
    this.normaliser += normaliser;
    this.microBatches += 1;
  }

  /** The mean gradients (in place) and mean loss of the step; call reset() after the update. */
  mean(): { grads: Float32Array[]; loss: number } {
    const scale = this.normaliser > 0 ? 1 / this.normaliser : 0;
    for (const s of this.sums) for (let i = 0; i < s.length; i++) s[i] *= scale;
    return { grads: this.sums, loss: this.lossSum * scale };
  }

  reset(): void {
    for (const s of this.sums) s.fill(0);
    this.normaliser = 0;
    this.lossSum = 0;
    this.microBatches = 0;
  }
}

export type ScheduleKind = 'constant' | 'linear' | 'cosine';

export interface ScheduleOptions {
  kind: ScheduleKind;
  /** Peak learning rate. */
  lr: number;
  totalSteps: number;
  warmupSteps: number;
  /** Cosine/linear floor as a fraction of the peak (0 in Hugging Face's schedules). */
  minLrRatio?: number;
}

/**
 * The learning rate at optimizer step `step` (0-based), as Hugging Face's LambdaLR schedules:
 * linear warmup from 0 over warmupSteps (so step 0 of a warmup has lr 0), then constant, linear
 * decay to the floor at totalSteps, or half-cosine decay to the floor.
 */
export function learningRate(step: number, o: ScheduleOptions): number {
  if (step < o.warmupSteps) return (o.lr * step) / Math.max(1, o.warmupSteps);
  if (o.kind === 'constant') return o.lr;
  const floor = o.minLrRatio ?? 0;
  const progress = Math.min(1, (step - o.warmupSteps) / Math.max(1, o.totalSteps - o.warmupSteps));
  const shape = o.kind === 'linear' ? 1 - progress : 0.5 * (1 + Math.cos(Math.PI * progress));
  return o.lr * (floor + (1 - floor) * shape);
}

/** Warmup steps from an explicit count or a ratio of the total (ceil, as Hugging Face). */
export function warmupSteps(totalSteps: number, steps?: number, ratio?: number): number {
  if (steps !== undefined && steps > 0) return steps;
  return ratio ? Math.ceil(totalSteps * ratio) : 0;
}
