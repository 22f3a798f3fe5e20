/**
 * The graph IR: tensors with a dtype and a shape of known rank (dims may be symbolic), nodes that
 * apply an op to tensors, and a Graph that owns them. Ops (./ops/*) carry their shape rule, ONNX
 * lowering and gradient rule side by side; autodiff (./autodiff.ts) appends backward nodes to the
 * same graph; ./onnx.ts compiles it.
 */
import { type Dim, canonDim, showShape } from './dims.js';

export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

export const FLOAT_DTYPES: readonly DType[] = ['float32', 'float64', 'float16', 'bfloat16'];
export const isFloat = (d: DType): boolean => FLOAT_DTYPES.includes(d);

export type TypedArray =
  | Float32Array
  | Float64Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int8Array
  | Uint8Array;

export type LeafKind = 'input' | 'param' | 'constant';

export interface TensorType {
  dtype: DType;
  shape: Dim[];
}

/** A value in a graph: a leaf (input, param, constant) or the output of a node. */
export class Tensor {
  constructor(
    readonly graph: Graph,
    readonly id: number,
    readonly dtype: DType,
    readonly shape: readonly Dim[],
    /** The node that computes it, or null for a leaf. */
    readonly producer: Node | null,
    /** Which output of its producer. */
    readonly index: number,
    readonly leaf: LeafKind | null,
    /** The name of an input, param or constant; op outputs are named at compilation. */
    readonly name: string | null,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `${this.name ?? `%${this.id}`}:${this.dtype}${showShape(this.shape)}`;
  }
}

export type AttrValue = number | string | boolean | undefined | (number | string)[];
export type Attrs = Record<string, AttrValue>;

/** One application of an op to input tensors, producing output tensors. */
export class Node {
  outputs: Tensor[] = [];
  constructor(
    readonly id: number,
    readonly op: OpDef<any>,
    readonly inputs: readonly Tensor[],
    readonly attrs: Attrs,
  ) {}
}

/** What an op's ONNX lowering may use (implemented by ./onnx.ts). */
export interface Lowering {
  /** The ONNX value name of a tensor. */
  name(t: Tensor): string;
  /** A fresh ONNX value name. */
  fresh(hint?: string): string;
  /** Emit an ONNX node; float attribute values must be listed in `floats` (others are ints). */
  emit(
    opType: string,
    inputs: string[],
    outputs: string[],
    attrs?: Record<string, OnnxAttr>,
    domain?: string,
  ): void;
  /** An int64 initializer (shared between uses). */
  constInt64(values: readonly number[], scalar?: boolean): string;
  /** A scalar initializer of a dtype. */
  constScalar(value: number, dtype: DType): string;
  /** An int64 [rank] tensor holding a (possibly symbolic) shape, computed at run time when needed. */
  shapeOf(dims: readonly Dim[]): string;
  readonly opset: number;
}

/** ONNX attribute as lowered: ints, floats, strings and their lists. */
export type OnnxAttr =
  | { i: number }
  | { f: number }
  | { s: string }
  | { ints: number[] }
  | { floats: number[] };

/**
 * An op, micrograd style: `shape` infers output types, `onnx` lowers one node, `grad` returns the
 * gradients of the inputs (as new tensors in the same graph) given the gradients of the outputs.
 * An op without `grad` is not differentiable (comparisons, integer ops); `inferenceOnly` marks ops
 * that are differentiable in principle but have no rule yet (autodiff throws if it meets one).
 */
export interface OpDef<A extends Attrs = Attrs> {
  type: string;
  shape(inputs: readonly Tensor[], attrs: A): TensorType[];
  onnx(ctx: Lowering, inputs: string[], outputs: string[], node: Node & { attrs: A }): void;
  /** `wanted[i]`: whether input i needs a gradient (rules may skip work for the others). */
  grad?(inputs: readonly Tensor[], outputs: readonly Tensor[], dOutputs: readonly (Tensor | null)[], attrs: A, wanted: readonly boolean[]): (Tensor | null)[];
  inferenceOnly?: boolean;
}

/** Apply an op: infer output types, append the node to the inputs' graph, return its outputs. */
export function apply<A extends Attrs>(op: OpDef<A>, inputs: readonly Tensor[], attrs: A): Tensor[] {
  const graph = inputs[0]?.graph;
  if (!graph) throw new Error(`${op.type}: needs at least one tensor input`);
  for (const t of inputs) {
    if (t.graph !== graph) throw new Error(`${op.type}: inputs from different graphs (${t} is not in ${graph.name})`);
  }
  const types = op.shape(inputs, attrs);
  return graph.addNode(op, inputs, attrs, types);
}

export function apply1<A extends Attrs>(op: OpDef<A>, inputs: readonly Tensor[], attrs: A): Tensor {
  return apply(op, inputs, attrs)[0];
}

export interface ParamOptions {
  dtype?: DType;
  /** Whether grad() with no explicit list differentiates it (default true). */
  trainable?: boolean;
}

/** Where a symbolic dim can be read at run time: an input and an axis. */
export interface SymbolSource {
  input: Tensor;
  axis: number;
}

/** A computation graph: declare leaves, build with ops, mark outputs, compile (./onnx.ts). */
export class Graph {
  readonly inputs: Tensor[] = [];
  readonly params = new Map<string, Tensor>();
  readonly trainable = new Set<string>();
  readonly constants = new Map<Tensor, { data: TypedArray }>();
  readonly nodes: Node[] = [];
  readonly outputs = new Map<string, Tensor>();
  readonly symbols = new Map<string, SymbolSource>();
  /** Whether grad() has appended backward nodes (sessions then default to training settings). */
  hasBackward = false;
  private nextId = 0;
  private readonly names = new Set<string>();

  constructor(readonly name = 'graph') {}

  private claim(name: string, what: string): void {
    if (this.names.has(name)) throw new Error(`graph ${this.name}: ${what} name '${name}' is already used`);
    this.names.add(name);
  }

  /** A run-time input; string dims are symbols, later resolvable from this input's shape. */
  input(name: string, dtype: DType, shape: readonly Dim[]): Tensor {
    this.claim(name, 'input');
    const t = new Tensor(this, this.nextId++, dtype, shape.map(canonDim), null, 0, 'input', name);
    shape.forEach((d, axis) => {
      if (typeof d === 'string' && !d.includes('*') && !this.symbols.has(d)) this.symbols.set(d, { input: t, axis });
    });
    this.inputs.push(t);
    return t;
  }

  /** A weight, named as in the checkpoint; its data comes at session creation (initializer or feed). */
  param(name: string, shape: readonly number[], opts: ParamOptions = {}): Tensor {
    this.claim(name, 'param');
    const t = new Tensor(this, this.nextId++, opts.dtype ?? 'float32', [...shape], null, 0, 'param', name);
    this.params.set(name, t);
    if (opts.trainable ?? true) this.trainable.add(name);
    return t;
  }

  /** A constant baked into the model. */
  constant(data: TypedArray | readonly number[], shape: readonly number[], dtype: DType = 'float32'): Tensor {
    const typed = Array.isArray(data) ? toTyped(data as number[], dtype) : (data as TypedArray);
    const size = shape.reduce((a, b) => a * b, 1);
    if (typed.length !== size) throw new Error(`constant: ${typed.length} values for shape ${showShape(shape)}`);
    const name = `const_${this.nextId}`;
    const t = new Tensor(this, this.nextId++, dtype, [...shape], null, 0, 'constant', name);
    this.constants.set(t, { data: typed });
    return t;
  }

  /** A scalar (rank 0) constant. */
  scalar(value: number, dtype: DType = 'float32'): Tensor {
    return this.constant([value], [], dtype);
  }

  /** Mark a tensor as a named output of the compiled model. */
  output(name: string, t: Tensor): void {
    if (t.graph !== this) throw new Error(`output ${name}: tensor ${t} is from another graph`);
    if (this.outputs.has(name)) throw new Error(`graph ${this.name}: output '${name}' is already declared`);
    if (this.names.has(name) && !(t.leaf && t.name === name)) throw new Error(`graph ${this.name}: output name '${name}' clashes with a leaf`);
    this.outputs.set(name, t);
  }

  /** @internal used by apply(). */
  addNode(op: OpDef<any>, inputs: readonly Tensor[], attrs: Attrs, types: TensorType[]): Tensor[] {
    const node = new Node(this.nodes.length, op, inputs, attrs);
    node.outputs = types.map((tt, i) => new Tensor(this, this.nextId++, tt.dtype, tt.shape.map(canonDim), node, i, null, null));
    this.nodes.push(node);
    return node.outputs;
  }
}

export function toTyped(values: readonly number[], dtype: DType): TypedArray {
  switch (dtype) {
    case 'float32':
      return Float32Array.from(values);
    case 'float64':
      return Float64Array.from(values);
    case 'int64':
      return BigInt64Array.from(values.map((v) => BigInt(Math.trunc(v))));
    case 'int32':
      return Int32Array.from(values);
    case 'int8':
      return Int8Array.from(values);
    case 'uint8':
    case 'bool':
      return Uint8Array.from(values.map((v) => (dtype === 'bool' ? (v ? 1 : 0) : v)));
    case 'float16':
    case 'bfloat16':
      throw new Error(`constant: give ${dtype} data as a Uint16Array of raw bits`);
  }
}
