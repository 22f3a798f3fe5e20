/**
 * An onnxruntime-node session for a Graph: compiles it, places weights as initializers (faster runs)
 * or feeds (5-8x faster creation, less memory, required past 2 GB unless external data is used),
 * and runs it with plain typed arrays. Only the requested outputs are fetched: ORT copies outputs
 * (~2 GB/s) but not inputs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { type CompiledModel, type WeightMap, compile, isStored, writeModel } from '../graph/onnx.js';
import { type DType, type Graph, type TypedArray, toTyped } from '../graph/ir.js';

export type WeightPlacement = 'initializer' | 'feed' | 'external';

export interface SessionOptions {
  /** Param data by name. Params missing here must be fed on every run (e.g. LoRA weights being trained). */
  weights?: WeightMap;
  /**
   * 'initializer' (default): baked into the model (13-20% faster runs; 2 GB limit).
   * 'feed': passed as inputs on every run (no copy; fast creation; no size limit).
   * 'external': initializers in an ONNX external data file (for models over 2 GB).
   */
  weightsAs?: WeightPlacement;
  /** Which graph outputs the session can produce (default: all); the graph is pruned to them. */
  outputs?: readonly string[];
  /** Intra-op threads (default: ORT's choice, all cores). */
  threads?: number;
  interOpThreads?: number;
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** ORT's CPU memory arena (default on: faster; off saved 1.4 GB but was 1.7x slower). */
  arena?: boolean;
  /**
   * ORT's memory-pattern planner. Default: on, except for graphs with a backward (grad() was
   * called): off cut a 6-layer LoRA step's peak memory (B8 x 256, SmolLM2 widths) from 3.3 to
   * 2.2 GiB at no measured cost.
   */
  memPattern?: boolean;
  /** Execution providers in preference order (default ['cpu']); see availableProviders(). */
  executionProviders?: string[];
  /**
   * Where to keep the .onnx file (default: a temporary directory removed after loading). Weights
   * already in an external data file (StoredWeight) need it written beside that file.
   */
  modelPath?: string;
  opset?: number;
  logSeverity?: 0 | 1 | 2 | 3 | 4;
  /** Write the model as ORT optimized it (fusions applied) to this path, to see what runs. */
  optimizedModelPath?: string;
  /**
   * Let ORT pre-pack constant MatMul weights into its GEMM layout at creation (default true). Off
   * saves a packed copy of every baked-in weight (each layout it is multiplied in) for a little
   * packing work per run.
   */
  prepacking?: boolean;
  /** Profile every node's run time to <prefix>_<date>.json (Chrome trace format); see endProfiling(). */
  profilePrefix?: string;
}

/** A tensor as plain data; number[] is converted to the input's dtype. */
export interface TensorData {
  data: TypedArray | readonly number[];
  dims: readonly number[];
}

export type Feed = TensorData | ort.Tensor;

const ORT_TYPE: Record<DType, ort.Tensor.Type> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float16',
  bfloat16: 'bfloat16' as ort.Tensor.Type,
  int64: 'int64',
  int32: 'int32',
  int8: 'int8',
  uint8: 'uint8',
  bool: 'bool',
};

/** Execution providers this onnxruntime-node build offers. */
export function availableProviders(): string[] {
  return ort.listSupportedBackends().map((b) => b.name);
}

function toOrtTensor(dtype: DType, feed: Feed): ort.Tensor {
  if (feed instanceof ort.Tensor) return feed;
  const { data, dims } = feed;
  const typed = Array.isArray(data) ? toTyped(data as unknown as number[], dtype) : (data as TypedArray);
  return new ort.Tensor(ORT_TYPE[dtype], typed as never, dims as number[]);
}

export class Session {
  private constructor(
    readonly ort: ort.InferenceSession,
    readonly compiled: CompiledModel,
    private readonly inputTypes: Map<string, DType>,
    private fedWeights: Map<string, ort.Tensor>,
  ) {}

  /** Compile `graph` and open an ORT session for it. */
  static async create(graph: Graph, opts: SessionOptions = {}): Promise<Session> {
    const placement = opts.weightsAs ?? 'initializer';
    const weights = opts.weights ?? new Map();
    const compiled = compile(graph, {
      outputs: opts.outputs,
      weights: placement === 'feed' ? undefined : weights,
      opset: opts.opset,
    });
    const dir = opts.modelPath ? null : await mkdtemp(join(tmpdir(), 'persona-lab-onnx-'));
    const path = opts.modelPath ?? join(dir!, `${graph.name.replace(/[^\w.-]/g, '_')}.onnx`);
    let session: ort.InferenceSession;
    try {
      // loading from a path beat an in-memory buffer here, and external data needs a path
      await writeModel(compiled, path, placement === 'external' ? {} : undefined);
      session = await ort.InferenceSession.create(path, {
        ...(opts.threads !== undefined && { intraOpNumThreads: opts.threads }),
        ...(opts.interOpThreads !== undefined && { interOpNumThreads: opts.interOpThreads }),
        graphOptimizationLevel: opts.optimization ?? 'all',
        enableCpuMemArena: opts.arena ?? true,
        enableMemPattern: opts.memPattern ?? !graph.hasBackward,
        executionProviders: opts.executionProviders ?? ['cpu'],
        logSeverityLevel: opts.logSeverity ?? 3,
        ...(opts.optimizedModelPath !== undefined && { optimizedModelFilePath: opts.optimizedModelPath }),
        ...(opts.prepacking === false && { extra: { session: { disable_prepacking: '1' } } }),
        ...(opts.profilePrefix !== undefined && { enableProfiling: true, profileFilePrefix: opts.profilePrefix }),
      });
    } finally {
      if (dir) await rm(dir, { recursive: true, force: true });
    }
    // ORT holds the baked-in weights now: the model proto lets go of its views of the caller's arrays,
    // so weights made only for this session (int8 copies, say) can be freed
    if (placement !== 'feed') for (const init of compiled.model.graph!.initializer ?? []) if (init.rawData?.byteLength) init.rawData = new Uint8Array(0);
    const inputTypes = new Map<string, DType>();
    for (const t of graph.inputs) inputTypes.set(t.name!, t.dtype);
    for (const [name, p] of graph.params) inputTypes.set(name, p.dtype);
    const s = new Session(session, compiled, inputTypes, new Map());
    if (placement === 'feed') s.setWeights(weights);
    return s;
  }

  get inputNames(): readonly string[] {
    return this.ort.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.ort.outputNames;
  }

  /** Fed params the session still needs on every run (not given as weights). */
  get missingParams(): string[] {
    return this.compiled.fedParams.filter((p) => !this.fedWeights.has(p));
  }

  /** Set or replace fed weights (weightsAs 'feed', or params compiled as inputs, e.g. LoRA being trained). */
  setWeights(weights: WeightMap): void {
    for (const [name, data] of weights) {
      if (!this.compiled.fedParams.includes(name)) continue;
      if (isStored(data)) throw new Error(`session ${this.compiled.model.graph!.name}: weight ${name} is in an external data file, so it cannot be fed`);
      const dtype = this.inputTypes.get(name)!;
      const dims = this.compiled.model.graph!.input!.find((i) => i.name === name)!.type!.tensorType!.shape!.dim!.map((d) => Number(d.dimValue));
      this.fedWeights.set(name, toOrtTensor(dtype, { data, dims }));
    }
  }

  /**
   * Run with the given inputs (and any params not baked in); returns the requested outputs
   * (default: all the session has).
   */
  async run(feeds: Record<string, Feed>, outputs?: readonly string[]): Promise<Record<string, ort.Tensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const name of this.ort.inputNames) {
      const feed = feeds[name] ?? this.fedWeights.get(name);
      if (!feed) throw new Error(`session ${this.compiled.model.graph!.name}: missing input '${name}'`);
      ortFeeds[name] = toOrtTensor(this.inputTypes.get(name)!, feed);
    }
    for (const name of Object.keys(feeds)) {
      if (!this.inputTypes.has(name)) throw new Error(`session ${this.compiled.model.graph!.name}: unknown input '${name}' (inputs: ${this.ort.inputNames.join(', ')})`);
    }
    return outputs ? this.ort.run(ortFeeds, [...outputs]) : this.ort.run(ortFeeds);
  }

  async release(): Promise<void> {
    await this.ort.release();
  }
}

/** The data of an output tensor as a Float32Array (converting float64). */
export function floats(t: ort.Tensor): Float32Array {
  return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as unknown as ArrayLike<number>, Number);
}
