import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { AdamW, clipGradNorm, GradAccumulator, learningRate, warmupSteps } from '../../src/train/optim.js';
import { Rng } from '../../src/train/rng.js';

interface Run {
  clip: number | null;
  lrs: number[];
  init: number[][];
  grads: number[][][];
  norms: number[];
  final: number[][];
  exp_avg: number[][];
  exp_avg_sq: number[][];
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/train/optim.json', import.meta.url), 'utf8')) as {
  betas: [number, number];
  eps: number;
  weight_decay: number;
  runs: Run[];
};

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const tol = rel * Math.max(1e-3, Math.abs(expected[i]));
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

describe('AdamW and clipping match torch.optim.AdamW / clip_grad_norm_', () => {
  for (const run of fixture.runs) {
    it(`four steps ${run.clip ? `with clipping at ${run.clip}` : 'without clipping'}`, () => {
      const params = run.init.map((values, i) => ({ name: `w${i}`, shape: [values.length], data: Float32Array.from(values) }));
      const opt = new AdamW(params, { betas: fixture.betas, eps: fixture.eps, weightDecay: fixture.weight_decay });
      run.lrs.forEach((lr, step) => {
        const grads = run.grads[step].map((g) => Float32Array.from(g));
        const norm = clipGradNorm(grads, run.clip ?? 0);
        assert.ok(Math.abs(norm - run.norms[step]) <= 1e-5 * run.norms[step], `norm at step ${step}`);
        opt.update(grads, lr);
      });
      params.forEach((p, i) => assertClose(p.data, run.final[i], 1e-5, `final w${i}`));
      opt.m.forEach((m, i) => assertClose(m, run.exp_avg[i], 1e-5, `exp_avg w${i}`));
      opt.v.forEach((v, i) => assertClose(v, run.exp_avg_sq[i], 1e-5, `exp_avg_sq w${i}`));
      assert.equal(opt.step, 4);
    });
  }

  it('saved and restored state continues identically', () => {
    const make = () => [{ name: 'w', shape: [4], data: Float32Array.from([1, -2, 3, -4]) }];
    const grads = (k: number) => [Float32Array.from([0.1 * k, -0.2, 0.3 * k, 0.4])];
    const a = new AdamW(make(), { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 });
    for (let k = 1; k <= 4; k++) a.update(grads(k), 1e-2);
    const b = new AdamW(make(), { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 });
    for (let k = 1; k <= 2; k++) b.update(grads(k), 1e-2);
    const saved = { step: b.step, m: b.m.map((m) => m.slice()), v: b.v.map((v) => v.slice()) };
    const c = new AdamW([{ name: 'w', shape: [4], data: b.params[0].data.slice() }], b.options);
    c.load(saved);
    for (let k = 3; k <= 4; k++) c.update(grads(k), 1e-2);
    assert.deepEqual([...c.params[0].data], [...a.params[0].data]);
  });

  it('skips weight decay on parameters marked decay: false', () => {
    const p = { name: 'norm.weight', shape: [1], data: Float32Array.from([2]), decay: false };
    const opt = new AdamW([p], { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.5 });
    opt.update([Float32Array.from([0])], 0.1);
    assert.equal(p.data[0], 2);
  });
});

describe('gradient accumulation', () => {
  it('k micro-batches of summed losses equal one batch k times larger', () => {
    const acc = new GradAccumulator([2]);
    acc.add([Float32Array.from([3, 6])], 9, 3); // 3 tokens
    acc.add([Float32Array.from([1, 2])], 1, 1); // 1 token
    const { grads, loss } = acc.mean();
    assert.deepEqual([...grads[0]], [1, 2]);
    assert.equal(loss, 2.5);
    acc.reset();
    assert.deepEqual([...acc.sums[0]], [0, 0]);
    assert.equal(acc.normaliser, 0);
  });
});

describe('learning-rate schedules (Hugging Face LambdaLR semantics)', () => {
  const base = { lr: 1, totalSteps: 10, warmupSteps: 2 };
  it('warmup starts at 0 and rises linearly', () => {
    assert.equal(learningRate(0, { ...base, kind: 'constant' }), 0);
    assert.equal(learningRate(1, { ...base, kind: 'constant' }), 0.5);
    assert.equal(learningRate(2, { ...base, kind: 'constant' }), 1);
    assert.equal(learningRate(9, { ...base, kind: 'constant' }), 1);
  });
  it('linear decays to 0 at the last step', () => {
    assert.equal(learningRate(2, { ...base, kind: 'linear' }), 1);
    assert.equal(learningRate(6, { ...base, kind: 'linear' }), 0.5);
    assert.equal(learningRate(10, { ...base, kind: 'linear' }), 0);
  });
  it('cosine follows half a cosine, with an optional floor', () => {
    assert.ok(Math.abs(learningRate(6, { ...base, kind: 'cosine' }) - 0.5) < 1e-12);
    assert.ok(Math.abs(learningRate(4, { ...base, kind: 'cosine' }) - 0.5 * (1 + Math.cos(Math.PI / 4))) < 1e-12);
    assert.ok(Math.abs(learningRate(10, { ...base, kind: 'cosine', minLrRatio: 0.1 }) - 0.1) < 1e-12);
  });
  it('warmup from a ratio rounds up', () => {
    assert.equal(warmupSteps(95, undefined, 0.1), 10);
    assert.equal(warmupSteps(95, 3, 0.1), 3);
    assert.equal(warmupSteps(95), 0);
  });
});

describe('seeded RNG', () => {
  it('is reproducible from a seed and from a saved state', () => {
    const a = Rng.seeded(7);
    const b = Rng.seeded(7);
    assert.deepEqual([a.uniform(), a.int(0, 100), a.uniform()], [b.uniform(), b.int(0, 100), b.uniform()]);
    const state = a.state();
    const next = [a.uniform(), a.uniform()];
    const c = Rng.fromState(JSON.parse(JSON.stringify(state)) as number[]);
    assert.deepEqual([c.uniform(), c.uniform()], next);
    assert.notEqual(Rng.seeded(8).uniform(), Rng.seeded(7).uniform());
  });
  it('shuffles to a permutation and forks independent streams', () => {
    const rng = Rng.seeded(1);
    const items = rng.shuffle([...Array(20).keys()]);
    assert.deepEqual([...items].sort((x, y) => x - y), [...Array(20).keys()]);
    assert.notDeepEqual(items, [...Array(20).keys()]);
    const f1 = rng.fork();
    const f2 = rng.fork();
    assert.notEqual(f1.uniform(), f2.uniform());
  });
  it('dropout masks keep 1-p of units, scaled by 1/(1-p)', () => {
    const mask = Rng.seeded(3).dropoutMask(20000, 0.25);
    const kept = mask.filter((x) => x > 0);
    assert.ok(Math.abs(kept.length / 20000 - 0.75) < 0.02);
    assert.ok(Math.abs(kept[0] - 1 / 0.75) < 1e-6);
  });
});
