/** Finite-difference gradient checks for the graph ops (support for the *.test.ts files here). */
import assert from 'node:assert/strict';
import { type DType, Graph, type Tensor, grad, mul, reduceSum } from '../../../src/engine/graph/index.js';
import { Session } from '../../../src/engine/runtime/index.js';

/** Deterministic uniform [-1, 1) values (mulberry32). */
export function rand(n: number, seed: number): number[] {
  let a = seed >>> 0;
  return Array.from({ length: n }, () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  });
}

export interface FixedInput {
  dtype: DType;
  shape: (number | string)[];
  dims: number[];
  data: number[];
}

export interface GradCase {
  /** Shapes of the differentiable leaves (graph params, fed). */
  params: Record<string, number[]>;
  /** Non-differentiated inputs (indices, masks, symbolic-shaped data). */
  inputs?: Record<string, FixedInput>;
  build(p: Record<string, Tensor>, inputs: Record<string, Tensor>, g: Graph): Tensor;
  dtype?: 'float64' | 'float32';
  /** Map the uniform [-1,1) init of a param (e.g. to positive values for log). */
  init?: Record<string, (v: number, i: number) => number>;
  seed?: number;
  eps?: number;
  atol?: number;
  rtol?: number;
}

const typed = (dtype: DType, v: number[]) => (dtype === 'float64' ? Float64Array.from(v) : Float32Array.from(v));

/**
 * Builds loss = sum(out * R) for a fixed random R, differentiates it with grad(), and compares
 * every gradient element with a central difference of the same session's loss.
 */
export async function checkGrad(name: string, c: GradCase): Promise<{ maxErr: number }> {
  const dtype = c.dtype ?? 'float64';
  const seed = c.seed ?? 1;
  const g = new Graph(name);
  const params: Record<string, Tensor> = {};
  for (const [n, shape] of Object.entries(c.params)) params[n] = g.param(n, shape, { dtype });
  const inputs: Record<string, Tensor> = {};
  for (const [n, spec] of Object.entries(c.inputs ?? {})) inputs[n] = g.input(n, spec.dtype, spec.shape);
  const out = c.build(params, inputs, g);
  const staticShape = out.shape.every((d) => typeof d === 'number');
  const size = staticShape ? (out.shape as number[]).reduce((a, b) => a * b, 1) : 0;
  // a fixed random weighting exercises non-uniform upstream gradients
  const weighted = staticShape ? mul(out, g.constant(typed(dtype, rand(size, seed + 99)), out.shape as number[], dtype)) : mul(out, out);
  const loss = reduceSum(weighted, [...Array(out.rank).keys()]);
  g.output('loss', loss);
  const names = Object.keys(params);
  const grads = grad(loss, names.map((n) => params[n]));
  names.forEach((n, i) => g.output(`d_${n}`, grads[i]));

  const values: Record<string, Float64Array | Float32Array> = {};
  names.forEach((n, k) => {
    const count = c.params[n].reduce((a, b) => a * b, 1);
    const init = c.init?.[n] ?? ((v: number) => v);
    values[n] = typed(dtype, rand(count, seed + k * 7).map((v, i) => init(v, i)));
  });
  const feedsFor = () => {
    const feeds: Record<string, { data: any; dims: number[] }> = {};
    for (const n of names) feeds[n] = { data: values[n], dims: c.params[n] };
    for (const [n, spec] of Object.entries(c.inputs ?? {})) feeds[n] = { data: spec.data, dims: spec.dims };
    return feeds;
  };
  const fullSession = await Session.create(g, { threads: 1 });
  const lossSession = await Session.create(g, { threads: 1, outputs: ['loss'] });
  const analytic = await fullSession.run(feedsFor());
  const eps = c.eps ?? (dtype === 'float64' ? 1e-6 : 1e-2);
  const atol = c.atol ?? (dtype === 'float64' ? 1e-6 : 2e-3);
  const rtol = c.rtol ?? (dtype === 'float64' ? 1e-5 : 2e-2);
  let maxErr = 0;
  for (const n of names) {
    const got = analytic[`d_${n}`].data as Float64Array;
    assert.deepEqual([...analytic[`d_${n}`].dims], c.params[n], `${name}: d_${n} shape`);
    for (let i = 0; i < values[n].length; i++) {
      const orig = values[n][i];
      values[n][i] = orig + eps;
      const up = Number((await lossSession.run(feedsFor())).loss.data[0]);
      values[n][i] = orig - eps;
      const down = Number((await lossSession.run(feedsFor())).loss.data[0]);
      values[n][i] = orig;
      const numeric = (up - down) / (2 * eps);
      const err = Math.abs(Number(got[i]) - numeric);
      maxErr = Math.max(maxErr, err);
      assert.ok(err <= atol + rtol * Math.abs(numeric), `${name}: d_${n}[${i}] analytic ${got[i]} vs numeric ${numeric}`);
    }
  }
  await fullSession.release();
  await lossSession.release();
  return { maxErr };
}
