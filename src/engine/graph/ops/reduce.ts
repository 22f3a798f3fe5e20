/** Reductions over axes (ONNX opset >= 18: axes are an input). */
import { dimProduct } from '../dims.js';
import { type OpDef, type Tensor, apply1 } from '../ir.js';
import { cast, div, equal, exp, mul, sub } from './elementwise.js';
import { dimOf, expandLike, fromInputs, symDim, unsqueeze } from './shape.js';
import { normAxis } from './util.js';

type ReduceAttrs = { axes: number[]; keepdims: boolean };

function reduceShape(type: string) {
  return ([x]: readonly Tensor[], { axes, keepdims }: ReduceAttrs) => {
    const norm = axes.map((a) => normAxis(a, x.rank, type));
    const shape = x.shape.flatMap((d, i) => (norm.includes(i) ? (keepdims ? [1] : []) : [d]));
    return [{ dtype: x.dtype, shape }];
  };
}

function reduceOp(type: string, grad: OpDef<ReduceAttrs>['grad']): OpDef<ReduceAttrs> {
  return {
    type,
    shape: reduceShape(type),
    onnx: (ctx, [x], [y], { attrs }) =>
      ctx.emit(type, [x, ctx.constInt64(attrs.axes)], [y], { keepdims: { i: attrs.keepdims ? 1 : 0 } }),
    grad,
  };
}

/** Put the reduced axes back (as size 1) so a gradient broadcasts against the input. */
function keep(t: Tensor, x: Tensor, { axes, keepdims }: ReduceAttrs): Tensor {
  return keepdims ? t : unsqueeze(t, axes.map((a) => normAxis(a, x.rank, 'reduce')).sort((a, b) => a - b));
}

const ReduceSum = reduceOp('ReduceSum', ([x], _o, [g], attrs) => [expandLike(keep(g!, x, attrs), x)]);
export const reduceSum = (x: Tensor, axes: number[], keepdims = false): Tensor => apply1(ReduceSum, [x], { axes, keepdims });

const ReduceMean = reduceOp('ReduceMean', ([x], _o, [g], attrs) => {
  const axes = attrs.axes.map((a) => normAxis(a, x.rank, 'reduceMean'));
  const n = dimProduct(axes.map((a) => x.shape[a]));
  // symbolic counts come from the inputs' dims when they determine them, else x's run-time shape
  const dimTensor = (a: number) => (fromInputs(x.graph, [x.shape[a]]) ? symDim(x.graph, x.shape[a]) : dimOf(x, a));
  const count = typeof n === 'number' ? n : cast(axes.map(dimTensor).reduce((acc, d) => mul(acc, d)), x.dtype);
  return [expandLike(div(keep(g!, x, attrs), count), x)];
});
export const reduceMean = (x: Tensor, axes: number[], keepdims = false): Tensor => apply1(ReduceMean, [x], { axes, keepdims });

// the gradient is split evenly between tied maxima
const ReduceMax = reduceOp('ReduceMax', ([x], [y], [g], attrs) => {
  const hit = cast(equal(x, keep(y, x, attrs)), x.dtype);
  const count = reduceSum(hit, attrs.axes, true);
  return [mul(hit, div(keep(g!, x, attrs), count))];
});
export const reduceMax = (x: Tensor, axes: number[], keepdims = false): Tensor => apply1(ReduceMax, [x], { axes, keepdims });

// d logsumexp = g * softmax(x) = g * exp(x - y)
const ReduceLogSumExp = reduceOp('ReduceLogSumExp', ([x], [y], [g], attrs) => [
  mul(keep(g!, x, attrs), exp(sub(x, keep(y, x, attrs)))),
]);
export const logSumExp = (x: Tensor, axes: number[], keepdims = false): Tensor =>
  apply1(ReduceLogSumExp, [x], { axes, keepdims });
