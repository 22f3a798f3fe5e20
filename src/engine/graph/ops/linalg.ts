/** Matrix products. */
import { broadcastShapes, dimEq } from '../dims.js';
import { type OpDef, type Tensor, apply1 } from '../ir.js';
import { add, sumToShape } from './elementwise.js';
import { reshape, transpose } from './shape.js';
import { checkSameDtype, shapeError } from './util.js';

/** Batched matrix product a[..., M, K] @ b[..., K, N] with broadcast batch dims (ranks >= 2). */
const MatMul: OpDef = {
  type: 'MatMul',
  shape: ([a, b]) => {
    checkSameDtype('matmul', a, b);
    if (a.rank < 2 || b.rank < 2) throw shapeError('matmul', 'operands need rank >= 2 (unsqueeze vectors)', [a.shape, b.shape]);
    const [m, k] = a.shape.slice(-2);
    const [k2, n] = b.shape.slice(-2);
    if (!dimEq(k, k2) && typeof k === 'number' && typeof k2 === 'number') throw shapeError('matmul', 'inner dims differ', [a.shape, b.shape]);
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matmul');
    return [{ dtype: a.dtype, shape: [...batch, m, n] }];
  },
  onnx: (ctx, ins, outs) => ctx.emit('MatMul', ins, outs),
  grad: ([a, b], _o, [g]) => {
    const da = sumToShape(matmul(g!, transpose(b)), a.shape);
    // a weight shared over the batch: one [K, rows] x [rows, N] product instead of a batch of them
    const db =
      b.rank === 2 && a.rank > 2
        ? matmulTN(reshape(a, [-1, a.shape[a.rank - 1]]), reshape(g!, [-1, g!.shape[g!.rank - 1]]))
        : sumToShape(matmul(transpose(a), g!), b.shape);
    return [da, db];
  },
};
export const matmul = (a: Tensor, b: Tensor): Tensor => apply1(MatMul, [a, b], {});

/** a^T @ b for 2-D a[R, K], b[R, N] (Gemm transA=1): weight gradients summed over rows. */
const MatMulTN: OpDef = {
  type: 'MatMulTN',
  shape: ([a, b]) => {
    checkSameDtype('matmulTN', a, b);
    if (a.rank !== 2 || b.rank !== 2) throw shapeError('matmulTN', 'operands must be 2-D', [a.shape, b.shape]);
    return [{ dtype: a.dtype, shape: [a.shape[1], b.shape[1]] }];
  },
  onnx: (ctx, ins, outs) => ctx.emit('Gemm', ins, outs, { transA: { i: 1 } }),
  grad: ([a, b], _o, [g]) => [matmul(b, transpose(g!)), matmul(a, g!)],
};
export const matmulTN = (a: Tensor, b: Tensor): Tensor => apply1(MatMulTN, [a, b], {});

/**
 * x[..., K] @ w[N, K]^T (+ bias[N]): a Linear layer with the weight in checkpoint layout, lowered to
 * Transpose + MatMul so ORT picks the kernel: for an initializer it folds the transpose once and
 * prepacks a plain MatMul; for a fed weight it fuses both into FusedMatMul(transB), so the weight is
 * never copied per run (bench/engine-ops.ts measures the alternatives).
 */
const Linear: OpDef = {
  type: 'Linear',
  shape: ([x, w]) => {
    checkSameDtype('linear', x, w);
    if (w.rank !== 2 || !dimEq(x.shape[x.rank - 1], w.shape[1])) throw shapeError('linear', 'expected x[..., K] and w[N, K]', [x.shape, w.shape]);
    return [{ dtype: x.dtype, shape: [...x.shape.slice(0, -1), w.shape[0]] }];
  },
  onnx: (ctx, [x, w], [y], { inputs }) => {
    if (inputs[1].graph.hasBackward && inputs[1].dtype === 'float32') {
      // training: the backward multiplies by w itself (g @ w), so the forward uses w too (transB)
      // rather than a folded transposed copy: one copy of each weight, not two
      return ctx.emit('FusedMatMul', [x, w], [y], { transB: { i: 1 }, alpha: { f: 1 } }, 'com.microsoft');
    }
    const wt = ctx.fresh('wT');
    ctx.emit('Transpose', [w], [wt], { perm: { ints: [1, 0] } });
    ctx.emit('MatMul', [x, wt], [y]);
  },
  grad: ([x, w], _o, [g]) => {
    const n = w.shape[0];
    const k = w.shape[1];
    return [matmul(g!, w), matmulTN(reshape(g!, [-1, n]), reshape(x, [-1, k]))];
  },
};
export function linear(x: Tensor, w: Tensor, bias?: Tensor): Tensor {
  const y = apply1(Linear, [x, w], {});
  return bias ? add(y, bias) : y;
}

/**
 * A frozen Linear whose weight is stored in int8 twice, each copy quantized symmetrically along its
 * own output axis: wT [in, out] with scales [out] for the forward, w [out, in] with scales [in] for
 * the backward to x. Both products run as ORT's DynamicQuantizeMatMul (the activation or gradient
 * quantized to uint8 per tensor at run time; int8 GEMM). The weight gets no gradient.
 */
const QuantLinear: OpDef = {
  type: 'QuantLinear',
  shape: ([x, wT]) => {
    if (x.dtype !== 'float32' || wT.dtype !== 'int8' || wT.rank !== 2 || !dimEq(x.shape[x.rank - 1], wT.shape[0]))
      throw shapeError('quantLinear', 'expected float32 x[..., K] and int8 wT[K, N]', [x.shape, wT.shape]);
    return [{ dtype: 'float32', shape: [...x.shape.slice(0, -1), wT.shape[1]] }];
  },
  onnx: (ctx, [x, wT, scaleOut], [y]) => ctx.emit('DynamicQuantizeMatMul', [x, wT, scaleOut], [y], {}, 'com.microsoft'),
  grad: ([, , , w, scaleIn], _o, [g]) => [apply1(QuantMatMul, [g!, w, scaleIn], {}), null, null, null, null],
};
/** The backward's g @ w through the int8 copy w [out, in] with per-column scales [in]. */
const QuantMatMul: OpDef = {
  type: 'QuantMatMul',
  shape: ([g, w]) => [{ dtype: 'float32', shape: [...g.shape.slice(0, -1), w.shape[1]] }],
  onnx: (ctx, [g, w, scale], [y]) => ctx.emit('DynamicQuantizeMatMul', [g, w, scale], [y], {}, 'com.microsoft'),
};
export interface QuantWeight {
  wT: Tensor;
  scaleOut: Tensor;
  w: Tensor;
  scaleIn: Tensor;
}
export const quantLinear = (x: Tensor, q: QuantWeight): Tensor => apply1(QuantLinear, [x, q.wT, q.scaleOut, q.w, q.scaleIn], {});
