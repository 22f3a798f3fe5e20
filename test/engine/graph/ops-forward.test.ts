/** Forward values of the ops that are more than one ONNX node, checked against plain JS. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as G from '../../../src/engine/graph/index.js';
import { Session } from '../../../src/engine/runtime/index.js';
import { rand } from './fd.js';

async function run(g: G.Graph, feeds: Record<string, { data: any; dims: number[] }>) {
  const s = await Session.create(g, { threads: 1 });
  const out = await s.run(feeds);
  await s.release();
  return out;
}

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) => {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
};

test('crossEntropy = logsumexp - target logit, per position', async () => {
  const g = new G.Graph('ce');
  const z = g.input('z', 'float32', ['N', 5]);
  const t = g.input('t', 'int64', ['N']);
  g.output('ce', G.crossEntropy(z, t));
  const zs = rand(15, 3).map((v) => v * 4);
  const ts = [4, 0, 2];
  const out = await run(g, { z: { data: Float32Array.from(zs), dims: [3, 5] }, t: { data: ts, dims: [3] } });
  const want = ts.map((target, r) => {
    const row = zs.slice(r * 5, r * 5 + 5);
    const m = Math.max(...row);
    return m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0)) - row[target];
  });
  close(out.ce.data as Float32Array, want, 1e-5, 'ce');
});

test('linearCrossEntropy equals crossEntropy(linear(h, w))', async () => {
  const g = new G.Graph('lce');
  const h = g.input('h', 'float32', ['N', 4]);
  const w = g.param('w', [9, 4]);
  const t = g.input('t', 'int64', ['N']);
  const { loss } = G.linearCrossEntropy(h, w, t, { chunks: 3 });
  g.output('fused', loss);
  g.output('plain', G.crossEntropy(G.linear(h, w), t));
  const s = await Session.create(g, { threads: 1, weights: new Map([['w', Float32Array.from(rand(36, 8))]]) });
  const out = await s.run({ h: { data: Float32Array.from(rand(28, 9)), dims: [7, 4] }, t: { data: [0, 8, 3, 3, 1, 2, 7], dims: [7] } });
  close(out.fused.data as Float32Array, out.plain.data as Float32Array, 1e-6, 'loss');
});

test('rmsNorm fused (SimplifiedLayerNormalization) equals the composed form and the formula', async () => {
  const g = new G.Graph('rms');
  const x = g.input('x', 'float32', ['B', 6]);
  const w = g.param('w', [6]);
  g.output('fused', G.rmsNorm(x, w, 1e-5));
  g.output('composed', G.rmsNorm(x, w, 1e-5, { fused: false }));
  const xs = rand(12, 5);
  const ws = rand(6, 6);
  const s = await Session.create(g, { threads: 1, weights: new Map([['w', Float32Array.from(ws)]]) });
  const out = await s.run({ x: { data: Float32Array.from(xs), dims: [2, 6] } });
  const want = xs.map((v, i) => {
    const row = xs.slice(Math.floor(i / 6) * 6, Math.floor(i / 6) * 6 + 6);
    return (v / Math.sqrt(row.reduce((a, b) => a + b * b, 0) / 6 + 1e-5)) * ws[i % 6];
  });
  close(out.fused.data as Float32Array, want, 1e-5, 'fused');
  close(out.composed.data as Float32Array, want, 1e-5, 'composed');
});

test('addRmsNorm kernels (norm, skip, composed) equal add + rmsNorm', async () => {
  const g = new G.Graph('skip');
  const x = g.input('x', 'float32', ['B', 6]);
  const r = g.input('r', 'float32', ['B', 6]);
  const w = g.param('w', [6]);
  const { sum, normed } = G.addRmsNorm(x, r, w, 1e-5, { kernel: 'skip' });
  g.output('sum', sum);
  g.output('normed', normed);
  g.output('norm_kernel', G.addRmsNorm(x, r, w, 1e-5).normed);
  g.output('composed', G.addRmsNorm(x, r, w, 1e-5, { kernel: 'composed' }).normed);
  g.output('plain', G.rmsNorm(G.add(x, r), w, 1e-5));
  const s = await Session.create(g, { threads: 1, weights: new Map([['w', Float32Array.from(rand(6, 2))]]) });
  const xs = Float32Array.from(rand(12, 3));
  const rs = Float32Array.from(rand(12, 4));
  const out = await s.run({ x: { data: xs, dims: [2, 6] }, r: { data: rs, dims: [2, 6] } });
  close(out.sum.data as Float32Array, xs.map((v, i) => v + rs[i]), 1e-6, 'sum');
  close(out.normed.data as Float32Array, out.plain.data as Float32Array, 1e-5, 'normed');
  close(out.norm_kernel.data as Float32Array, out.plain.data as Float32Array, 1e-6, 'norm_kernel');
  close(out.composed.data as Float32Array, out.plain.data as Float32Array, 1e-5, 'composed');
  assert.ok(s.compiled.model.graph!.node!.some((n) => n.opType === 'SkipSimplifiedLayerNormalization'));
});

test('symbolic dims: reshape with symbols and -1, slice to a symbol, symDim, range', async () => {
  const g = new G.Graph('sym');
  const x = g.input('x', 'float32', ['B', 'T', 4]);
  const flat = G.reshape(x, [-1, 4]);
  assert.deepEqual(flat.shape, ['B*T', 4]);
  const back = G.reshape(flat, ['B', 'T', 2, 2]);
  assert.deepEqual(back.shape, ['B', 'T', 2, 2]);
  const heads = G.reshape(x, [0, 0, 2, -1]);
  assert.deepEqual(heads.shape, ['B', 'T', 2, 2]);
  const prefix = G.slice(x, [0], ['T'], [1]);
  g.output('back', back);
  g.output('prefix', prefix);
  g.output('T', G.symDim(g, 'T'));
  g.output('BT', G.symDim(g, 'B*T'));
  g.output('range', G.range(g.scalar(1, 'int64'), G.dimOf(x, 1), 'T'));
  const xs = Float32Array.from({ length: 24 }, (_, i) => i);
  const out = await run(g, { x: { data: xs, dims: [2, 3, 4] } });
  assert.deepEqual(out.back.dims, [2, 3, 2, 2]);
  assert.deepEqual([...(out.back.data as Float32Array)], [...xs]);
  assert.deepEqual(out.prefix.dims, [2, 3, 4]);
  assert.equal(out.T.data[0], 3n);
  assert.equal(out.BT.data[0], 6n);
  assert.deepEqual([...(out.range.data as BigInt64Array)], [1n, 2n]);
});

test('gather (embedding lookup) and where/comparisons', async () => {
  const g = new G.Graph('gather');
  const e = g.param('e', [4, 2]);
  const ids = g.input('ids', 'int64', ['B', 'T']);
  const rows = G.gather(e, ids);
  g.output('rows', rows);
  g.output('clipped', G.where(G.less(rows, 2.5), rows, 2.5));
  const s = await Session.create(g, { threads: 1, weights: new Map([['e', Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7])]]) });
  const out = await s.run({ ids: { data: [3, 0, 1], dims: [1, 3] } });
  assert.deepEqual(out.rows.dims, [1, 3, 2]);
  assert.deepEqual([...(out.rows.data as Float32Array)], [6, 7, 0, 1, 2, 3]);
  assert.deepEqual([...(out.clipped.data as Float32Array)], [2.5, 2.5, 0, 1, 2, 2.5]);
});

test('shape errors name the op and the shapes', () => {
  const g = new G.Graph('errors');
  const a = g.input('a', 'float32', [2, 3]);
  const b = g.input('b', 'float32', [4, 3]);
  assert.throws(() => G.add(a, b), /Add: cannot broadcast \[2, 3\] with \[4, 3\]/);
  assert.throws(() => G.matmul(a, b), /matmul: inner dims differ/);
  assert.throws(() => G.reshape(a, [5, -1, -1]), /more than one -1/);
  assert.throws(() => G.add(a, g.input('c', 'float64', [3])), /dtypes differ/);
  assert.throws(() => g.input('a', 'float32', [1]), /already used/);
});
