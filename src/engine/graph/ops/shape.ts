/** Shape ops: reshape, transpose, concat, slice, gather, expand, (un)squeeze, shape and range. */
import { type Dim, dimDiv, dimEq, dimProduct, dimSymbols, unknownDim } from '../dims.js';
import { type Graph, type OpDef, type Tensor, apply, apply1 } from '../ir.js';
import { sumToShape } from './elementwise.js';
import { checkDtype, normAxis, same, shapeError } from './util.js';

/** ONNX's "to the end" for slice ends. */
export const END = Number.MAX_SAFE_INTEGER;

function dimsKey(d: readonly Dim[]): string {
  return d.join(',');
}

// ---- reshape ----------------------------------------------------------------------------------

/**
 * Reshape with ONNX semantics: 0 copies the input dim at that position, -1 is inferred; string dims
 * name symbols (resolved at run time from the input that declared them, e.g. ['B', 'T', 9, 64]).
 */
const Reshape: OpDef<{ dims: Dim[] }> = {
  type: 'Reshape',
  shape: ([x], { dims }) => {
    const out = dims.map((d, i) => (d === 0 ? x.shape[i] : d));
    const hole = out.indexOf(-1);
    if (out.filter((d) => d === -1).length > 1) throw shapeError('reshape', 'more than one -1', [x.shape]);
    if (hole >= 0) out[hole] = dimDiv(dimProduct(x.shape), dimProduct(out.filter((d) => d !== -1)));
    else if (typeof dimProduct(out) === 'number' && typeof dimProduct(x.shape) === 'number' && dimProduct(out) !== dimProduct(x.shape))
      throw shapeError('reshape', `cannot reshape to [${dims.join(', ')}]`, [x.shape]);
    return [{ dtype: x.dtype, shape: out }];
  },
  onnx: (ctx, [x], [y], { attrs }) => ctx.emit('Reshape', [x, ctx.shapeOf(attrs.dims)], [y]),
  grad: ([x], _o, [g]) => [reshapeLike(g!, x)],
};
export const reshape = (x: Tensor, dims: readonly Dim[]): Tensor =>
  dimsKey(dims) === dimsKey(x.shape) ? x : apply1(Reshape, [x], { dims: [...dims] });

/** Lowers op(x, ref) to ONNX `type(x, Shape(ref))`: x takes ref's run-time shape. */
function withShapeOfRef(type: 'Reshape' | 'Expand'): OpDef['onnx'] {
  return (ctx, [x, ref], [y]) => {
    const s = ctx.fresh('shape');
    ctx.emit('Shape', [ref], [s]);
    ctx.emit(type, [x, s], [y]);
  };
}

/** Reshape x to ref's run-time shape. */
const ReshapeAs: OpDef = {
  type: 'ReshapeAs',
  shape: ([x, ref]) => [{ dtype: x.dtype, shape: [...ref.shape] }],
  onnx: withShapeOfRef('Reshape'),
  grad: ([x], _o, [g]) => [reshapeLike(g!, x), null],
};
/**
 * Whether a shape can be computed at run time from the graph's inputs alone (numbers and products
 * of input symbols; not sums or unknowns).
 */
export function fromInputs(graph: Graph, dims: readonly Dim[]): boolean {
  return dims.every((d) => typeof d === 'number' || (!d.includes('+') && dimSymbols(d).every((s) => graph.symbols.has(s))));
}

/**
 * x reshaped to ref's shape, for gradient rules: from the graph inputs' dims when they determine it,
 * so the backward holds no reference to ref (a Shape(ref) node in the backward keeps a forward
 * activation alive until then, just for its shape); else Shape(ref).
 */
export function reshapeLike(x: Tensor, ref: Tensor): Tensor {
  return fromInputs(ref.graph, ref.shape) ? reshape(x, ref.shape) : reshapeAs(x, ref);
}

/** x broadcast to ref's shape, for gradient rules; see reshapeLike. */
export function expandLike(x: Tensor, ref: Tensor): Tensor {
  if (dimsKey(x.shape) === dimsKey(ref.shape)) return x;
  return fromInputs(ref.graph, ref.shape) ? expand(x, ref.shape) : expandAs(x, ref);
}

export function reshapeAs(x: Tensor, ref: Tensor): Tensor {
  if (dimsKey(x.shape) === dimsKey(ref.shape)) return x;
  return apply1(ReshapeAs, [x, ref], {});
}

// ---- transpose ----------------------------------------------------------------------------------

const Transpose: OpDef<{ perm: number[] }> = {
  type: 'Transpose',
  shape: ([x], { perm }) => {
    if (perm.length !== x.rank || [...perm].sort().some((p, i) => p !== i)) throw shapeError('transpose', `bad perm [${perm}]`, [x.shape]);
    return [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]) }];
  },
  onnx: (ctx, ins, outs, { attrs }) => ctx.emit('Transpose', ins, outs, { perm: { ints: attrs.perm } }),
  grad: (_i, _o, [g], { perm }) => {
    const inv = perm.map((_, i) => perm.indexOf(i));
    return [transpose(g!, inv)];
  },
};
/** Permute axes; with no perm, swap the last two axes (a matrix transpose for any rank >= 2). */
export function transpose(x: Tensor, perm?: readonly number[]): Tensor {
  const p = perm ? perm.map((a) => normAxis(a, x.rank, 'transpose')) : [...Array(x.rank).keys()];
  if (!perm) {
    if (x.rank < 2) throw shapeError('transpose', 'needs rank >= 2', [x.shape]);
    [p[x.rank - 2], p[x.rank - 1]] = [p[x.rank - 1], p[x.rank - 2]];
  }
  return p.every((a, i) => a === i) ? x : apply1(Transpose, [x], { perm: p });
}
export const permute = (x: Tensor, perm: readonly number[]): Tensor => transpose(x, perm);

// ---- unsqueeze / squeeze ------------------------------------------------------------------------

const Unsqueeze: OpDef<{ axes: number[] }> = {
  type: 'Unsqueeze',
  shape: ([x], { axes }) => {
    const rank = x.rank + axes.length;
    const norm = axes.map((a) => normAxis(a, rank, 'unsqueeze'));
    const rest = [...x.shape];
    return [{ dtype: x.dtype, shape: [...Array(rank).keys()].map((i) => (norm.includes(i) ? 1 : rest.shift()!)) }];
  },
  onnx: (ctx, [x], [y], { attrs }) => ctx.emit('Unsqueeze', [x, ctx.constInt64(attrs.axes)], [y]),
  grad: (_i, _o, [g], { axes }) => [squeeze(g!, axes.map((a) => (a < 0 ? a + g!.rank : a)))],
};
export const unsqueeze = (x: Tensor, axes: number | readonly number[]): Tensor =>
  apply1(Unsqueeze, [x], { axes: typeof axes === 'number' ? [axes] : [...axes] });

const Squeeze: OpDef<{ axes: number[] }> = {
  type: 'Squeeze',
  shape: ([x], { axes }) => {
    const norm = axes.map((a) => normAxis(a, x.rank, 'squeeze'));
    for (const a of norm) if (x.shape[a] !== 1 && typeof x.shape[a] === 'number') throw shapeError('squeeze', `axis ${a} is not 1`, [x.shape]);
    return [{ dtype: x.dtype, shape: x.shape.filter((_, i) => !norm.includes(i)) }];
  },
  onnx: (ctx, [x], [y], { attrs }) => ctx.emit('Squeeze', [x, ctx.constInt64(attrs.axes)], [y]),
  grad: ([x], _o, [g], { axes }) => [unsqueeze(g!, axes.map((a) => normAxis(a, x.rank, 'squeeze')).sort((a, b) => a - b))],
};
export const squeeze = (x: Tensor, axes: number | readonly number[]): Tensor =>
  apply1(Squeeze, [x], { axes: typeof axes === 'number' ? [axes] : [...axes] });

// ---- expand ------------------------------------------------------------------------------------

/** Broadcast to a shape (dims may be symbols); gradient sums back. */
const Expand: OpDef<{ dims: Dim[] }> = {
  type: 'Expand',
  shape: ([x], { dims }) => {
    const rank = Math.max(x.rank, dims.length);
    const shape = [...Array(rank).keys()].map((i) => {
      const a = x.shape[x.rank - rank + i] ?? 1;
      const b = dims[dims.length - rank + i] ?? 1;
      return b === 1 ? a : b;
    });
    return [{ dtype: x.dtype, shape }];
  },
  onnx: (ctx, [x], [y], { attrs }) => ctx.emit('Expand', [x, ctx.shapeOf(attrs.dims)], [y]),
  grad: ([x], _o, [g]) => [sumToShape(g!, x.shape)],
};
export const expand = (x: Tensor, dims: readonly Dim[]): Tensor => apply1(Expand, [x], { dims: [...dims] });

/** Broadcast x to ref's run-time shape (ref's values are not used). */
const ExpandAs: OpDef = {
  type: 'ExpandAs',
  shape: ([x, ref]) => [{ dtype: x.dtype, shape: [...ref.shape] }],
  onnx: withShapeOfRef('Expand'),
  grad: ([x], _o, [g]) => [sumToShape(g!, x.shape), null],
};
export const expandAs = (x: Tensor, ref: Tensor): Tensor =>
  dimsKey(x.shape) === dimsKey(ref.shape) ? x : apply1(ExpandAs, [x, ref], {});

// ---- concat / split ----------------------------------------------------------------------------

/** Sums stay opaque strings ('P+T'): they cannot be resolved at run time, only carried. */
function dimSum(a: Dim, b: Dim): Dim {
  return typeof a === 'number' && typeof b === 'number' ? a + b : `${a}+${b}`;
}

const Concat: OpDef<{ axis: number }> = {
  type: 'Concat',
  shape: (xs, { axis }) => {
    const a = normAxis(axis, xs[0].rank, 'concat');
    for (const x of xs) {
      if (x.rank !== xs[0].rank || x.dtype !== xs[0].dtype) throw shapeError('concat', 'rank or dtype differ', xs.map((t) => t.shape));
    }
    const shape = [...xs[0].shape];
    shape[a] = xs.slice(1).reduce((acc, x) => dimSum(acc, x.shape[a]), xs[0].shape[a]);
    return [{ dtype: xs[0].dtype, shape }];
  },
  onnx: (ctx, ins, outs, { attrs }) => ctx.emit('Concat', ins, outs, { axis: { i: attrs.axis } }),
  grad: (xs, _o, [g], { axis }) => splitLike(g!, xs, axis),
};
export const concat = (xs: readonly Tensor[], axis: number): Tensor => (xs.length === 1 ? xs[0] : apply1(Concat, xs, { axis }));

/** Split g along an axis into pieces sized like refs (sizes read at run time). */
const SplitLike: OpDef<{ axis: number }> = {
  type: 'SplitLike',
  shape: ([g, ...refs], { axis }) => {
    const a = normAxis(axis, g.rank, 'split');
    return refs.map((r) => ({ dtype: g.dtype, shape: g.shape.map((d, i) => (i === a ? r.shape[i] : d)) }));
  },
  onnx: (ctx, [g, ...refs], outs, { attrs }) => {
    const sizes = refs.map((r) => {
      const s = ctx.fresh('size');
      ctx.emit('Shape', [r], [s], { start: { i: attrs.axis }, end: { i: attrs.axis + 1 } });
      return s;
    });
    const split = ctx.fresh('split');
    ctx.emit('Concat', sizes, [split], { axis: { i: 0 } });
    ctx.emit('Split', [g, split], outs, { axis: { i: attrs.axis } });
  },
};
function splitLike(g: Tensor, refs: readonly Tensor[], axis: number): Tensor[] {
  return apply(SplitLike, [g, ...refs], { axis: normAxis(axis, g.rank, 'split') });
}

/** Split along an axis into static sizes. */
const Split: OpDef<{ axis: number; sizes: number[] }> = {
  type: 'Split',
  shape: ([x], { axis, sizes }) => {
    const a = normAxis(axis, x.rank, 'split');
    if (typeof x.shape[a] === 'number' && sizes.reduce((s, v) => s + v, 0) !== x.shape[a]) throw shapeError('split', `sizes [${sizes}] do not add up`, [x.shape]);
    return sizes.map((n) => ({ dtype: x.dtype, shape: x.shape.map((d, i) => (i === a ? n : d)) }));
  },
  onnx: (ctx, [x], outs, { attrs }) => ctx.emit('Split', [x, ctx.constInt64(attrs.sizes)], outs, { axis: { i: attrs.axis } }),
  grad: (_i, outs, gs, { axis }) => [concat(outs.map((o, i) => gs[i] ?? zerosLike(o)), axis)],
};
export const split = (x: Tensor, sizes: readonly number[], axis: number): Tensor[] =>
  apply(Split, [x], { axis: normAxis(axis, x.rank, 'split'), sizes: [...sizes] });

// ---- slice -------------------------------------------------------------------------------------

type SliceAttrs = { starts: Dim[]; ends: Dim[]; axes: number[]; steps: number[] };

function sliceDim(d: Dim, start: Dim, end: Dim, step: number): Dim {
  if (typeof d === 'number' && typeof start === 'number' && typeof end === 'number') {
    const norm = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, step > 0 ? 0 : -1), step > 0 ? d : d - 1);
    return Math.max(0, Math.ceil((norm(end) - norm(start)) / step));
  }
  if (step === 1 && start === 0 && (end === END || dimEq(end, d))) return d;
  if (step === 1 && start === 0 && typeof end === 'string') return end;
  if (step === 1 && typeof start === 'number' && start < 0 && end === END) return -start;
  return unknownDim();
}

/** x[starts:ends:steps] along axes; starts/ends may be symbols (e.g. slice(k, [0], ['T'], [2])). */
const Slice: OpDef<SliceAttrs> = {
  type: 'Slice',
  shape: ([x], { starts, ends, axes, steps }) => {
    const shape = [...x.shape];
    axes.forEach((ax, i) => {
      const a = normAxis(ax, x.rank, 'slice');
      shape[a] = sliceDim(x.shape[a], starts[i], ends[i], steps[i]);
    });
    return [{ dtype: x.dtype, shape }];
  },
  onnx: (ctx, [x], [y], { attrs }) =>
    ctx.emit('Slice', [x, ctx.shapeOf(attrs.starts), ctx.shapeOf(attrs.ends), ctx.constInt64(attrs.axes), ctx.constInt64(attrs.steps)], [y]),
  grad: ([x], _o, [g], attrs) => {
    if (attrs.steps.some((s) => s !== 1)) throw new Error('slice: gradient only for step 1');
    return [apply1(SliceGrad, [g!, x], attrs)];
  },
};
export function slice(x: Tensor, starts: readonly Dim[], ends: readonly Dim[], axes?: readonly number[], steps?: readonly number[]): Tensor {
  const ax = axes ? axes.map((a) => normAxis(a, x.rank, 'slice')) : starts.map((_, i) => i);
  return apply1(Slice, [x], { starts: [...starts], ends: [...ends], axes: ax, steps: steps ? [...steps] : ax.map(() => 1) });
}

/** Pads g with zeros back to the sliced input's shape: the pads are computed at run time. */
const SliceGrad: OpDef<SliceAttrs> = {
  type: 'SliceGrad',
  shape: ([, x]) => [same(x)],
  onnx: (ctx, [g, x], [y], { attrs }) => {
    const v = (hint: string) => ctx.fresh(hint);
    const shape = v('shape');
    ctx.emit('Shape', [x], [shape]);
    const len = v('len');
    ctx.emit('Gather', [shape, ctx.constInt64(attrs.axes)], [len], { axis: { i: 0 } });
    const zero = ctx.constInt64([0]);
    const norm = (vals: string) => {
      const neg = v('neg');
      const wrapped = v('wrapped');
      const lo = v('lo');
      const out = v('clamped');
      const shifted = v('shifted');
      ctx.emit('Less', [vals, zero], [neg]);
      ctx.emit('Add', [vals, len], [shifted]);
      ctx.emit('Where', [neg, shifted, vals], [wrapped]);
      ctx.emit('Max', [wrapped, zero], [lo]);
      ctx.emit('Min', [lo, len], [out]);
      return out;
    };
    const before = norm(ctx.shapeOf(attrs.starts));
    const end = norm(ctx.shapeOf(attrs.ends));
    const after = v('after');
    ctx.emit('Sub', [len, end], [after]);
    const pads = v('pads');
    ctx.emit('Concat', [before, after], [pads], { axis: { i: 0 } });
    ctx.emit('Pad', [g, pads, '', ctx.constInt64(attrs.axes)], [y]);
  },
};

// ---- gather ------------------------------------------------------------------------------------

/** data.take(indices, axis) — embedding lookup; gradient is a scatter-add (axis 0). */
const Gather: OpDef<{ axis: number }> = {
  type: 'Gather',
  shape: ([data, idx], { axis }) => {
    checkDtype('gather', idx, ['int64', 'int32']);
    const a = normAxis(axis, data.rank, 'gather');
    return [{ dtype: data.dtype, shape: [...data.shape.slice(0, a), ...idx.shape, ...data.shape.slice(a + 1)] }];
  },
  onnx: (ctx, ins, outs, { attrs }) => ctx.emit('Gather', ins, outs, { axis: { i: attrs.axis } }),
  grad: ([data, idx], _o, [g], { axis }) => {
    if (normAxis(axis, data.rank, 'gather') !== 0) throw new Error('gather: gradient only along axis 0');
    return [apply1(GatherGrad, [g!, idx, data], {}), null];
  },
};
export const gather = (data: Tensor, indices: Tensor, axis = 0): Tensor => apply1(Gather, [data, indices], { axis });

/** zeros_like(data) with g's rows added at indices: ScatterND(reduction='add'), opset >= 16. */
const GatherGrad: OpDef = {
  type: 'GatherGrad',
  shape: ([g, , data]) => [{ dtype: g.dtype, shape: [...data.shape] }],
  onnx: (ctx, [g, idx, data], [y], node) => {
    const shape = ctx.fresh('shape');
    const zeros = ctx.fresh('zeros');
    const idx64 = ctx.fresh('idx');
    const idxCol = ctx.fresh('idx_col');
    ctx.emit('Shape', [data], [shape]);
    ctx.emit('Expand', [ctx.constScalar(0, node.inputs[0].dtype), shape], [zeros]);
    ctx.emit('Cast', [idx], [idx64], { to: { i: 7 } });
    ctx.emit('Unsqueeze', [idx64, ctx.constInt64([-1])], [idxCol]);
    ctx.emit('ScatterND', [zeros, idxCol, g], [y], { reduction: { s: 'add' } });
  },
};

/** Elementwise gather along an axis (indices have data's rank); gradient is ScatterElements add. */
const GatherElements: OpDef<{ axis: number }> = {
  type: 'GatherElements',
  shape: ([data, idx]) => {
    checkDtype('gatherElements', idx, ['int64', 'int32']);
    return [{ dtype: data.dtype, shape: [...idx.shape] }];
  },
  onnx: (ctx, ins, outs, { attrs }) => ctx.emit('GatherElements', ins, outs, { axis: { i: attrs.axis } }),
  grad: ([data, idx], _o, [g], attrs) => [apply1(GatherElementsGrad, [g!, idx, data], attrs), null],
};
export const gatherElements = (data: Tensor, indices: Tensor, axis: number): Tensor =>
  apply1(GatherElements, [data, indices], { axis: normAxis(axis, data.rank, 'gatherElements') });

const GatherElementsGrad: OpDef<{ axis: number }> = {
  type: 'GatherElementsGrad',
  shape: ([g, , data]) => [{ dtype: g.dtype, shape: [...data.shape] }],
  onnx: (ctx, [g, idx, data], [y], { attrs, inputs }) => {
    const shape = ctx.fresh('shape');
    const zeros = ctx.fresh('zeros');
    ctx.emit('Shape', [data], [shape]);
    ctx.emit('Expand', [ctx.constScalar(0, inputs[0].dtype), shape], [zeros]);
    ctx.emit('ScatterElements', [zeros, idx, g], [y], { axis: { i: attrs.axis }, reduction: { s: 'add' } });
  },
};

// ---- shapes as values ---------------------------------------------------------------------------

/** The run-time size of one axis as an int64 scalar. */
const DimOf: OpDef<{ axis: number }> = {
  type: 'DimOf',
  shape: () => [{ dtype: 'int64', shape: [] }],
  onnx: (ctx, [x], [y], { attrs }) => {
    const s = ctx.fresh('shape');
    ctx.emit('Shape', [x], [s], { start: { i: attrs.axis }, end: { i: attrs.axis + 1 } });
    ctx.emit('Squeeze', [s, ctx.constInt64([0])], [y]);
  },
};
export const dimOf = (x: Tensor, axis: number): Tensor => apply1(DimOf, [x], { axis: normAxis(axis, x.rank, 'dimOf') });

/** A (possibly symbolic) dim of the graph as an int64 scalar, e.g. symDim(g, 'T'). */
const SymDim: OpDef<{ dim: Dim }> = {
  type: 'SymDim',
  shape: () => [{ dtype: 'int64', shape: [] }],
  onnx: (ctx, _i, [y], { attrs }) => ctx.emit('Squeeze', [ctx.shapeOf([attrs.dim]), ctx.constInt64([0])], [y]),
};
export function symDim(graph: Graph, dim: Dim): Tensor {
  // a node needs an input tensor to find its graph; an empty int64 constant serves as the anchor
  return apply1(SymDim, [graph.constant([], [0], 'int64')], { dim });
}

/** [start, start+1, ..., limit-1] (int64 or float); `length` is the declared size of the result. */
const Range: OpDef<{ length: Dim }> = {
  type: 'Range',
  shape: ([start], { length }) => [{ dtype: start.dtype, shape: [length] }],
  onnx: (ctx, [start, limit, delta], [y]) => ctx.emit('Range', [start, limit, delta], [y]),
};
export function range(start: Tensor, limit: Tensor, length: Dim, delta = 1): Tensor {
  return apply1(Range, [start, limit, start.graph.scalar(delta, start.dtype)], { length });
}

/** Identity whose gradient is zero: values an objective treats as constants. */
const StopGradient: OpDef = {
  type: 'StopGradient',
  shape: ([x]) => [same(x)],
  onnx: (ctx, ins, outs) => ctx.emit('Identity', ins, outs),
  grad: () => [null],
};
export const stopGradient = (x: Tensor): Tensor => apply1(StopGradient, [x], {});

/** zeros with x's run-time shape and dtype. */
export function zerosLike(x: Tensor): Tensor {
  return expandAs(x.graph.scalar(0, x.dtype), x);
}
