/** Compilation and sessions: weight placements, pruning, naming, errors. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as G from '../../../src/engine/graph/index.js';
import { Session } from '../../../src/engine/runtime/index.js';

function model() {
  const g = new G.Graph('m');
  const x = g.input('x', 'float32', ['B', 3]);
  const w = g.param('w', [2, 3]);
  const b = g.param('b', [2]);
  const y = G.linear(x, w, b);
  g.output('y', y);
  g.output('y_again', y);
  g.output('x_echo', x);
  g.output('sum', G.reduceSum(y, [0, 1]));
  return g;
}
const weights = new Map([
  ['w', Float32Array.from([1, 2, 3, 4, 5, 6])],
  ['b', Float32Array.from([0.5, -0.5])],
]);
const x = { data: Float32Array.from([1, 0, 0, 0, 1, 1]), dims: [2, 3] };

test('weights as initializers, feeds and external data give the same outputs', async () => {
  const results = [];
  for (const weightsAs of ['initializer', 'feed', 'external'] as const) {
    const s = await Session.create(model(), { weights, weightsAs, threads: 1 });
    assert.deepEqual(s.compiled.fedParams, weightsAs === 'feed' ? ['w', 'b'] : []);
    const out = await s.run({ x });
    results.push([...(out.y.data as Float32Array)]);
    assert.deepEqual([...(out.y_again.data as Float32Array)], [...(out.y.data as Float32Array)]);
    assert.deepEqual([...(out.x_echo.data as Float32Array)], [...x.data]);
    await s.release();
  }
  assert.deepEqual(results[0], [1.5, 3.5, 5.5, 10.5]);
  assert.deepEqual(results[1], results[0]);
  assert.deepEqual(results[2], results[0]);
});

test('params missing from weights are fed per run or with setWeights', async () => {
  const s = await Session.create(model(), { weights: new Map([['b', weights.get('b')!]]), threads: 1, outputs: ['sum'] });
  assert.deepEqual(s.missingParams, ['w']);
  await assert.rejects(s.run({ x }), /missing input 'w'/);
  const fed = await s.run({ x, w: { data: weights.get('w')!, dims: [2, 3] } });
  s.setWeights(new Map([['w', weights.get('w')!]]));
  assert.deepEqual(s.missingParams, []);
  const set = await s.run({ x });
  assert.equal(fed.sum.data[0], 21);
  assert.equal(set.sum.data[0], 21);
  await assert.rejects(s.run({ x, nope: x }), /unknown input 'nope'/);
});

test('outputs prune the graph; dead nodes are not emitted', () => {
  const g = model();
  const all = G.compile(g, { weights });
  const one = G.compile(g, { weights, outputs: ['x_echo'] });
  assert.ok(one.nodeCount < all.nodeCount);
  assert.equal(one.initializerBytes, 0, 'no weights needed for x_echo');
  assert.throws(() => G.compile(g, { outputs: ['nope'] }), /has no output 'nope'/);
});

test('bad weights, unresolvable dims and oversized inline models are refused clearly', () => {
  assert.throws(() => G.compile(model(), { weights: new Map([['w', new Float32Array(5)]]) }), /weight w: 20 bytes, expected float32\[2, 3\] \(24 bytes\)/);
  const g = new G.Graph('dims');
  const a = g.input('a', 'float32', [6]);
  g.output('r', G.reshape(a, ['Q', 2]));
  assert.throws(() => G.compile(g), /dim 'Q' .* is not a dim of any graph input/);
  const compiled = G.compile(model(), { weights });
  assert.throws(() => G.toBytes({ ...compiled, initializerBytes: 3 * 2 ** 30 }), /exceed protobuf's 2 GB limit; write with external data/);
});

test('symbolic output dims are declared as dim_param', () => {
  const c = G.compile(model(), { weights });
  const y = c.model.graph!.output!.find((o) => o.name === 'y')!;
  assert.deepEqual(y.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || d.dimValue), ['B', 2]);
});

test('the example of docs/engine-graph.md runs: loss and the gradient of a fed param', async () => {
  const g = new G.Graph('tiny');
  const x = g.input('x', 'float32', ['B', 'T', 8]);
  const targets = g.input('targets', 'int64', ['B', 'T']);
  const mask = g.input('mask', 'float32', ['B', 'T']);
  const norm = g.param('model.norm.weight', [8], { trainable: false });
  const head = g.param('lm_head.weight', [16, 8]);
  const logits = G.linear(G.rmsNorm(x, norm, 1e-5), head);
  const loss = G.div(G.reduceSum(G.mul(G.crossEntropy(logits, targets), mask), [0, 1]), G.reduceSum(mask, [0, 1]));
  g.output('loss', loss);
  const [dHead] = G.grad(loss, [head]);
  g.output('grad.lm_head.weight', dHead);
  const session = await Session.create(g, { weights: new Map([['model.norm.weight', new Float32Array(8).fill(1)]]), threads: 1 });
  const out = await session.run(
    {
      x: { data: Float32Array.from({ length: 80 }, (_, i) => Math.sin(i)), dims: [2, 5, 8] },
      targets: { data: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], dims: [2, 5] },
      mask: { data: [1, 1, 1, 1, 0, 1, 1, 1, 0, 0], dims: [2, 5] },
      'lm_head.weight': { data: new Float32Array(128), dims: [16, 8] },
    },
    ['loss', 'grad.lm_head.weight'],
  );
  // zero head: uniform logits, so the loss is log(16); the rows of classes that are never targets are
  // equal (softmax 1/16 each), and the rows sum to zero (softmax minus one-hot sums to 0 per position)
  assert.ok(Math.abs((out.loss.data[0] as number) - Math.log(16)) < 1e-5);
  assert.deepEqual(out['grad.lm_head.weight'].dims, [16, 8]);
  const d = out['grad.lm_head.weight'].data as Float32Array;
  for (let c = 12; c < 16; c++) for (let k = 0; k < 8; k++) assert.ok(Math.abs(d[c * 8 + k] - d[11 * 8 + k]) < 1e-6);
  for (let k = 0; k < 8; k++) assert.ok(Math.abs([...Array(16).keys()].reduce((s, c) => s + d[c * 8 + k], 0)) < 1e-5);
});
