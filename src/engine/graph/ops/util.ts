import { type Dim, showShape } from '../dims.js';
import type { DType, Lowering, OnnxAttr, OpDef, Tensor, TensorType } from '../ir.js';

/** A tensor or a JS number (becomes a scalar constant of the other operand's dtype). */
export type Operand = Tensor | number;

export function tensorsOf(op: string, a: Operand, b: Operand): [Tensor, Tensor] {
  if (typeof a === 'number' && typeof b === 'number') throw new Error(`${op}: at least one operand must be a tensor`);
  const like = (typeof a === 'number' ? b : a) as Tensor;
  const lift = (v: Operand): Tensor => (typeof v === 'number' ? like.graph.scalar(v, like.dtype) : v);
  return [lift(a), lift(b)];
}

export function same(t: Tensor): TensorType {
  return { dtype: t.dtype, shape: [...t.shape] };
}

export function normAxis(axis: number, rank: number, op: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${op}: axis ${axis} out of range for rank ${rank}`);
  return a;
}

export function checkDtype(op: string, t: Tensor, allowed: readonly DType[]): void {
  if (!allowed.includes(t.dtype)) throw new Error(`${op}: ${t} has dtype ${t.dtype}, expected one of ${allowed.join(', ')}`);
}

export function checkSameDtype(op: string, a: Tensor, b: Tensor): void {
  if (a.dtype !== b.dtype) throw new Error(`${op}: dtypes differ (${a} vs ${b}); cast first`);
}

export function shapeError(op: string, msg: string, shapes: readonly (readonly Dim[])[]): Error {
  return new Error(`${op}: ${msg} (shapes ${shapes.map(showShape).join(', ')})`);
}

/** A lowering that emits one ONNX node of the given type with fixed attributes. */
export function lowerAs(
  opType: string,
  attrs?: (node: { attrs: any }) => Record<string, OnnxAttr>,
  domain?: string,
): OpDef['onnx'] {
  return (ctx: Lowering, ins, outs, node) => ctx.emit(opType, ins, outs, attrs?.(node), domain);
}

export const ONNX_DTYPE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
  bfloat16: 16,
};
