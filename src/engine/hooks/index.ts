/**
 * White-box hooks on the residual stream leaving a decoder layer (HF's hidden_states[layer + 1]),
 * built into the graph as inputs and outputs, never as JS loops over activations:
 *   steer:   x += mask[b, t] * vector_l          (vector_l = coef * v, fed per run; mask: which positions)
 *   cap:     x -= max(0, x.u - threshold_l) * u   (u a unit direction: the projection never exceeds it)
 *   capture: output x per token, or its mean over the positions a mask selects (e.g. the reply).
 * At one layer they apply in that order, so a capture sees the steered and capped stream.
 * The graph's structure depends only on which layers are hooked; vectors, coefficients, thresholds
 * and masks are inputs, so one compiled graph serves every vector.
 */
import { type Dim, END, type Graph, type Tensor, add, div, maximum, mul, reduceSum, slice, squeeze, sub, unsqueeze } from '../graph/index.js';
import type { LayerHook } from '../models/llama.js';

/** Where a steering vector is added. */
export type SteerPositions = 'all' | 'prompt' | 'reply';

export interface Steering {
  layer: number;
  /** The direction v (hidden size). */
  vector: ArrayLike<number>;
  coef: number;
  positions?: SteerPositions;
}

export interface Capping {
  /** The layers of the band (each capped independently, in order). */
  layers: number[];
  /** The direction (normalized here). */
  axis: ArrayLike<number>;
  /** Largest allowed projection on the unit axis; one for the band or one per layer. */
  threshold: number | number[];
}

export type CaptureMode = 'tokens' | 'mean' | 'last';

export interface Capture {
  layers: number[];
  /** tokens: [B, T, hidden]; mean: [B, hidden] over `positions` (default reply); last: [B, hidden] at the final position. */
  mode: CaptureMode;
  positions?: SteerPositions;
}

export interface Hooks {
  steer?: Steering[];
  cap?: Capping;
  capture?: Capture;
}

/** Graph input and output names. */
export const hookNames = {
  steerVector: (layer: number) => `steer_${layer}`,
  steerMask: (layer: number) => `steer_mask_${layer}`,
  capAxis: 'cap_axis',
  capThreshold: (layer: number) => `cap_threshold_${layer}`,
  captureMask: 'capture_mask',
  captured: (layer: number) => `resid_${layer}`,
};

/** What decides a graph's structure (its cache key), leaving out every value that is fed. */
export function hookSignature(h: Hooks | undefined): string {
  if (!h) return '';
  const steer = [...new Set((h.steer ?? []).map((s) => s.layer))].sort((a, b) => a - b);
  const cap = h.cap ? [...h.cap.layers].sort((a, b) => a - b) : [];
  const capture = h.capture ? `${h.capture.mode}:${[...h.capture.layers].sort((a, b) => a - b)}` : '';
  return `s${steer}|c${cap}|r${capture}`;
}

export function checkHooks(h: Hooks | undefined, numLayers: number, hidden: number): void {
  if (!h) return;
  const layer = (l: number, what: string) => {
    if (!Number.isInteger(l) || l < 0 || l >= numLayers) throw new RangeError(`${what}: layer ${l} outside 0..${numLayers - 1}`);
  };
  const size = (v: ArrayLike<number>, what: string) => {
    if (v.length !== hidden) throw new RangeError(`${what}: vector of ${v.length} values, expected the hidden size ${hidden}`);
  };
  for (const s of h.steer ?? []) {
    layer(s.layer, 'steer');
    size(s.vector, 'steer');
    const other = h.steer!.find((o) => o.layer === s.layer && (o.positions ?? 'all') !== (s.positions ?? 'all'));
    if (other) throw new RangeError(`steer: layer ${s.layer} is steered on both ${s.positions ?? 'all'} and ${other.positions ?? 'all'} positions`);
  }
  if (h.cap) {
    h.cap.layers.forEach((l) => layer(l, 'cap'));
    size(h.cap.axis, 'cap');
    if (Array.isArray(h.cap.threshold) && h.cap.threshold.length !== h.cap.layers.length) {
      throw new RangeError(`cap: ${h.cap.threshold.length} thresholds for ${h.cap.layers.length} layers`);
    }
  }
  h.capture?.layers.forEach((l) => layer(l, 'capture'));
}

/**
 * Declares the hook inputs on `g` and returns the per-layer function the decoder calls (capture
 * outputs are declared as it runs). `positions` is the shape of the [B, T] position masks.
 */
export function buildHooks(g: Graph, h: Hooks | undefined, hidden: number, positions: readonly Dim[]): LayerHook {
  const steerLayers = new Set((h?.steer ?? []).map((s) => s.layer));
  const capLayers = h?.cap?.layers ?? [];
  const capture = h?.capture;
  const axis = capLayers.length ? g.input(hookNames.capAxis, 'float32', [hidden]) : null;
  const captureMask = capture?.mode === 'mean' ? unsqueeze(g.input(hookNames.captureMask, 'float32', positions), [2]) : null;

  return (layer: number, x: Tensor): Tensor => {
    if (steerLayers.has(layer)) {
      const mask = unsqueeze(g.input(hookNames.steerMask(layer), 'float32', positions), [2]); // [B, T, 1]
      x = add(x, mul(mask, g.input(hookNames.steerVector(layer), 'float32', [hidden])));
    }
    if (axis && capLayers.includes(layer)) {
      const projection = reduceSum(mul(x, axis), [-1], true); // [B, T, 1]
      const over = maximum(sub(projection, g.input(hookNames.capThreshold(layer), 'float32', [])), 0);
      x = sub(x, mul(over, axis));
    }
    if (capture?.layers.includes(layer)) {
      const out =
        capture.mode === 'tokens'
          ? x
          : capture.mode === 'last'
            ? squeeze(slice(x, [-1], [END], [1]), [1])
            : div(reduceSum(mul(x, captureMask!), [1]), maximum(reduceSum(captureMask!, [1]), 1e-9));
      g.output(hookNames.captured(layer), out);
    }
    return x;
  };
}

/** 1 on the chosen positions of a row of `length` with `pads` left pads and `promptLength` prompt tokens. */
export function positionMask(which: SteerPositions, length: number, pads: number, promptLength: number): Float32Array {
  const m = new Float32Array(length);
  for (let t = pads; t < length; t++) {
    const inPrompt = t - pads < promptLength;
    m[t] = which === 'all' || (which === 'prompt') === inPrompt ? 1 : 0;
  }
  return m;
}

/** The unit vector along an axis. */
export function unit(v: ArrayLike<number>): Float32Array {
  let n = 0;
  for (let i = 0; i < v.length; i++) n += v[i] * v[i];
  n = Math.sqrt(n);
  if (!(n > 0)) throw new RangeError('cap: the axis is zero');
  return Float32Array.from(v, (x) => x / n);
}
