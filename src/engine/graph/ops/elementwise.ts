/** Elementwise ops with numpy broadcasting; gradients reduce back over broadcast dims (sumToShape). */
import { broadcastShapes } from '../dims.js';
import { type DType, type Lowering, type OpDef, type Tensor, apply1, isFloat } from '../ir.js';
import { reduceSum } from './reduce.js';
import { type Operand, ONNX_DTYPE, checkSameDtype, lowerAs, same, tensorsOf } from './util.js';

/** Sum a broadcast gradient back to an operand's shape (symbolic dims are assumed not broadcast). */
export function sumToShape(g: Tensor, shape: readonly (number | string)[]): Tensor {
  let out = g;
  const lead = g.rank - shape.length;
  if (lead > 0) out = reduceSum(out, [...Array(lead).keys()], false);
  const axes = shape.flatMap((d, i) => (d === 1 && out.shape[i] !== 1 ? [i] : []));
  return axes.length > 0 ? reduceSum(out, axes, true) : out;
}

function binaryOp(type: string, grad: OpDef['grad'], outDtype?: 'bool'): OpDef {
  return {
    type,
    shape: ([a, b]) => {
      checkSameDtype(type, a, b);
      return [{ dtype: outDtype ?? a.dtype, shape: broadcastShapes(a.shape, b.shape, type) }];
    },
    onnx: lowerAs(type),
    grad,
  };
}

function unaryOp(type: string, grad: OpDef['grad']): OpDef {
  return { type, shape: ([x]) => [same(x)], onnx: lowerAs(type), grad };
}

// ---- arithmetic -------------------------------------------------------------------------------

const Add = binaryOp('Add', ([a, b], _o, [g]) => [sumToShape(g!, a.shape), sumToShape(g!, b.shape)]);
export const add = (a: Operand, b: Operand): Tensor => apply1(Add, tensorsOf('add', a, b), {});

const Sub = binaryOp('Sub', ([a, b], _o, [g]) => [sumToShape(g!, a.shape), sumToShape(neg(g!), b.shape)]);
export const sub = (a: Operand, b: Operand): Tensor => apply1(Sub, tensorsOf('sub', a, b), {});

const Mul = binaryOp('Mul', ([a, b], _o, [g]) => [sumToShape(mul(g!, b), a.shape), sumToShape(mul(g!, a), b.shape)]);
export const mul = (a: Operand, b: Operand): Tensor => apply1(Mul, tensorsOf('mul', a, b), {});

// d(a/b) = g/b, -g*y/b
const Div = binaryOp('Div', ([a, b], [y], [g]) => {
  const gb = div(g!, b);
  return [sumToShape(gb, a.shape), sumToShape(neg(mul(gb, y)), b.shape)];
});
export const div = (a: Operand, b: Operand): Tensor => apply1(Div, tensorsOf('div', a, b), {});

// d(a^b) = g*b*a^(b-1), g*y*log(a)
const Pow = binaryOp('Pow', ([a, b], [y], [g]) => [
  sumToShape(mul(g!, mul(b, pow(a, sub(b, 1)))), a.shape),
  sumToShape(mul(g!, mul(y, log(a))), b.shape),
]);
export const pow = (a: Operand, b: Operand): Tensor => apply1(Pow, tensorsOf('pow', a, b), {});

// max(a, b): the gradient goes to the larger operand (to a on ties)
const Max = binaryOp('Max', ([a, b], [y], [g]) => {
  const toA = cast(equal(a, y), g!.dtype);
  return [sumToShape(mul(g!, toA), a.shape), sumToShape(mul(g!, sub(1, toA)), b.shape)];
});
export const maximum = (a: Operand, b: Operand): Tensor => apply1(Max, tensorsOf('maximum', a, b), {});

const Min = binaryOp('Min', ([a, b], [y], [g]) => {
  const toA = cast(equal(a, y), g!.dtype);
  return [sumToShape(mul(g!, toA), a.shape), sumToShape(mul(g!, sub(1, toA)), b.shape)];
});
export const minimum = (a: Operand, b: Operand): Tensor => apply1(Min, tensorsOf('minimum', a, b), {});

const Neg = unaryOp('Neg', (_i, _o, [g]) => [neg(g!)]);
export const neg = (x: Tensor): Tensor => apply1(Neg, [x], {});

const Exp = unaryOp('Exp', (_i, [y], [g]) => [mul(g!, y)]);
export const exp = (x: Tensor): Tensor => apply1(Exp, [x], {});

const Log = unaryOp('Log', ([x], _o, [g]) => [div(g!, x)]);
export const log = (x: Tensor): Tensor => apply1(Log, [x], {});

const Sqrt = unaryOp('Sqrt', (_i, [y], [g]) => [div(g!, mul(y, 2))]);
export const sqrt = (x: Tensor): Tensor => apply1(Sqrt, [x], {});

const Reciprocal = unaryOp('Reciprocal', (_i, [y], [g]) => [neg(mul(g!, mul(y, y)))]);
export const reciprocal = (x: Tensor): Tensor => apply1(Reciprocal, [x], {});

/** 1/sqrt(x) */
export const rsqrt = (x: Tensor): Tensor => reciprocal(sqrt(x));

const Tanh = unaryOp('Tanh', (_i, [y], [g]) => [mul(g!, sub(1, mul(y, y)))]);
export const tanh = (x: Tensor): Tensor => apply1(Tanh, [x], {});

const Sigmoid = unaryOp('Sigmoid', (_i, [y], [g]) => [mul(g!, mul(y, sub(1, y)))]);
export const sigmoid = (x: Tensor): Tensor => apply1(Sigmoid, [x], {});

const Cos = unaryOp('Cos', ([x], _o, [g]) => [neg(mul(g!, sin(x)))]);
export const cos = (x: Tensor): Tensor => apply1(Cos, [x], {});

const Sin = unaryOp('Sin', ([x], _o, [g]) => [mul(g!, cos(x))]);
export const sin = (x: Tensor): Tensor => apply1(Sin, [x], {});

const Abs = unaryOp('Abs', ([x], _o, [g]) => [mul(g!, sign(x))]);
export const abs = (x: Tensor): Tensor => apply1(Abs, [x], {});

const Sign = unaryOp('Sign', undefined);
export const sign = (x: Tensor): Tensor => apply1(Sign, [x], {});

/**
 * x * sigmoid(x); d = s * (1 + x * (1 - s)). In float32 ORT fuses Mul(x, Sigmoid(x)) into one
 * QuickGelu kernel; that kernel is float-only, so other dtypes use x / (1 + exp(-x)).
 */
const Silu: OpDef = {
  type: 'Silu',
  shape: ([x]) => [same(x)],
  onnx: (ctx, [x], [y], { inputs }) => emitSilu(ctx, x, y, inputs[0].dtype),
  grad: ([x], _o, [g]) => {
    const s = sigmoid(x);
    return [mul(g!, mul(s, add(1, mul(x, sub(1, s)))))];
  },
};
export const silu = (x: Tensor): Tensor => apply1(Silu, [x], {});

function emitSilu(ctx: Lowering, x: string, y: string, dtype: DType): void {
  if (dtype === 'float32') {
    const s = ctx.fresh('sigmoid');
    ctx.emit('Sigmoid', [x], [s]);
    return ctx.emit('Mul', [x, s], [y]);
  }
  const [negX, e, denom] = [ctx.fresh('neg'), ctx.fresh('exp'), ctx.fresh('denom')];
  ctx.emit('Neg', [x], [negX]);
  ctx.emit('Exp', [negX], [e]);
  ctx.emit('Add', [e, ctx.constScalar(1, dtype)], [denom]);
  ctx.emit('Div', [x, denom], [y]);
}

/**
 * silu(gate) * up, the SwiGLU of Llama MLPs, as one op whose gradient recomputes silu from gate:
 * a training step keeps gate and up for the backward but not silu(gate) (one [B, T, ffn] tensor
 * per layer less than mul(silu(gate), up)).
 */
const SwiGlu: OpDef = {
  type: 'SwiGlu',
  shape: ([gate, up]) => {
    checkSameDtype('swiglu', gate, up);
    return [{ dtype: gate.dtype, shape: broadcastShapes(gate.shape, up.shape, 'swiglu') }];
  },
  onnx: (ctx, [gate, up], [y], node) => {
    const act = ctx.fresh('silu');
    emitSilu(ctx, gate, act, node.inputs[0].dtype);
    ctx.emit('Mul', [act, up], [y]);
  },
  grad: ([gate, up], _o, [g]) => {
    const s = sigmoid(gate);
    const act = mul(gate, s);
    // silu' = s * (1 + gate * (1 - s)) = s + act - act * s: 8 passes over [B, T, ffn] in all, not 9
    const dgate = mul(mul(g!, up), add(s, sub(act, mul(act, s))));
    return [sumToShape(dgate, gate.shape), sumToShape(mul(g!, act), up.shape)];
  },
};
export const swiglu = (gate: Tensor, up: Tensor): Tensor => apply1(SwiGlu, [gate, up], {});

/** tanh-approximated GELU as composed ops. */
export function geluTanh(x: Tensor): Tensor {
  const inner = mul(add(x, mul(pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
  return mul(mul(x, 0.5), add(1, tanh(inner)));
}

// ---- comparisons and logic (no gradients) -------------------------------------------------------

const Equal = binaryOp('Equal', undefined, 'bool');
export const equal = (a: Operand, b: Operand): Tensor => apply1(Equal, tensorsOf('equal', a, b), {});
const Less = binaryOp('Less', undefined, 'bool');
export const less = (a: Operand, b: Operand): Tensor => apply1(Less, tensorsOf('less', a, b), {});
const LessOrEqual = binaryOp('LessOrEqual', undefined, 'bool');
export const lessOrEqual = (a: Operand, b: Operand): Tensor => apply1(LessOrEqual, tensorsOf('lessOrEqual', a, b), {});
const Greater = binaryOp('Greater', undefined, 'bool');
export const greater = (a: Operand, b: Operand): Tensor => apply1(Greater, tensorsOf('greater', a, b), {});
const GreaterOrEqual = binaryOp('GreaterOrEqual', undefined, 'bool');
export const greaterOrEqual = (a: Operand, b: Operand): Tensor => apply1(GreaterOrEqual, tensorsOf('greaterOrEqual', a, b), {});
const And = binaryOp('And', undefined);
export const and = (a: Tensor, b: Tensor): Tensor => apply1(And, [a, b], {});
const Or = binaryOp('Or', undefined);
export const or = (a: Tensor, b: Tensor): Tensor => apply1(Or, [a, b], {});
const Not = unaryOp('Not', undefined);
export const not = (x: Tensor): Tensor => apply1(Not, [x], {});

// ---- selection and casts --------------------------------------------------------------------------

/** cond ? a : b with broadcasting; the gradient flows to the chosen side. */
const Where: OpDef = {
  type: 'Where',
  shape: ([c, a, b]) => {
    if (c.dtype !== 'bool') throw new Error(`where: condition ${c} must be bool`);
    checkSameDtype('where', a, b);
    return [{ dtype: a.dtype, shape: broadcastShapes(broadcastShapes(c.shape, a.shape, 'where'), b.shape, 'where') }];
  },
  onnx: lowerAs('Where'),
  grad: ([c, a, b], _o, [g]) => {
    const zero = g!.graph.scalar(0, g!.dtype);
    return [null, sumToShape(where(c, g!, zero), a.shape), sumToShape(where(c, zero, g!), b.shape)];
  },
};
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const [ta, tb] = tensorsOf('where', a, b);
  return apply1(Where, [cond, ta, tb], {});
}

/** dtype conversion; gradients pass between float dtypes only. */
const Cast: OpDef<{ to: string }> = {
  type: 'Cast',
  shape: ([x], { to }) => [{ dtype: to as Tensor['dtype'], shape: [...x.shape] }],
  onnx: lowerAs('Cast', ({ attrs }) => ({ to: { i: ONNX_DTYPE[attrs.to as Tensor['dtype']] } })),
  grad: ([x], _o, [g]) => [isFloat(x.dtype) ? cast(g!, x.dtype) : null],
};
export const cast = (x: Tensor, to: Tensor['dtype']): Tensor => (x.dtype === to ? x : apply1(Cast, [x], { to }));
