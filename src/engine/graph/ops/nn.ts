/** Neural-network ops: softmax family, fused cross-entropy, RMSNorm. */
import { type Lowering, type OpDef, type Tensor, apply, apply1 } from '../ir.js';
import { add, div, exp, maximum, mul, sub, sumToShape } from './elementwise.js';
import { reduceMean, reduceSum } from './reduce.js';
import { unsqueeze } from './shape.js';
import { checkDtype, checkSameDtype, normAxis, same, shapeError } from './util.js';

// d softmax = y * (g - sum(g * y))
const Softmax: OpDef<{ axis: number }> = {
  type: 'Softmax',
  shape: ([x]) => [same(x)],
  onnx: (ctx, ins, outs, { attrs }) => ctx.emit('Softmax', ins, outs, { axis: { i: attrs.axis } }),
  grad: (_i, [y], [g], { axis }) => [mul(y, sub(g!, reduceSum(mul(g!, y), [axis], true)))],
};
export const softmax = (x: Tensor, axis = -1): Tensor => apply1(Softmax, [x], { axis: normAxis(axis, x.rank, 'softmax') });

// d logsoftmax = g - exp(y) * sum(g)
const LogSoftmax: OpDef<{ axis: number }> = {
  type: 'LogSoftmax',
  shape: ([x]) => [same(x)],
  onnx: (ctx, ins, outs, { attrs }) => ctx.emit('LogSoftmax', ins, outs, { axis: { i: attrs.axis } }),
  grad: (_i, [y], [g], { axis }) => [sub(g!, mul(exp(y), reduceSum(g!, [axis], true)))],
};
export const logSoftmax = (x: Tensor, axis = -1): Tensor => apply1(LogSoftmax, [x], { axis: normAxis(axis, x.rank, 'logSoftmax') });

/**
 * Per-position cross-entropy  -log_softmax(logits)[target]  over the last axis, fused: the
 * gradient softmax(logits) - onehot(target), times the upstream gradient, is built in one go
 * (Softmax, Mul, ScatterElements add), so no one-hot is ever materialized and the log-softmax is
 * a temporary of the forward. logits[..., V], targets int64[...] (valid indices; mask ignored
 * positions by multiplying the result). The token log-probability is its negative. For a vocabulary
 * head on many positions prefer linearCrossEntropy (row chunks, far less memory).
 */
const CrossEntropy: OpDef = {
  type: 'CrossEntropy',
  shape: ([logits, targets]) => {
    checkDtype('crossEntropy', targets, ['int64', 'int32']);
    if (targets.rank !== logits.rank - 1) throw shapeError('crossEntropy', 'targets must be logits without the last axis', [logits.shape, targets.shape]);
    return [{ dtype: logits.dtype, shape: [...targets.shape] }];
  },
  // LogSoftmax + GatherElements: ~3x faster than ReduceLogSumExp on ORT's CPU EP
  onnx: (ctx, [logits, targets], [loss], node) => emitNll(ctx, logits, targets, loss, node.inputs[0].rank - 1),
  grad: ([logits, targets], _o, [g]) => [apply1(CrossEntropyGrad, [logits, targets, g!], {}), null],
};
export const crossEntropy = (logits: Tensor, targets: Tensor): Tensor => apply1(CrossEntropy, [logits, targets], {});

function emitNll(ctx: Lowering, logits: string, targets: string, loss: string, axis: number, logp = ctx.fresh('logp')): void {
  const [col, picked, pickedFlat] = [ctx.fresh('target_col'), ctx.fresh('picked'), ctx.fresh('picked_flat')];
  const last = ctx.constInt64([-1]);
  ctx.emit('LogSoftmax', [logits], [logp], { axis: { i: axis } });
  ctx.emit('Unsqueeze', [targets, last], [col]);
  ctx.emit('GatherElements', [logp, col], [picked], { axis: { i: axis } });
  ctx.emit('Squeeze', [picked, last], [pickedFlat]);
  ctx.emit('Neg', [pickedFlat], [loss]);
}

/** d logits = (p - onehot(targets)) * g from the softmax p, as Mul and ScatterElements(add). */
function emitNllGrad(ctx: Lowering, p: string, targets: string, g: string, out: string, axis: number): void {
  const last = ctx.constInt64([-1]);
  const [gCol, scaled, col, minusG] = ['g_col', 'scaled', 'target_col', 'minus_g'].map((h) => ctx.fresh(h));
  ctx.emit('Unsqueeze', [g, last], [gCol]);
  ctx.emit('Mul', [p, gCol], [scaled]);
  ctx.emit('Unsqueeze', [targets, last], [col]);
  ctx.emit('Neg', [gCol], [minusG]);
  ctx.emit('ScatterElements', [scaled, col, minusG], [out], { axis: { i: axis }, reduction: { s: 'add' } });
}

const CrossEntropyGrad: OpDef = {
  type: 'CrossEntropyGrad',
  shape: ([logits]) => [same(logits)],
  onnx: (ctx, [logits, targets, g], [dlogits], node) => {
    const axis = node.inputs[0].rank - 1;
    const p = ctx.fresh('softmax');
    ctx.emit('Softmax', [logits], [p], { axis: { i: axis } });
    emitNllGrad(ctx, p, targets, g, dlogits, axis);
  },
};

/**
 * Row chunks [c*size, (c+1)*size) of an [N, ...] tensor for c < chunks, size = ceil(N / chunks),
 * computed at run time (Slice clamps, so trailing chunks may be empty). `after` names a value the
 * slice must wait for: ORT orders independent nodes freely, and chunk temporaries only stay small
 * if chunks run one after another.
 */
function emitRowChunks(ctx: Lowering, ref: string, chunks: number): (x: string, c: number, after?: string) => string {
  const n = ctx.fresh('rows');
  const padded = ctx.fresh('rows_padded');
  const size = ctx.fresh('chunk_rows');
  ctx.emit('Shape', [ref], [n], { start: { i: 0 }, end: { i: 1 } });
  ctx.emit('Add', [n, ctx.constInt64([chunks - 1])], [padded]);
  ctx.emit('Div', [padded, ctx.constInt64([chunks])], [size]);
  const bounds = [...Array(chunks + 1).keys()].map((c) => {
    const b = ctx.fresh('chunk_bound');
    ctx.emit('Mul', [size, ctx.constInt64([c])], [b]);
    return b;
  });
  return (x, c, after) => {
    const out = ctx.fresh('chunk');
    let start = bounds[c];
    if (after) {
      // start + 0 * rows(after): a data dependency on `after` that no optimizer can fold away
      const [rows, zero, sequenced] = [ctx.fresh('after_rows'), ctx.fresh('zero'), ctx.fresh('start')];
      ctx.emit('Shape', [after], [rows], { start: { i: 0 }, end: { i: 1 } });
      ctx.emit('Mul', [rows, ctx.constInt64([0])], [zero]);
      ctx.emit('Add', [start, zero], [sequenced]);
      start = sequenced;
    }
    ctx.emit('Slice', [x, start, bounds[c + 1], ctx.constInt64([0])], [out]);
    return out;
  };
}

type LinearCeAttrs = { chunks: number; frozenHead: boolean };

/**
 * Cross-entropy of a vocabulary head, logits = h @ w^T, per row: h[N, K], w[V, K] (checkpoint
 * layout), targets int64[N]. Chunk by chunk, in sequence: project, log-softmax, pick the target,
 * so the full [N, V] logits never exist (the spike lost half its time and most of its
 * memory to a naive loss head). Outputs loss[N] and what the backward needs:
 * - frozenHead: u[N, K] = (softmax - onehot(target)) @ w, row by row. d loss_n / d h_n is
 *   g_n * u_n for any upstream g, so the forward finishes the head's backward matmul chunk by chunk
 *   and keeps 4.7 MB instead of the [N, V] log-probabilities (400 MB at B8 x 256, V 49,152). d w
 *   needs those, so a frozen head has no gradient.
 * - otherwise one log-softmax [rows, V] per chunk, from which the backward gets softmax (exp, one
 *   pass) and goes chunk by chunk to d h and d w.
 */
const LinearCrossEntropy: OpDef<LinearCeAttrs> = {
  type: 'LinearCrossEntropy',
  shape: ([h, w, t], { chunks, frozenHead }) => {
    checkSameDtype('linearCrossEntropy', h, w);
    checkDtype('linearCrossEntropy', t, ['int64', 'int32']);
    if (h.rank !== 2 || w.rank !== 2 || t.rank !== 1) throw shapeError('linearCrossEntropy', 'expected h[N, K], w[V, K], targets[N]', [h.shape, w.shape, t.shape]);
    const loss = { dtype: h.dtype, shape: [h.shape[0]] };
    if (frozenHead) return [loss, same(h)];
    return [loss, ...Array.from({ length: chunks }, () => ({ dtype: h.dtype, shape: ['lce_chunk_rows', w.shape[0]] }))];
  },
  onnx: (ctx, [h, w, t], [loss, ...kept], { attrs, inputs }) => {
    const project = headProjection(ctx, w, inputs[0].dtype);
    const chunk = emitRowChunks(ctx, h, attrs.chunks);
    const losses: string[] = [];
    const rowGrads: string[] = [];
    for (let c = 0; c < attrs.chunks; c++) {
      const [logits, logp] = [ctx.fresh('logits'), attrs.frozenHead ? ctx.fresh('logp') : kept[c]];
      project(chunk(h, c, attrs.frozenHead ? rowGrads[c - 1] : losses[c - 1]), logits);
      losses.push(ctx.fresh('chunk_loss'));
      const targets = chunk(t, c);
      emitNll(ctx, logits, targets, losses[c], 1, logp);
      if (attrs.frozenHead) {
        // (softmax - onehot) @ w = softmax @ w - w[target]: a row gather, no scatter into [rows, V]
        const [p, pw, picked] = [ctx.fresh('softmax'), ctx.fresh('softmax_w'), ctx.fresh('target_rows')];
        ctx.emit('Exp', [logp], [p]);
        ctx.emit('MatMul', [p, w], [pw]);
        ctx.emit('Gather', [w, targets], [picked], { axis: { i: 0 } });
        rowGrads.push(ctx.fresh('row_grad'));
        ctx.emit('Sub', [pw, picked], [rowGrads[c]]);
      }
    }
    ctx.emit('Concat', losses, [loss], { axis: { i: 0 } });
    if (attrs.frozenHead) ctx.emit('Concat', rowGrads, [kept[0]], { axis: { i: 0 } });
  },
  grad: ([h, w, t], [, ...kept], [g, ...gKept], attrs, wanted) => {
    if (gKept.some((d) => d)) throw new Error('linearCrossEntropy: only its loss is differentiable');
    if (attrs.frozenHead) {
      if (wanted[1]) throw new Error('linearCrossEntropy: the head w was declared frozen (frozenHead) but is differentiated');
      return [mul(kept[0], unsqueeze(g!, [1])), null, null];
    }
    const [dh, dw] = apply(LinearCrossEntropyGrad, [h, w, t, g!, ...kept], { ...attrs, wantH: wanted[0], wantW: wanted[1] });
    return [wanted[0] ? dh : null, wanted[1] ? (wanted[0] ? dw : dh) : null, null];
  },
};
/**
 * frozenHead: w gets no gradient, and the backward keeps 1/V-th the memory (see LinearCrossEntropy).
 * `kept` is what the backward reads: with activation checkpointing, make them checkpoints, or the
 * backward recomputes the whole head.
 */
export function linearCrossEntropy(h: Tensor, w: Tensor, targets: Tensor, opts: { chunks?: number; frozenHead?: boolean } = {}): { loss: Tensor; kept: Tensor[] } {
  const [loss, ...kept] = apply(LinearCrossEntropy, [h, w, targets], { chunks: opts.chunks ?? 16, frozenHead: opts.frozenHead ?? false });
  return { loss, kept };
}

/** rows @ w^T into `out`: FusedMatMul (transB) in float32, else w transposed once up front. */
function headProjection(ctx: Lowering, w: string, dtype: string): (rows: string, out: string) => void {
  if (dtype === 'float32') return (rows, out) => ctx.emit('FusedMatMul', [rows, w], [out], { transB: { i: 1 }, alpha: { f: 1 } }, 'com.microsoft');
  const wt = ctx.fresh('wT');
  ctx.emit('Transpose', [w], [wt], { perm: { ints: [1, 0] } });
  return (rows, out) => ctx.emit('MatMul', [rows, wt], [out]);
}

const LinearCrossEntropyGrad: OpDef<LinearCeAttrs & { wantH: boolean; wantW: boolean }> = {
  type: 'LinearCrossEntropyGrad',
  shape: ([h, w], { wantH, wantW }) => [...(wantH ? [same(h)] : []), ...(wantW ? [same(w)] : [])],
  onnx: (ctx, [h, w, t, g, ...logps], outs, { attrs }) => {
    const chunk = emitRowChunks(ctx, h, attrs.chunks);
    const dhs: string[] = [];
    const dws: string[] = [];
    for (let c = 0; c < attrs.chunks; c++) {
      const [p, d] = [ctx.fresh('softmax'), ctx.fresh('dlogits')];
      ctx.emit('Exp', [logps[c]], [p]); // softmax from the kept log-softmax: one pass
      emitNllGrad(ctx, p, chunk(t, c), chunk(g, c, c > 0 ? (attrs.wantH ? dhs[c - 1] : dws[c - 1]) : undefined), d, 1);
      if (attrs.wantH) {
        dhs.push(ctx.fresh('dh'));
        ctx.emit('MatMul', [d, w], [dhs[c]]);
      }
      if (attrs.wantW) {
        const dw = ctx.fresh('dw');
        ctx.emit('Gemm', [d, chunk(h, c)], [dw], { transA: { i: 1 } });
        if (c === 0) dws.push(dw);
        else {
          const sum = ctx.fresh('dw_sum');
          ctx.emit('Add', [dws[dws.length - 1], dw], [sum]);
          dws.push(sum);
        }
      }
    }
    let k = 0;
    if (attrs.wantH) ctx.emit('Concat', dhs, [outs[k++]], { axis: { i: 0 } });
    if (attrs.wantW) ctx.emit('Identity', [dws[dws.length - 1]], [outs[k]]);
  },
};

/**
 * RMSNorm over the last axis: x / sqrt(mean(x^2) + eps) * weight. Lowered to ORT's
 * SimplifiedLayerNormalization (one kernel); the gradient is composed of primitive ops.
 */
const RmsNorm: OpDef<{ eps: number; fused: boolean }> = {
  type: 'RmsNorm',
  shape: ([x, w]) => {
    checkSameDtype('rmsNorm', x, w);
    return [same(x)];
  },
  onnx: (ctx, [x, w], [y], node) => {
    const { attrs } = node;
    if (attrs.fused) return ctx.emit('SimplifiedLayerNormalization', [x, w], [y], { axis: { i: -1 }, epsilon: { f: attrs.eps }, stash_type: { i: 1 } });
    emitComposedRmsNorm(ctx, x, w, y, attrs.eps, node.inputs[0].dtype);
  },
  grad: ([x, w], _o, [g], { eps }) => rmsNormGrad(x, w, g!, eps),
};

/** [dx, dw] of rmsNorm: dx = r * (g w - xhat * mean(g w xhat)), xhat = x r, r = 1/rms(x). */
function rmsNormGrad(x: Tensor, w: Tensor, g: Tensor, eps: number): [Tensor, Tensor] {
  const r = apply1(RsqrtMeanSq, [x], { eps }); // [..., 1]
  const xhat = mul(x, r);
  const dxhat = mul(g, w);
  const dx = mul(r, sub(dxhat, mul(xhat, reduceMean(mul(dxhat, xhat), [-1], true))));
  return [dx, sumToShape(mul(g, xhat), w.shape)];
}
export function rmsNorm(x: Tensor, weight: Tensor, eps = 1e-6, opts: { fused?: boolean } = {}): Tensor {
  return apply1(RmsNorm, [x, weight], { eps, fused: opts.fused ?? x.dtype !== 'bfloat16' });
}

/**
 * The residual add and the next RMSNorm: { sum: x + residual, normed: rmsNorm(sum, weight) }.
 * Lowered as Add + SimplifiedLayerNormalization: ORT's one-kernel SkipSimplifiedLayerNormalization
 * (kernel: 'skip') measured 1.1-1.3x slower here (bench/engine-ops.ts). 'composed' spells the norm
 * out in primitive ops (any dtype). Gradient composed.
 */
type AddNormKernel = 'norm' | 'skip' | 'composed';
const AddRmsNorm: OpDef<{ eps: number; kernel: AddNormKernel }> = {
  type: 'AddRmsNorm',
  shape: ([x, r, w]) => {
    checkSameDtype('addRmsNorm', x, r);
    checkSameDtype('addRmsNorm', x, w);
    if (x.shape.join() !== r.shape.join()) throw shapeError('addRmsNorm', 'x and residual must have the same shape', [x.shape, r.shape]);
    return [same(x), same(x)];
  },
  onnx: (ctx, [x, r, w], [normed, sum], { attrs, inputs }) => {
    if (attrs.kernel === 'skip') return ctx.emit('SkipSimplifiedLayerNormalization', [x, r, w], [normed, '', '', sum], { epsilon: { f: attrs.eps } }, 'com.microsoft');
    ctx.emit('Add', [x, r], [sum]);
    if (attrs.kernel === 'norm') return ctx.emit('SimplifiedLayerNormalization', [sum, w], [normed], { axis: { i: -1 }, epsilon: { f: attrs.eps }, stash_type: { i: 1 } });
    emitComposedRmsNorm(ctx, sum, w, normed, attrs.eps, inputs[0].dtype);
  },
  grad: ([, , w], [, sum], [gNormed, gSum], { eps }) => {
    const [ds, dw] = gNormed ? rmsNormGrad(sum, w, gNormed, eps) : [null, null];
    const total = ds && gSum ? add(ds, gSum) : (ds ?? gSum);
    return [total, total, dw];
  },
};
export function addRmsNorm(
  x: Tensor,
  residual: Tensor,
  weight: Tensor,
  eps = 1e-6,
  opts: { kernel?: AddNormKernel } = {},
): { sum: Tensor; normed: Tensor } {
  const kernel = opts.kernel ?? (x.dtype === 'float32' ? 'norm' : 'composed');
  const [normed, sum] = apply(AddRmsNorm, [x, residual, weight], { eps, kernel });
  return { sum, normed };
}

/** 1/sqrt(mean(x^2, -1) + eps), keepdims; only used inside the RMSNorm gradients. */
const RsqrtMeanSq: OpDef<{ eps: number }> = {
  type: 'RsqrtMeanSq',
  shape: ([x]) => [{ dtype: x.dtype, shape: [...x.shape.slice(0, -1), 1] }],
  onnx: (ctx, [x], [y], { attrs, inputs }) => ctx.emit('Reciprocal', [emitRms(ctx, x, attrs.eps, inputs[0].dtype)], [y]),
};

/** sqrt(mean(x^2, -1) + eps) with keepdims, as primitive ONNX nodes; returns its name. */
function emitRms(ctx: Lowering, x: string, eps: number, dtype: Tensor['dtype']): string {
  const [sq, ms, shifted, rms] = ['sq', 'mean_sq', 'shifted', 'rms'].map((h) => ctx.fresh(h));
  ctx.emit('Mul', [x, x], [sq]);
  ctx.emit('ReduceMean', [sq, ctx.constInt64([-1])], [ms], { keepdims: { i: 1 } });
  ctx.emit('Add', [ms, ctx.constScalar(eps, dtype)], [shifted]);
  ctx.emit('Sqrt', [shifted], [rms]);
  return rms;
}

/** x / rms(x) * w in primitive ONNX nodes (any dtype). */
function emitComposedRmsNorm(ctx: Lowering, x: string, w: string, y: string, eps: number, dtype: Tensor['dtype']): void {
  const normed = ctx.fresh('normed');
  ctx.emit('Div', [x, emitRms(ctx, x, eps, dtype)], [normed]);
  ctx.emit('Mul', [normed, w], [y]);
}

/** mean of x over positions where mask (float, broadcastable to x) is 1: sum(x*m)/max(sum(m), 1). */
export function maskedMean(x: Tensor, mask: Tensor): Tensor {
  const axes = [...Array(x.rank).keys()];
  const total = reduceSum(mul(x, mask), axes);
  const count = reduceSum(mask, [...Array(mask.rank).keys()]);
  return div(total, maximum(count, 1));
}
