/**
 * The trait-space analysis on known answers: the eigen-decomposition against a hand-computed case and
 * an independent power iteration, PCA of a hand-computed matrix, planted rank-1 and rank-2 shift
 * matrices recovered (loadings, variance, parallel-analysis dimension, stability), and the shift
 * matrix read from an eval summary.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRng, type Rng } from '../../src/evals/stats.js';
import { evalSummarySchema } from '../../src/evals/summary.js';
import { axisAlignment, congruence, pca, shiftMatrix, symmetricEigen, traitSpace, type ShiftMatrix } from '../../src/evals/trait-space.js';

const close = (a: number, b: number, tol: number, what = '') => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} != ${b} (±${tol})`);
const gauss = (rng: Rng) => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
const unit = (v: number[]) => {
  const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return v.map((x) => x / n);
};

test('eigen-decomposition of a hand-computed 2x2 case', () => {
  const { values, vectors } = symmetricEigen([
    [2, 1],
    [1, 2],
  ]);
  close(values[0], 3, 1e-12);
  close(values[1], 1, 1e-12);
  close(Math.abs(vectors[0][0]), Math.SQRT1_2, 1e-12);
  close(vectors[0][0] * vectors[0][1], 0.5, 1e-12, 'first eigenvector along (1, 1)');
  close(vectors[1][0] * vectors[1][1], -0.5, 1e-12, 'second along (1, -1)');
});

/** Reference: power iteration with deflation, written independently of the Jacobi code. */
function powerEigen(m: number[][], k: number): { values: number[]; vectors: number[][] } {
  let a = m.map((r) => [...r]);
  const values: number[] = [];
  const vectors: number[][] = [];
  for (let c = 0; c < k; c++) {
    let v = a.map((_, i) => 1 + i * 0.1);
    let lambda = 0;
    for (let it = 0; it < 5000; it++) {
      const w = a.map((row) => row.reduce((s, x, j) => s + x * v[j], 0));
      lambda = Math.sqrt(w.reduce((s, x) => s + x * x, 0));
      v = w.map((x) => x / lambda);
    }
    values.push(lambda);
    vectors.push(v);
    a = a.map((row, i) => row.map((x, j) => x - lambda * v[i] * v[j]));
  }
  return { values, vectors };
}

test('eigen-decomposition agrees with power iteration on a random positive-definite matrix', () => {
  const rng = createRng(11);
  const b = Array.from({ length: 6 }, () => Array.from({ length: 6 }, () => gauss(rng)));
  // B B^T + diag: symmetric positive definite with distinct eigenvalues.
  const m = b.map((r, i) => b.map((s, j) => r.reduce((acc, x, k) => acc + x * s[k], 0) + (i === j ? 0.5 : 0)));
  const jacobi = symmetricEigen(m);
  const ref = powerEigen(m, 3);
  for (let c = 0; c < 3; c++) {
    close(jacobi.values[c], ref.values[c], 1e-8 * ref.values[0], `eigenvalue ${c}`);
    close(Math.abs(congruence(jacobi.vectors[c], ref.vectors[c])), 1, 1e-8, `eigenvector ${c}`);
  }
  // A v = lambda v for every pair, and the trace is kept.
  jacobi.vectors.forEach((v, c) => m.forEach((row, i) => close(row.reduce((s, x, j) => s + x * v[j], 0), jacobi.values[c] * v[i], 1e-9)));
  close(jacobi.values.reduce((s, x) => s + x, 0), m.reduce((s, r, i) => s + r[i], 0), 1e-9, 'trace');
});

test('PCA of a hand-computed matrix: variances, shares, signed loadings and scores', () => {
  // Column variances (n - 1 = 3): 2/3 and 1/6, no covariance.
  const r = pca(
    [
      [1, 0],
      [-1, 0],
      [0, 0.5],
      [0, -0.5],
    ],
    true,
  );
  close(r.variances[0], 2 / 3, 1e-12);
  close(r.variances[1], 1 / 6, 1e-12);
  close(r.explained[0], 0.8, 1e-12);
  assert.deepEqual(r.loadings.map((l) => l.map((x) => Math.round(x * 1e9) / 1e9)), [
    [1, 0],
    [0, 1],
  ]);
  assert.deepEqual(r.scores.map((s) => s.map((x) => Math.round(x * 1e9) / 1e9)), [
    [1, 0],
    [-1, 0],
    [0, 0.5],
    [0, -0.5],
  ]);
  // Uncentred: second moments around the origin (the base), n in the denominator.
  const around = pca(
    [
      [2, 0],
      [2, 0],
      [2, 0],
    ],
    false,
  );
  close(around.variances[0], 4, 1e-12);
  close(around.explained[0], 1, 1e-12);
});

function planted(n: number, components: { direction: number[]; scale: number }[], noise: number, seed: number): ShiftMatrix {
  const rng = createRng(seed);
  const p = components[0].direction.length;
  const values = Array.from({ length: n }, () => {
    const row = Array.from({ length: p }, () => noise * gauss(rng));
    for (const c of components) {
      const u = c.scale * gauss(rng);
      c.direction.forEach((d, j) => (row[j] += u * d));
    }
    return row;
  });
  return {
    rows: values.map((_, i) => `cell${i}`),
    columns: Array.from({ length: p }, (_, j) => ({ name: `t${j}`, range: 1 })),
    values,
    se: values.map((r) => r.map(() => noise)),
    droppedColumns: [],
  };
}

test('a planted rank-1 shift matrix: one stable component along the planted direction', () => {
  const v = unit([3, 2, -1, 0.5, 0, 1, -2, 1]);
  const space = traitSpace(planted(14, [{ direction: v, scale: 1 }], 0.02, 1), { resamples: 300, seed: 5 })!;
  const pc1 = space.components[0];
  close(Math.abs(congruence(pc1.loadings.map((l) => l.value), v)), 1, 0.005, 'PC1 along v');
  assert.ok(pc1.explained.value > 0.97, `explained ${pc1.explained.value}`);
  assert.ok(pc1.explained.low <= pc1.explained.value && pc1.explained.value <= pc1.explained.high);
  assert.equal(space.dimensions, 1);
  assert.ok(pc1.stability.cells!.low > 0.98, `cells stability ${JSON.stringify(pc1.stability.cells)}`);
  assert.ok(pc1.stability.measurement!.low > 0.98);
  // The noise components are not stable.
  assert.ok(space.components[1].stability.cells!.value < 0.9, `PC2 stability ${JSON.stringify(space.components[1].stability.cells)}`);
  assert.equal(space.scores.length, 14);
});

test('a planted rank-2 shift matrix: two components spanning the planted plane, the stronger first', () => {
  const v1 = unit([1, 1, 1, 1, 0, 0, 0, 0]);
  const v2 = unit([0, 0, 0, 0, 1, -1, 1, -1]);
  const space = traitSpace(planted(30, [{ direction: v1, scale: 3 }, { direction: v2, scale: 1 }], 0.02, 2), { resamples: 300, seed: 6 })!;
  assert.equal(space.dimensions, 2);
  const [a, b] = space.components.map((c) => c.loadings.map((l) => l.value));
  close(Math.abs(congruence(a, v1)), 1, 0.01, 'PC1 = the stronger direction');
  close(Math.abs(congruence(b, v2)), 1, 0.01, 'PC2 = the weaker');
  // Both planted directions lie in the span of PC1 and PC2.
  for (const v of [v1, v2]) close(Math.hypot(congruence(v, a), congruence(v, b)), 1, 0.005);
  const shares = space.components.map((c) => c.explained.value);
  close(shares[0] / shares[1], 9, 3.5, 'variance ratio ~ scale ratio squared');
});

test('independent noise: no retained structure beyond chance; large measurement error makes loadings unstable', () => {
  const rng = createRng(3);
  const values = Array.from({ length: 12 }, () => Array.from({ length: 6 }, () => gauss(rng)));
  const noise: ShiftMatrix = { rows: values.map((_, i) => `c${i}`), columns: values[0].map((_, j) => ({ name: `t${j}`, range: 1 })), values, se: values.map((r) => r.map(() => 0.01)), droppedColumns: [] };
  const space = traitSpace(noise, { resamples: 300, seed: 1 })!;
  assert.ok(space.dimensions <= 1, `dimensions ${space.dimensions}`);
  assert.ok(space.components[0].nullExplained > 1 / 6, 'the permutation null of PC1 exceeds an even share');
  const v = unit([1, 2, 3, 0, -1, 1]);
  const sharp = planted(12, [{ direction: v, scale: 1 }], 0.05, 4);
  const blurred = { ...sharp, se: sharp.se.map((r) => r.map(() => 2)) };
  const s1 = traitSpace(sharp, { resamples: 200 })!.components[0].stability.measurement!;
  const s2 = traitSpace(blurred, { resamples: 200 })!.components[0].stability.measurement!;
  assert.ok(s2.value < s1.value - 0.1, `measurement stability ${s1.value} vs ${s2.value}`);
  assert.equal(traitSpace({ ...sharp, rows: sharp.rows.slice(0, 2), values: sharp.values.slice(0, 2), se: sharp.se.slice(0, 2) }), null, 'under 3 cells');
});

test('axis alignment: loadings through orthonormal trait vectors onto the axis they build', () => {
  const basis = [
    [1, 0, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 1, 0],
  ];
  const aligned = axisAlignment([0.6, 0.8, 0], basis.map((v) => v.map((x) => x * 5)), [0.6, 0.8, 0, 0]);
  close(aligned.cosine, 1, 1e-12);
  assert.ok(aligned.randomBaseline > 0.2 && aligned.randomBaseline < 0.9, `random ${aligned.randomBaseline}`);
  close(axisAlignment([0, 0, 1], basis, [0.6, 0.8, 0, 0]).cosine, 0, 1e-12, 'orthogonal');
});

test('the shift matrix of a summary: paired differences from the base, on one footing, complete columns only', () => {
  const metric = (difference: number | null, half: number) => ({
    value: 50,
    n: 10,
    ci: null,
    comparisons: difference === null ? [] : [{ against: 'base', difference, ci: half < 0 ? null : { low: difference - half, high: difference + half }, n: 10, paired: true }],
  });
  const summary = evalSummarySchema.parse({
    version: 1,
    experiment: 'x',
    createdAt: 'now',
    seed: 0,
    confidence: 0.95,
    baseline: 'base',
    prompted: 'prompted',
    subjects: ['base', 'prompted', 'cell.sft.seed-1', 'steered'].map((name) => ({ name, model: 'm', persona: name === 'base' ? null : 'P', hasSystemPrompt: false })),
    judges: [],
    evals: [
      {
        eval: 'traitExpression',
        status: 'ok',
        subjects: {
          base: { 'expression.P.wit': metric(null, 0), 'expression.P.calm': metric(null, 0) },
          prompted: { 'expression.P.wit': metric(40, 9.8), 'expression.P.calm': metric(-20, 9.8), coherence: metric(1, 1) },
          'cell.sft.seed-1': { 'expression.P.wit': metric(30, 9.8), 'expression.P.calm': metric(-10, 9.8) },
          steered: { 'expression.P.wit': metric(10, 9.8) },
        },
      },
      {
        eval: 'psychometrics',
        status: 'ok',
        subjects: Object.fromEntries(['prompted', 'cell.sft.seed-1', 'steered'].map((s, i) => [s, { openness: metric(i + 1, 0.392), neuroticism: metric(-1, i === 2 ? -1 : 0.392) }])),
      },
    ],
  });
  const m = shiftMatrix(summary)!;
  assert.deepEqual(m.rows, ['prompted', 'cell.sft.seed-1', 'steered']);
  assert.deepEqual(m.columns.map((c) => c.name), ['expression.P.wit', 'ipip.openness', 'ipip.neuroticism']);
  assert.deepEqual(m.droppedColumns, ['expression.P.calm']);
  assert.equal(m.seImputed, 1, 'the steered neuroticism shift has no interval');
  close(m.se[2][2], 0.05, 1e-6, 'it takes its column\'s median standard error');
  assert.deepEqual(m.values[0], [0.4, 0.25, -0.25]);
  close(m.se[0][0], 0.05, 1e-6, 'se from the 95% half-width 9.8 on the 0-100 scale');
  close(m.se[0][1], 0.05, 1e-6, 'IPIP on its 4-point range');
  const space = traitSpace(m, { resamples: 100 })!;
  assert.equal(space.cells, 3);
  assert.equal(space.components.length, 2, 'centred 3 rows: rank 2 at most');
});
