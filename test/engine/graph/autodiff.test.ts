/** Autodiff behaviour beyond single-op rules: pruning, frozen params, zeros, errors, a tiny model. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as G from '../../../src/engine/graph/index.js';
import { Session } from '../../../src/engine/runtime/index.js';
import { checkGrad } from './fd.js';

test('only the path from wrt to the loss is differentiated (LoRA on a frozen weight)', () => {
  const g = new G.Graph('lora');
  const x = g.input('x', 'float32', ['B', 'T', 8]);
  const w = g.param('w', [8, 8], { trainable: false });
  const a = g.param('lora_A', [2, 8]);
  const b = g.param('lora_B', [8, 2]);
  const w2 = g.param('w2', [8, 8], { trainable: false });
  const h = G.add(G.linear(x, w), G.linear(G.linear(x, a), b));
  const loss = G.reduceSum(G.linear(G.tanh(h), w2), [0, 1, 2]);
  g.output('loss', loss);
  const forwardOps = G.compile(g).nodeCount;
  const [da, db] = G.grad(loss); // default: trainable params only
  g.output('dA', da);
  g.output('dB', db);
  const compiled = G.compile(g);
  const gemms = compiled.model.graph!.node!.filter((n) => n.opType === 'Gemm');
  assert.equal(gemms.length, 2, 'one weight-gradient product per LoRA factor, none for the frozen weights');
  assert.ok(compiled.nodeCount < forwardOps + 30, `backward adds ${compiled.nodeCount - forwardOps} nodes`);
  assert.deepEqual(compiled.fedParams.sort(), ['lora_A', 'lora_B', 'w', 'w2']);
});

test('a tensor the loss does not depend on gets zeros; integer and foreign tensors are refused', () => {
  const g = new G.Graph('zeros');
  const a = g.param('a', [3]);
  const unused = g.param('unused', [2, 2]);
  const ids = g.input('ids', 'int64', [3]);
  const loss = G.reduceSum(G.mul(a, a), [0]);
  const [, dUnused] = G.grad(loss, [a, unused]);
  assert.deepEqual(dUnused.shape, [2, 2]);
  assert.throws(() => G.grad(loss, [ids]), /cannot differentiate with respect to .*int64/);
  const other = new G.Graph('other').param('a', [3]);
  assert.throws(() => G.grad(loss, [other]), /from another graph/);
});

test('an op without a gradient rule on the path is an error naming it', () => {
  const g = new G.Graph('norule');
  const Frozen: G.OpDef = { type: 'Frozen', shape: ([x]) => [{ dtype: x.dtype, shape: [...x.shape] }], onnx: (c, i, o) => c.emit('Identity', i, o), inferenceOnly: true };
  const a = g.param('a', [3]);
  const loss = G.reduceSum(G.apply1(Frozen, [G.exp(a)], {}), [0]);
  assert.throws(() => G.grad(loss, [a]), /op Frozen has no gradient rule \(inference-only\)/);
});

test('FD: a tiny decoder block with tied embeddings, RMSNorm, SwiGLU and masked cross-entropy', async () => {
  const V = 7;
  const D = 4;
  await checkGrad('tiny block', {
    dtype: 'float64',
    params: { emb: [V, D], norm: [D], gate: [6, D], up: [6, D], down: [D, 6] },
    inputs: {
      ids: { dtype: 'int64', shape: ['B', 'T'], dims: [2, 3], data: [1, 5, 2, 2, 6, 0] },
      targets: { dtype: 'int64', shape: ['B', 'T'], dims: [2, 3], data: [5, 2, 3, 6, 0, 1] },
      weights: { dtype: 'float64', shape: ['B', 'T'], dims: [2, 3], data: [1, 1, 0, 1, 1, 1] },
    },
    build: (p, { ids, targets, weights }) => {
      let x = G.gather(p.emb, ids);
      const h = G.rmsNorm(x, p.norm, 1e-5, { fused: false });
      x = G.add(x, G.linear(G.mul(G.silu(G.linear(h, p.gate)), G.linear(h, p.up)), p.down));
      const logits = G.linear(x, p.emb); // tied: the embedding's gradient sums a scatter and a product
      return G.reshape(G.div(G.reduceSum(G.mul(G.crossEntropy(logits, targets), weights), [0, 1]), G.reduceSum(weights, [0, 1])), [1]);
    },
  });
});

test('checkpoints: recomputed backward gives the same gradients, with forward values recomputed per segment', async () => {
  const build = (checkpointed: boolean) => {
    const g = new G.Graph(checkpointed ? 'ckpt' : 'plain');
    const x0 = g.input('x', 'float64', ['B', 4]);
    let x = x0;
    const boundaries: G.Tensor[] = [];
    const params: G.Tensor[] = [];
    for (let l = 0; l < 3; l++) {
      const w1 = g.param(`w1_${l}`, [6, 4], { dtype: 'float64' });
      const w2 = g.param(`w2_${l}`, [4, 6], { dtype: 'float64' });
      const n = g.param(`n_${l}`, [4], { dtype: 'float64' });
      params.push(w1, w2, n);
      const h = G.rmsNorm(x, n, 1e-6, { fused: false });
      x = G.add(x, G.linear(G.mul(G.softmax(G.linear(h, w1)), G.tanh(G.linear(h, w1))), w2));
      boundaries.push(x);
    }
    const loss = G.reduceSum(G.mul(x, x), [0, 1]);
    g.output('loss', loss);
    const grads = G.grad(loss, params, checkpointed ? { checkpoints: boundaries } : undefined);
    grads.forEach((d, i) => g.output(`d${i}`, d));
    return { g, params };
  };
  const plain = build(false);
  const ckpt = build(true);
  const weights = new Map(plain.params.map((p, i) => [p.name!, Float64Array.from({ length: (p.shape as number[]).reduce((a, b) => a * b, 1) }, (_, k) => Math.sin(k * 0.7 + i))]));
  const x = { data: Float64Array.from({ length: 12 }, (_, k) => Math.cos(k)), dims: [3, 4] };
  const [a, b] = await Promise.all([plain, ckpt].map(async ({ g }) => (await Session.create(g, { weights, threads: 1 })).run({ x })));
  for (let i = 0; i < 9; i++) {
    const da = a[`d${i}`].data as Float64Array;
    const db = b[`d${i}`].data as Float64Array;
    da.forEach((v, k) => assert.ok(Math.abs(v - db[k]) <= 1e-12 * (1 + Math.abs(v)), `d${i}[${k}]: ${v} vs ${db[k]}`));
  }
  const ops = (g: G.Graph) => G.compile(g, { weights }).model.graph!.node!.map((n) => n.opType as string);
  const count = (list: string[], op: string) => list.filter((o) => o === op).length;
  assert.ok(count(ops(ckpt.g), 'Softmax') > count(ops(plain.g), 'Softmax'), 'softmax is recomputed in the backward');
  assert.ok(count(ops(ckpt.g), 'Size') >= 2, 'recomputation waits for the gradient (barriers on the checkpoints)');
});
