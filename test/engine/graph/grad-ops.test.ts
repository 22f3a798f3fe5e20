/** Finite-difference checks of every op's gradient rule (float64 where ORT's CPU EP has the kernel). */
import { test } from 'node:test';
import * as G from '../../../src/engine/graph/index.js';
import { type GradCase, checkGrad } from './fd.js';

const pos = (v: number) => 0.5 + Math.abs(v); // keeps log/sqrt/div/pow away from 0
const away = (v: number) => (v < 0 ? v - 0.3 : v + 0.3); // keeps abs/reciprocal away from kinks
const spread = (v: number, i: number) => v + i * 0.37; // distinct values: no ties for max/min

const cases: Record<string, GradCase> = {
  // ---- binary, with broadcasting both ways ----
  'add [2,3]+[3]': { params: { a: [2, 3], b: [3] }, build: ({ a, b }) => G.add(a, b) },
  'add [2,1,3]+[4,1]': { params: { a: [2, 1, 3], b: [4, 1] }, build: ({ a, b }) => G.add(a, b) },
  'sub [3,1]-[1,4]': { params: { a: [3, 1], b: [1, 4] }, build: ({ a, b }) => G.sub(a, b) },
  'mul [2,3,4]*[3,1] and scalar': { params: { a: [2, 3, 4], b: [3, 1] }, build: ({ a, b }) => G.mul(G.mul(a, b), 1.5) },
  'mul fan-out a*a*b': { params: { a: [3, 2], b: [2] }, build: ({ a, b }) => G.mul(G.mul(a, a), b) },
  'div [2,3]/[2,1]': { params: { a: [2, 3], b: [2, 1] }, init: { b: pos }, build: ({ a, b }) => G.div(a, b) },
  'div scalar/x': { params: { a: [4] }, init: { a: pos }, build: ({ a }) => G.div(2, a) },
  'pow tensor^tensor': { params: { a: [2, 3], b: [3] }, init: { a: pos }, build: ({ a, b }) => G.pow(a, b) },
  'pow x^3': { params: { a: [5] }, build: ({ a }) => G.pow(a, 3) },
  maximum: { params: { a: [2, 3], b: [2, 3] }, init: { a: spread }, build: ({ a, b }) => G.maximum(a, b) },
  'minimum broadcast': { params: { a: [2, 3], b: [3] }, init: { a: spread }, build: ({ a, b }) => G.minimum(a, b) },
  // ---- unary ----
  neg: { params: { a: [2, 3] }, build: ({ a }) => G.neg(a) },
  exp: { params: { a: [2, 3] }, build: ({ a }) => G.exp(a) },
  log: { params: { a: [2, 3] }, init: { a: pos }, build: ({ a }) => G.log(a) },
  sqrt: { params: { a: [2, 3] }, init: { a: pos }, build: ({ a }) => G.sqrt(a) },
  reciprocal: { params: { a: [2, 3] }, init: { a: away }, build: ({ a }) => G.reciprocal(a) },
  rsqrt: { params: { a: [2, 3] }, init: { a: pos }, build: ({ a }) => G.rsqrt(a) },
  tanh: { params: { a: [2, 3] }, build: ({ a }) => G.tanh(a) },
  sigmoid: { params: { a: [2, 3] }, build: ({ a }) => G.sigmoid(G.mul(a, 3)) },
  silu: { params: { a: [2, 3] }, build: ({ a }) => G.silu(G.mul(a, 3)) },
  'silu float32 (QuickGelu fusion)': { dtype: 'float32', params: { a: [2, 3] }, build: ({ a }) => G.silu(G.mul(a, 3)) },
  swiglu: { params: { g: [2, 3], u: [2, 3] }, build: ({ g, u }) => G.swiglu(G.mul(g, 3), u) },
  'swiglu float32': { dtype: 'float32', params: { g: [2, 3], u: [3] }, build: ({ g, u }) => G.swiglu(G.mul(g, 3), u) },
  geluTanh: { params: { a: [2, 3] }, build: ({ a }) => G.geluTanh(G.mul(a, 2)) },
  cos: { params: { a: [2, 3] }, build: ({ a }) => G.cos(G.mul(a, 3)) },
  sin: { params: { a: [2, 3] }, build: ({ a }) => G.sin(G.mul(a, 3)) },
  abs: { params: { a: [2, 3] }, init: { a: away }, build: ({ a }) => G.abs(a) },
  where: {
    params: { a: [2, 3], b: [3] },
    inputs: { c: { dtype: 'bool', shape: [2, 3], dims: [2, 3], data: [1, 0, 1, 0, 0, 1] } },
    build: ({ a, b }, { c }) => G.where(c, a, b),
  },
  'where with comparison': { params: { a: [6] }, init: { a: spread }, build: ({ a }) => G.where(G.greater(a, 0.5), G.mul(a, a), G.neg(a)) },
  'cast float64->float32->float64': {
    params: { a: [2, 3] },
    eps: 1e-3,
    atol: 1e-5,
    rtol: 1e-4,
    build: ({ a }) => G.cast(G.mul(G.cast(a, 'float32'), 2), 'float64'),
  },
  // ---- reductions ----
  'reduceSum axes [1] keepdims': { params: { a: [2, 3, 4] }, build: ({ a }) => G.reduceSum(a, [1], true) },
  'reduceSum axes [0,2]': { params: { a: [2, 3, 4] }, build: ({ a }) => G.reduceSum(a, [0, 2]) },
  'reduceMean axes [-1]': { params: { a: [2, 3, 4] }, build: ({ a }) => G.reduceMean(a, [-1]) },
  'reduceMean keepdims': { params: { a: [2, 3, 4] }, build: ({ a }) => G.reduceMean(a, [0, 1], true) },
  reduceMax: { params: { a: [3, 4] }, init: { a: spread }, build: ({ a }) => G.reduceMax(a, [1]) },
  logSumExp: { params: { a: [3, 4] }, build: ({ a }) => G.logSumExp(a, [-1], true) },
  // ---- shape ----
  'reshape 0/-1': { params: { a: [2, 3, 4] }, build: ({ a }) => G.mul(G.reshape(a, [0, -1]), 1) },
  transpose: { params: { a: [2, 3, 4] }, build: ({ a }) => G.transpose(a, [2, 0, 1]) },
  'transpose last two': { params: { a: [2, 3, 4] }, build: ({ a }) => G.transpose(a) },
  'unsqueeze/squeeze': { params: { a: [2, 3] }, build: ({ a }) => G.squeeze(G.mul(G.unsqueeze(a, [0, 2]), 2), [0]) },
  expand: { params: { a: [3, 1] }, build: ({ a }) => G.expand(a, [2, 3, 4]) },
  expandAs: { params: { a: [1, 4], b: [3, 4] }, build: ({ a, b }) => G.mul(G.expandAs(a, b), b) },
  concat: { params: { a: [2, 3], b: [2, 2] }, build: ({ a, b }) => G.concat([a, b, a], 1) },
  split: { params: { a: [2, 5] }, build: ({ a }) => { const [x, y] = G.split(a, [2, 3], 1); return G.concat([G.mul(y, 2), x], 1); } },
  'split, one piece unused': { params: { a: [2, 5] }, build: ({ a }) => G.split(a, [2, 3], 1)[1] },
  'slice starts/ends/negative': { params: { a: [4, 5] }, build: ({ a }) => G.slice(a, [1, -3], [3, G.END], [0, 1]) },
  'gather rows (repeated ids)': {
    params: { e: [5, 3] },
    inputs: { ids: { dtype: 'int64', shape: [2, 3], dims: [2, 3], data: [1, 4, 1, 0, 1, 3] } },
    build: ({ e }, { ids }) => G.gather(e, ids),
  },
  gatherElements: {
    params: { a: [3, 4] },
    inputs: { idx: { dtype: 'int64', shape: [3, 2], dims: [3, 2], data: [0, 3, 2, 2, 1, 0] } },
    build: ({ a }, { idx }) => G.gatherElements(a, idx, 1),
  },
  // ---- linear algebra ----
  'matmul 2D': { params: { a: [3, 4], b: [4, 2] }, build: ({ a, b }) => G.matmul(a, b) },
  'matmul batched x weight': { params: { a: [2, 3, 4], b: [4, 5] }, build: ({ a, b }) => G.matmul(a, b) },
  'matmul broadcast batch': { params: { a: [2, 1, 3, 4], b: [3, 4, 2] }, build: ({ a, b }) => G.matmul(a, b) },
  'matmul a @ a^T': { params: { a: [2, 3, 4] }, build: ({ a }) => G.matmul(a, G.transpose(a)) },
  'linear with bias': { params: { x: [2, 3, 4], w: [5, 4], b: [5] }, build: ({ x, w, b }) => G.linear(x, w, b) },
  'linear float32': { dtype: 'float32', params: { x: [2, 3, 4], w: [5, 4] }, build: ({ x, w }) => G.linear(x, w) },
  matmulTN: { params: { a: [4, 3], b: [4, 2] }, build: ({ a, b }) => G.matmulTN(a, b) },
  // ---- nn ----
  softmax: { params: { a: [2, 3, 4] }, build: ({ a }) => G.softmax(a, -1) },
  'softmax axis 1': { params: { a: [2, 3, 4] }, build: ({ a }) => G.softmax(a, 1) },
  logSoftmax: { params: { a: [3, 5] }, build: ({ a }) => G.logSoftmax(G.mul(a, 2)) },
  crossEntropy: {
    params: { z: [2, 3, 7] },
    inputs: { t: { dtype: 'int64', shape: [2, 3], dims: [2, 3], data: [0, 6, 3, 3, 1, 5] } },
    build: ({ z }, { t }) => G.crossEntropy(G.mul(z, 3), t),
  },
  'linearCrossEntropy, uneven chunks (5 rows / 3)': {
    params: { h: [5, 3], w: [6, 3] },
    inputs: { t: { dtype: 'int64', shape: ['N'], dims: [5], data: [0, 5, 2, 2, 4] } },
    build: ({ h, w }, { t }) => G.linearCrossEntropy(G.mul(h, 2), w, t, { chunks: 3 }).loss,
  },
  'linearCrossEntropy, empty chunks (2 rows / 4), float32': {
    dtype: 'float32',
    params: { h: [2, 3], w: [6, 3] },
    inputs: { t: { dtype: 'int64', shape: ['N'], dims: [2], data: [1, 5] } },
    build: ({ h, w }, { t }) => G.linearCrossEntropy(G.mul(h, 2), w, t, { chunks: 4 }).loss,
  },
  'linearCrossEntropy, only h differentiated': {
    params: { h: [4, 3] },
    inputs: { t: { dtype: 'int64', shape: ['N'], dims: [4], data: [0, 1, 2, 1] } },
    build: ({ h }, { t }, g) => G.linearCrossEntropy(h, g.constant(Float64Array.from([1, 2, 3, 0, -1, 1, 2, 0.5, -2]), [3, 3], 'float64'), t, { chunks: 2 }).loss,
  },
  'linearCrossEntropy, only w differentiated': {
    params: { w: [4, 2] },
    inputs: { t: { dtype: 'int64', shape: ['N'], dims: [3], data: [3, 0, 2] } },
    build: ({ w }, { t }, g) => G.linearCrossEntropy(g.constant(Float64Array.from([1, 2, 3, 0, -1, 1]), [3, 2], 'float64'), w, t, { chunks: 2 }).loss,
  },
  'linearCrossEntropy frozenHead, weighted rows, uneven chunks (5 rows / 3)': {
    params: { h: [5, 3] },
    inputs: { t: { dtype: 'int64', shape: ['N'], dims: [5], data: [0, 2, 1, 1, 2] } },
    build: ({ h }, { t }, g) => {
      const w = g.constant(Float64Array.from([1, 2, 3, 0, -1, 1, 2, 0.5, -2]), [3, 3], 'float64');
      const rowWeights = g.constant(Float64Array.from([1, -2, 0.5, 0, 3]), [5], 'float64');
      return G.mul(G.linearCrossEntropy(G.mul(h, 2), w, t, { chunks: 3, frozenHead: true }).loss, rowWeights);
    },
  },
  'linearCrossEntropy frozenHead, empty chunks (2 rows / 4), float32': {
    dtype: 'float32',
    params: { h: [2, 3] },
    inputs: { t: { dtype: 'int64', shape: ['N'], dims: [2], data: [1, 2] } },
    build: ({ h }, { t }, g) => G.mul(G.linearCrossEntropy(h, g.constant([1, 2, 3, 0, -1, 1, 2, 0.5, -2], [3, 3]), t, { chunks: 4, frozenHead: true }).loss, g.constant([2, -1], [2])),
  },
  'rmsNorm composed (float64)': { params: { x: [2, 3, 4], w: [4] }, build: ({ x, w }) => G.rmsNorm(x, w, 1e-5, { fused: false }) },
  'rmsNorm fused (float32)': { dtype: 'float32', params: { x: [2, 3, 4], w: [4] }, build: ({ x, w }) => G.rmsNorm(x, w, 1e-5) },
  'addRmsNorm composed (float64), both outputs used': {
    params: { x: [2, 3, 4], r: [2, 3, 4], w: [4] },
    build: ({ x, r, w }) => {
      const { sum, normed } = G.addRmsNorm(x, r, w, 1e-5);
      return G.add(G.mul(normed, 2), G.mul(sum, sum));
    },
  },
  'addRmsNorm SkipSimplifiedLayerNormalization (float32)': {
    dtype: 'float32',
    params: { x: [2, 3, 4], r: [2, 3, 4], w: [4] },
    build: ({ x, r, w }) => {
      const { sum, normed } = G.addRmsNorm(x, r, w, 1e-5, { kernel: 'skip' });
      return G.add(normed, G.mul(sum, 0.5));
    },
  },
  'addRmsNorm, only the norm used': { params: { x: [3, 4], r: [3, 4], w: [4] }, build: ({ x, r, w }) => G.addRmsNorm(x, r, w).normed },
  maskedMean: {
    params: { a: [2, 3] },
    inputs: { m: { dtype: 'float64', shape: [2, 3], dims: [2, 3], data: [1, 1, 0, 1, 0, 0] } },
    build: ({ a }, { m }) => G.maskedMean(G.mul(a, a), m),
  },
  // ---- symbolic shapes: a masked causal attention block on [B, T, D] ----
  'attention block with symbolic B, T': {
    params: { wq: [4, 4], wk: [4, 4], wv: [4, 4] },
    inputs: {
      x: { dtype: 'float64', shape: ['B', 'T', 4], dims: [2, 3, 4], data: [...Array(24).keys()].map((i) => Math.sin(i)) },
      // Additive causal bias with right padding in row 1 (key 2 masked); no query row is fully
      // masked (a -1e9 row defeats finite differences).
      bias: { dtype: 'float64', shape: ['B', 1, 'T', 'T'], dims: [2, 1, 3, 3], data: [0, -1e9, -1e9, 0, 0, -1e9, 0, 0, 0, 0, -1e9, -1e9, 0, 0, -1e9, 0, 0, -1e9] },
    },
    build: ({ wq, wk, wv }, { x, bias }) => {
      const heads = (t: G.Tensor) => G.transpose(G.reshape(t, ['B', 'T', 2, 2]), [0, 2, 1, 3]); // [B,H,T,2]
      const q = heads(G.linear(x, wq));
      const k = heads(G.linear(x, wk));
      const v = heads(G.linear(x, wv));
      const scores = G.add(G.mul(G.matmul(q, G.transpose(k)), 1 / Math.sqrt(2)), bias);
      const o = G.matmul(G.softmax(scores), v);
      return G.reduceMean(G.reshape(G.transpose(o, [0, 2, 1, 3]), [0, 0, -1]), [0, 1]);
    },
  },
};

for (const [name, c] of Object.entries(cases)) {
  test(`grad FD: ${name}`, async () => {
    await checkGrad(name, c);
  });
}
