/**
 * LoRA adapters (PEFT format) applied without merging, several at once, each with its own scale:
 *   y = x W^T (+ b) + sum_a s_a * (x A_a^T) B_a^T,   s_a = scale_a * lora_alpha / r  (rsLoRA: / sqrt(r))
 * A and B are extra graph params (`lora.<a>.<module>.A|B`, checkpoint layouts [r, in] and [out, r],
 * alpha / r folded into B), the scales are inputs, so changing a scale needs no recompilation and
 * training (next issue) can differentiate the same params. mergeLora() folds adapters into base
 * weights instead. Files are read and written by src/engine/io/peft.ts.
 */
import { type Graph, type Tensor, add, linear, mul } from '../graph/index.js';
import { type LoraAdapter, type ModelConfig, checkAdapterShapes, loadLoraAdapter, loraDelta, loraScale } from '../io/index.js';
import { type Linear, plainLinear } from '../models/llama.js';

export type { LoraAdapter } from '../io/index.js';

/** One adapter's structure: which modules it adapts and with what rank (its values are weights). */
export interface LoraSpec {
  targets: Record<string, { rank: number }>;
}

/** Reads a PEFT adapter directory (src/engine/io/peft.ts) and checks it fits the base model. */
export function loadAdapterFor(dir: string, config: ModelConfig): LoraAdapter {
  const adapter = loadLoraAdapter(dir);
  checkAdapterShapes(adapter, config, dir);
  return adapter;
}

export function loraSpec(adapter: LoraAdapter): LoraSpec {
  return { targets: Object.fromEntries([...adapter.modules].map(([m, w]) => [m, { rank: w.rank }])) };
}

export function loraSignature(specs: readonly LoraSpec[] | undefined): string {
  return (specs ?? []).map((s) => Object.entries(s.targets).map(([m, t]) => `${m}:${t.rank}`).join(',')).join(';');
}

export const loraNames = {
  a: (adapter: number, module: string) => `lora.${adapter}.${module}.A`,
  b: (adapter: number, module: string) => `lora.${adapter}.${module}.B`,
  scale: (adapter: number) => `lora_scale_${adapter}`,
};

/**
 * A projection with every adapter's delta added (scales are scalar inputs lora_scale_<a>) to the
 * base projection (default: the plain float one).
 */
export function loraLinear(g: Graph, specs: readonly LoraSpec[], base: Linear = plainLinear(g)): Linear {
  const scales = specs.map((_, a) => g.input(loraNames.scale(a), 'float32', []));
  return (x, module, inFeatures, outFeatures, bias) => {
    let y: Tensor = base(x, module, inFeatures, outFeatures, bias);
    specs.forEach((spec, a) => {
      const target = spec.targets[module];
      if (!target) return;
      const A = g.param(loraNames.a(a, module), [target.rank, inFeatures]);
      const B = g.param(loraNames.b(a, module), [outFeatures, target.rank]);
      // scaling the rank-r intermediate costs r/out of scaling the output
      y = add(y, linear(mul(linear(x, A), scales[a]), B));
    });
    return y;
  };
}

/** The adapters' params for a session's weights; each module's alpha / r is folded into its B. */
export function loraWeights(adapters: readonly LoraAdapter[]): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  adapters.forEach((adapter, a) => {
    for (const [module, m] of adapter.modules) {
      const s = loraScale(m, adapter.config.useRslora);
      out.set(loraNames.a(a, module), m.A);
      out.set(loraNames.b(a, module), Float32Array.from(m.B, (x) => x * s));
    }
  });
  return out;
}

/** W + sum_a scale_a * alpha/r * B_a A_a for every adapted module, as new arrays (the inputs are not modified). */
export function mergeLora(
  weights: ReadonlyMap<string, Float32Array>,
  adapters: readonly { adapter: LoraAdapter; scale: number }[],
): Map<string, Float32Array> {
  const out = new Map(weights);
  for (const { adapter, scale } of adapters) {
    for (const [module, m] of adapter.modules) {
      const name = `${module}.weight`;
      const base = out.get(name);
      if (!base) throw new Error(`mergeLora: base weight ${name} not loaded`);
      const delta = loraDelta(m, adapter.config.useRslora, scale);
      const merged = base === weights.get(name) ? Float32Array.from(base) : base;
      for (let i = 0; i < merged.length; i++) merged[i] += delta[i];
      out.set(name, merged);
    }
  }
  return out;
}
