/**
 * Compile a Graph to an ONNX model (onnx-proto / protobufjs). Only nodes that an output needs are
 * emitted (dead-node elimination). Params with data in `weights` become initializers (inline, or in
 * an external data file for models over 2 GB); the others become graph inputs, fed at run time.
 */
import { closeSync, createWriteStream, openSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { once } from 'node:events';
import onnxProto from 'onnx-proto';
import { type Dim, dimCoef, dimSymbols } from './dims.js';
import type { DType, Graph, Lowering, Node, OnnxAttr, Tensor, TypedArray } from './ir.js';
import { ONNX_DTYPE } from './ops/util.js';

const { onnx } = onnxProto;

export const DEFAULT_OPSET = 18;
/** Beyond this an inline model cannot be serialized (protobuf's 2 GB limit). */
export const MAX_INLINE_BYTES = 2 ** 31 - 2 ** 24;

/** Weight data by param name: in memory, or already in an external data file (ExternalDataFile). */
export type WeightMap = ReadonlyMap<string, TypedArray | StoredWeight>;

/** A weight whose bytes are already in an external data file: that file's name, where, how long. */
export interface StoredWeight {
  location: string;
  offset: number;
  byteLength: number;
}

export const isStored = (w: TypedArray | StoredWeight): w is StoredWeight => !ArrayBuffer.isView(w);

/**
 * An ONNX external data file written one weight at a time, so weights can go to disk as they are
 * made (an int8 training base quantized while it is read) rather than all be held until the model
 * is written. The .onnx file must then be written to the same directory (ONNX resolves `location`
 * relative to it).
 */
export class ExternalDataFile {
  private fd: number | null;
  private offset = 0;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'w');
  }

  append(data: TypedArray): StoredWeight {
    if (this.fd === null) throw new Error(`${this.path}: external data file already closed`);
    this.offset += (4096 - (this.offset % 4096)) % 4096; // page-aligned so ORT can mmap
    const bytes = bytesOf(data);
    for (let done = 0; done < bytes.byteLength; ) done += writeSync(this.fd, bytes, done, bytes.byteLength - done, this.offset + done);
    const stored = { location: basename(this.path), offset: this.offset, byteLength: bytes.byteLength };
    this.offset += bytes.byteLength;
    return stored;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

export interface CompileOptions {
  /** Which graph outputs to emit (default: all); the rest of the graph is pruned accordingly. */
  outputs?: readonly string[];
  /** Params to bake in as initializers; params not listed here become graph inputs (feeds). */
  weights?: WeightMap;
  /** ai.onnx opset (>= 18). */
  opset?: number;
}

export interface CompiledModel {
  model: onnxProto.onnx.ModelProto;
  /** Graph input names in order: declared inputs, then params to be fed. */
  inputNames: string[];
  /** Param names that are graph inputs (must be fed). */
  fedParams: string[];
  outputNames: string[];
  /** Number of ONNX nodes. */
  nodeCount: number;
  /** Bytes of initializer data held in the model (not counting weights already in a data file). */
  initializerBytes: number;
}

const ATTR_TYPE = { f: 1, i: 2, s: 3, floats: 6, ints: 7 } as const;
const encoder = new TextEncoder();

function bytesOf(a: TypedArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function valueInfo(name: string, dtype: DType, shape: readonly Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ONNX_DTYPE[dtype],
        shape: {
          // products ('B*T') are fine as dim_param; sums and unknowns ('P+T', '?3') are left open
          dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : /^[\w*]+$/.test(d) ? { dimParam: d } : {})),
        },
      },
    },
  };
}

class OnnxLowering implements Lowering {
  readonly nodes: onnxProto.onnx.INodeProto[] = [];
  readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  initializerBytes = 0;
  private readonly tensorNames = new Map<Tensor, string>();
  private readonly constCache = new Map<string, string>();
  private readonly dimCache = new Map<string, string>();
  private counter = 0;
  constructor(
    readonly graph: Graph,
    readonly opset: number,
  ) {}

  hasName(t: Tensor): boolean {
    return this.tensorNames.has(t);
  }

  setName(t: Tensor, name: string): void {
    this.tensorNames.set(t, name);
  }

  name(t: Tensor): string {
    let n = this.tensorNames.get(t);
    if (!n) {
      n = t.name ?? `t${t.id}`;
      this.tensorNames.set(t, n);
    }
    return n;
  }

  fresh(hint = 'v'): string {
    return `_${hint}_${this.counter++}`;
  }

  emit(opType: string, inputs: string[], outputs: string[], attrs: Record<string, OnnxAttr> = {}, domain = ''): void {
    const attribute = Object.entries(attrs).map(([name, a]) => {
      const [kind, value] = Object.entries(a)[0] as [keyof typeof ATTR_TYPE, unknown];
      return { name, type: ATTR_TYPE[kind], [kind]: kind === 's' ? encoder.encode(value as string) : value };
    });
    this.nodes.push({ opType, input: inputs, output: outputs, attribute, domain, name: `${opType}_${this.nodes.length}` });
  }

  addInitializer(name: string, dtype: DType, dims: readonly number[], data: TypedArray | StoredWeight): void {
    if (isStored(data)) {
      const externalData = [
        { key: 'location', value: data.location },
        { key: 'offset', value: String(data.offset) },
        { key: 'length', value: String(data.byteLength) },
      ];
      this.initializers.push({ name, dims: [...dims], dataType: ONNX_DTYPE[dtype], dataLocation: onnx.TensorProto.DataLocation.EXTERNAL, externalData });
      return;
    }
    this.initializers.push({ name, dims: [...dims], dataType: ONNX_DTYPE[dtype], rawData: bytesOf(data) });
    this.initializerBytes += data.byteLength;
  }

  constInt64(values: readonly number[], scalar = false): string {
    const key = `i64:${scalar}:${values.join(',')}`;
    let n = this.constCache.get(key);
    if (!n) {
      n = this.fresh('c');
      this.addInitializer(n, 'int64', scalar ? [] : [values.length], BigInt64Array.from(values.map((v) => BigInt(v))));
      this.constCache.set(key, n);
    }
    return n;
  }

  constScalar(value: number, dtype: DType): string {
    const key = `${dtype}:${value}`;
    let n = this.constCache.get(key);
    if (!n) {
      n = this.fresh('c');
      const data =
        dtype === 'float32' ? Float32Array.of(value)
        : dtype === 'float64' ? Float64Array.of(value)
        : dtype === 'int64' ? BigInt64Array.of(BigInt(value))
        : dtype === 'int32' ? Int32Array.of(value)
        : dtype === 'bool' || dtype === 'uint8' ? Uint8Array.of(value)
        : undefined;
      if (!data) {
        // float16/bfloat16: cast from a float32 constant
        const f = this.constScalar(value, 'float32');
        this.emit('Cast', [f], [n], { to: { i: ONNX_DTYPE[dtype] } });
      } else this.addInitializer(n, dtype, [], data);
      this.constCache.set(key, n);
    }
    return n;
  }

  /** int64 [1] holding one dim at run time: products of symbols ('B*T'), sums ('P+T'), numbers. */
  private dimValue(d: Dim): string {
    if (typeof d === 'number') return this.constInt64([d]);
    const cached = this.dimCache.get(d);
    if (cached) return cached;
    let out: string;
    if (d.includes('+')) {
      const parts = d.split('+').map((p) => this.dimValue(/^\d+$/.test(p) ? Number(p) : p));
      out = parts.reduce((acc, p) => {
        const s = this.fresh('dim');
        this.emit('Add', [acc, p], [s]);
        return s;
      });
    } else {
      const parts = dimSymbols(d).map((sym) => {
        const src = this.graph.symbols.get(sym);
        if (!src) throw new Error(`compile: dim '${sym}' (in '${d}') is not a dim of any graph input, so it cannot be computed at run time`);
        const s = this.fresh(`dim_${sym}`);
        this.emit('Shape', [this.name(src.input)], [s], { start: { i: src.axis }, end: { i: src.axis + 1 } });
        return s;
      });
      const coef = dimCoef(d);
      if (coef !== 1) parts.push(this.constInt64([coef]));
      out = parts.reduce((acc, p) => {
        const s = this.fresh('dim');
        this.emit('Mul', [acc, p], [s]);
        return s;
      });
    }
    this.dimCache.set(d, out);
    return out;
  }

  shapeOf(dims: readonly Dim[]): string {
    if (dims.every((d) => typeof d === 'number')) return this.constInt64(dims as number[]);
    const key = `shape:${dims.join(',')}`;
    const cached = this.dimCache.get(key);
    if (cached) return cached;
    const s = this.fresh('shape');
    this.emit('Concat', dims.map((d) => this.dimValue(d)), [s], { axis: { i: 0 } });
    this.dimCache.set(key, s);
    return s;
  }
}

/** Nodes needed to compute the given tensors, in graph order. */
export function liveNodes(graph: Graph, roots: readonly Tensor[]): Node[] {
  const live = new Set<Node>();
  const stack = roots.map((t) => t.producer).filter((n): n is Node => n !== null);
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (live.has(n)) continue;
    live.add(n);
    for (const t of n.inputs) if (t.producer && !live.has(t.producer)) stack.push(t.producer);
  }
  return graph.nodes.filter((n) => live.has(n));
}

/** Build the ONNX ModelProto for a graph. */
export function compile(graph: Graph, opts: CompileOptions = {}): CompiledModel {
  const opset = opts.opset ?? DEFAULT_OPSET;
  if (opset < 18) throw new Error(`compile: opset ${opset} is not supported (>= 18)`);
  const outputNames = opts.outputs ? [...opts.outputs] : [...graph.outputs.keys()];
  const outputs = outputNames.map((n) => {
    const t = graph.outputs.get(n);
    if (!t) throw new Error(`compile: graph ${graph.name} has no output '${n}' (has ${[...graph.outputs.keys()].join(', ')})`);
    return t;
  });
  if (outputs.length === 0) throw new Error(`compile: graph ${graph.name} has no outputs`);
  const ctx = new OnnxLowering(graph, opset);
  const nodes = liveNodes(graph, outputs);

  // op outputs take their output name directly (once); everything else gets an Identity
  const needsIdentity: [Tensor, string][] = [];
  outputs.forEach((t, i) => {
    const named = ctx.hasName(t);
    if (t.producer && !named) ctx.setName(t, outputNames[i]);
    else needsIdentity.push([t, outputNames[i]]);
  });

  const used = new Set<Tensor>(outputs.filter((t) => t.leaf));
  for (const n of nodes) for (const t of n.inputs) if (t.leaf) used.add(t);

  const inputs = graph.inputs.map((t) => valueInfo(t.name!, t.dtype, t.shape));
  const fedParams: string[] = [];
  for (const [name, p] of graph.params) {
    if (!used.has(p)) continue;
    const data = opts.weights?.get(name);
    if (data) {
      checkWeight(name, p, data);
      ctx.addInitializer(name, p.dtype, p.shape as number[], data);
    } else {
      inputs.push(valueInfo(name, p.dtype, p.shape));
      fedParams.push(name);
    }
  }
  for (const [t, { data }] of graph.constants) if (used.has(t)) ctx.addInitializer(ctx.name(t), t.dtype, t.shape as number[], data);

  for (const n of nodes) {
    n.op.onnx(ctx, n.inputs.map((t) => ctx.name(t)), n.outputs.map((t) => ctx.name(t)), n as never);
  }
  for (const [t, name] of needsIdentity) ctx.emit('Identity', [ctx.name(t)], [name]);

  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'persona-lab',
    opsetImport: [
      { domain: '', version: opset },
      { domain: 'com.microsoft', version: 1 },
    ],
    graph: {
      name: graph.name,
      node: ctx.nodes,
      initializer: ctx.initializers,
      input: inputs,
      output: outputs.map((t, i) => valueInfo(outputNames[i], t.dtype, t.shape)),
    },
  });
  return {
    model,
    inputNames: inputs.map((i) => i.name!),
    fedParams,
    outputNames,
    nodeCount: ctx.nodes.length,
    initializerBytes: ctx.initializerBytes,
  };
}

const ELEM_BYTES: Record<DType, number> = { float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, int8: 1, uint8: 1, bool: 1 };

function checkWeight(name: string, p: Tensor, data: TypedArray | StoredWeight): void {
  const n = (p.shape as number[]).reduce((a, b) => a * b, 1);
  if (data.byteLength !== n * ELEM_BYTES[p.dtype]) {
    throw new Error(`weight ${name}: ${data.byteLength} bytes, expected ${p.dtype}[${p.shape.join(', ')}] (${n * ELEM_BYTES[p.dtype]} bytes)`);
  }
}

/** Serialize inline (throws past protobuf's 2 GB limit: use external data or feed the weights). */
export function toBytes(compiled: CompiledModel): Uint8Array {
  if (compiled.initializerBytes > MAX_INLINE_BYTES) {
    throw new Error(`compile: ${(compiled.initializerBytes / 2 ** 30).toFixed(2)} GiB of initializers exceed protobuf's 2 GB limit; write with external data (writeModel) or feed the weights`);
  }
  return onnx.ModelProto.encode(compiled.model).finish();
}

/**
 * Write the model to `path`; with `external`, initializers of at least `threshold` bytes go to
 * `<path>.data` beside it (ONNX external data), so models over 2 GB work. ORT must then load the
 * model from the path (it resolves the data file relative to it).
 */
export async function writeModel(compiled: CompiledModel, path: string, external?: { threshold?: number }): Promise<void> {
  const { writeFile } = await import('node:fs/promises');
  if (!external) return writeFile(path, toBytes(compiled));
  const threshold = external.threshold ?? 1024;
  const dataPath = `${path}.data`;
  const stream = createWriteStream(dataPath);
  let offset = 0;
  const inits = compiled.model.graph!.initializer as onnxProto.onnx.TensorProto[];
  const moved: [onnxProto.onnx.TensorProto, Uint8Array][] = [];
  for (const init of inits) {
    const raw = init.rawData as Uint8Array;
    if (!raw || raw.byteLength < threshold) continue;
    const pad = (4096 - (offset % 4096)) % 4096; // page-aligned so ORT can mmap
    if (pad && !stream.write(new Uint8Array(pad))) await once(stream, 'drain');
    offset += pad;
    if (!stream.write(raw)) await once(stream, 'drain');
    moved.push([init, raw]);
    init.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    init.externalData = [
      { key: 'location', value: basename(dataPath) },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(raw.byteLength) },
    ];
    init.rawData = new Uint8Array(0);
    offset += raw.byteLength;
  }
  stream.end();
  await once(stream, 'finish');
  try {
    await writeFile(path, onnx.ModelProto.encode(compiled.model).finish());
  } finally {
    // leave the in-memory model as it was
    for (const [init, raw] of moved) {
      init.rawData = raw;
      init.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
      init.externalData = [];
    }
  }
}
