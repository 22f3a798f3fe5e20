/**
 * Everything a stage will read, checked before anything is written: local model directories
 * (config.json with a supported architecture, a tokenizer.json that parses, safetensors files that
 * are whole), adapters whose shapes fit their base, the preventative-steering vector (the steer
 * stage's `vector.safetensors` or JSON, relative to the experiment file), GRPO classifier rewards
 * that can be built, and the datasets a trained cell reads. Each failure is one InputError naming
 * the file and the field; `validate` and every stage run these checks first.
 */
import { checkStages } from './continued.js';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, isAbsolute, join, resolve } from 'node:path';
import { InputError } from '../core/errors.js';
import { resolveModelRef, type LocalModelRef, type ModelRef } from '../providers/index.js';
import { trainOptionsSchema, type PreventativeSteering } from '../train/options.js';
import type { LoadedExperiment } from './load.js';
import { METHODS } from './methods/index.js';
import { trainingFile } from '../data/index.js';
import { REWARD_CLASSIFIERS } from './reward-classifiers.js';
import { datasetSlugs } from './cells.js';
import { seedDataDir } from './seed-data.js';

/** The local model directory and adapters a reference names, or undefined for an endpoint. */
async function localRef(ref: ModelRef): Promise<LocalModelRef | undefined> {
  const resolved = resolveModelRef(ref);
  return resolved.provider === 'local' ? (resolved.ref as LocalModelRef) : undefined;
}

/** The rows of a LoRA weight, its columns: [out, in] of the base projection a module name ends in. */
function projectionShape(config: { hiddenSize: number; numHeads: number; numKvHeads: number; headDim: number; intermediateSize: number }, module: string): [number, number] | undefined {
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  const shapes: Record<string, [number, number]> = {
    q_proj: [q, config.hiddenSize],
    k_proj: [kv, config.hiddenSize],
    v_proj: [kv, config.hiddenSize],
    o_proj: [config.hiddenSize, q],
    gate_proj: [config.intermediateSize, config.hiddenSize],
    up_proj: [config.intermediateSize, config.hiddenSize],
    down_proj: [config.hiddenSize, config.intermediateSize],
  };
  return shapes[module];
}

/**
 * A Hugging Face model directory the engine can load: config.json (supported architecture),
 * tokenizer.json (JSON with a `model`), and every *.safetensors whole. Returns the parsed config.
 */
export async function checkModelDir(file: string, field: string, dir: string) {
  const { loadModelConfig } = await import('../engine/io/config.js');
  const { SafetensorsFile } = await import('../engine/io/safetensors.js');
  if (/\.gguf$/i.test(dir)) {
    // A GGUF file carries its config and tokenizer: reading them checks the header and every tensor's shape.
    if (!existsSync(dir)) throw new InputError(file, field, `a GGUF file at ${dir} (not found)`);
    const { openGgufModel } = await import('../engine/io/gguf-model.js');
    try {
      const model = openGgufModel(dir);
      model.gguf.close();
      return model.config;
    } catch (error) {
      throw new InputError(dir, '(file)', `a GGUF model file (${(error as Error).message})`);
    }
  }
  if (!existsSync(join(dir, 'config.json'))) throw new InputError(file, field, `a Hugging Face model directory with config.json at ${dir}`);
  const config = loadModelConfig(dir);
  const tokenizer = join(dir, 'tokenizer.json');
  if (existsSync(tokenizer)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(tokenizer, 'utf8'));
    } catch (error) {
      throw new InputError(tokenizer, '(root)', `a JSON tokenizer (${(error as Error).message})`);
    }
    const model = (parsed as { model?: unknown } | null)?.model;
    if (typeof model !== 'object' || model === null) throw new InputError(tokenizer, 'model', 'a tokenizer model object (a Hugging Face tokenizer.json)');
  }
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.safetensors'))) SafetensorsFile.open(join(dir, name)).close();
  return config;
}

/** A PEFT LoRA adapter whose every A/B matrix fits the base model's projection it targets. */
export async function checkAdapterDir(dir: string, config: Awaited<ReturnType<typeof checkModelDir>>): Promise<void> {
  const { SafetensorsFile } = await import('../engine/io/safetensors.js');
  const weights = join(dir, 'adapter_model.safetensors');
  if (!existsSync(join(dir, 'adapter_config.json'))) throw new InputError(dir, 'adapter_config.json', 'a PEFT adapter directory (adapter_config.json not found)');
  if (!existsSync(weights)) throw new InputError(dir, 'adapter_model.safetensors', 'a PEFT adapter directory (adapter_model.safetensors not found)');
  const file = SafetensorsFile.open(weights);
  try {
    for (const name of file.names()) {
      const m = /layers\.(\d+)\..*?(\w+_proj)\.lora_([AB])\.weight$/.exec(name);
      if (!m) continue;
      const [, layer, module, factor] = m;
      const shape = file.info(name).shape;
      const base = projectionShape(config, module);
      if (Number(layer) >= config.numLayers) throw new InputError(weights, name, `a layer below the base model's ${config.numLayers}`);
      if (!base || shape.length !== 2) continue;
      const ok = factor === 'A' ? shape[1] === base[1] : shape[0] === base[0];
      if (!ok) throw new InputError(weights, name, `a ${factor === 'A' ? `[rank, ${base[1]}]` : `[${base[0]}, rank]`} matrix for the base model's ${module} (found [${shape.join(', ')}])`);
    }
  } finally {
    file.close();
  }
}

/** A local model reference's directory and adapters; endpoints pass. */
export async function checkModelRef(file: string, field: string, ref: ModelRef): Promise<void> {
  const local = await localRef(ref);
  if (!local) return;
  const config = await checkModelDir(file, field, local.path);
  for (const adapter of local.adapters) await checkAdapterDir(adapter.path, config);
}

/** A steering vector path, relative to the experiment file. */
export function steeringVectorPath(loaded: LoadedExperiment, steering: PreventativeSteering): string {
  return isAbsolute(steering.vector) ? steering.vector : resolve(loaded.file, '..', steering.vector);
}

/**
 * The preventative-steering vector at its layer: the steer stage's `.safetensors` (or `.json`)
 * vectors file, or a plain JSON [hidden] / [layers][hidden] array.
 */
export async function readPreventativeVector(loaded: LoadedExperiment, field: string, steering: PreventativeSteering, hidden: number): Promise<Float32Array> {
  const path = steeringVectorPath(loaded, steering);
  if (!existsSync(path)) throw new InputError(loaded.file, `${field}.vector`, `a steering vector file (not found: ${path})`);
  if (extname(path) === '.safetensors') {
    const { loadVectors, vectorAt } = await import('../steer/vectors.js');
    const vectors = loadVectors(path);
    if (!vectors.layers.includes(steering.layer)) throw new InputError(path, 'layers', `a vector for layer ${steering.layer} (${field}.layer; the file has ${vectors.layers.join(', ')})`);
    const v = vectorAt(vectors, steering.layer);
    if (v.length !== hidden) throw new InputError(path, 'vectors', `${hidden} numbers per layer (the model's hidden size; found ${v.length})`);
    return v;
  }
  const raw = (() => {
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as unknown;
    } catch {
      return undefined;
    }
  })();
  // The steer stage's JSON vectors file carries its layers; a plain array is indexed by layer.
  if (raw && typeof raw === 'object' && !Array.isArray(raw) && Array.isArray((raw as { layers?: unknown }).layers)) {
    const { loadVectors, vectorAt } = await import('../steer/vectors.js');
    const vectors = loadVectors(path);
    if (!vectors.layers.includes(steering.layer)) throw new InputError(path, 'layers', `a vector for layer ${steering.layer} (${field}.layer; the file has ${vectors.layers.join(', ')})`);
    return vectorAt(vectors, steering.layer);
  }
  const { readSteeringVector } = await import('../train/setup.js');
  return readSteeringVector(path, steering.layer, hidden);
}

const TRAIN_METHODS = ['sft', 'dpo', 'grpo'] as const;

/**
 * What training reads besides its datasets: the base model, each method's steering vector, the
 * GRPO classifier rewards. Returns the steering vectors by method (handed to the trainers).
 */
export async function checkTrainInputs(loaded: LoadedExperiment, basePath: string): Promise<Partial<Record<(typeof TRAIN_METHODS)[number], Float32Array>>> {
  const config = await checkModelDir(loaded.file, 'models.subject', basePath);
  const train = trainOptionsSchema.parse(loaded.experiment.train ?? {});
  const vectors: Partial<Record<(typeof TRAIN_METHODS)[number], Float32Array>> = {};
  for (const method of TRAIN_METHODS) {
    const steering = train[method].steering;
    if (steering) vectors[method] = await readPreventativeVector(loaded, `train.${method}.steering`, steering, config.hiddenSize);
  }
  for (const [i, signal] of train.grpo.rewards.entries()) {
    if (signal.kind !== 'classifier') continue;
    const field = `train.grpo.rewards[${i}].classifier`;
    if (!Object.hasOwn(REWARD_CLASSIFIERS, signal.classifier!)) throw new InputError(loaded.file, field, `one of the reward classifiers (${Object.keys(REWARD_CLASSIFIERS).join(', ')}), found "${signal.classifier}"`);
    REWARD_CLASSIFIERS[signal.classifier!].check?.(loaded, field);
  }
  return vectors;
}

/** The dataset files trained cells read (as the data stage's manifests name them): each must exist and hold rows. */
export function checkDatasetFiles(loaded: LoadedExperiment, cells: { persona: string; slug: string; method: string; format: string | null; seed: number; members?: string[] }[]): void {
  const datasets = join(loaded.runDir, 'datasets');
  for (const c of cells) {
    const names = c.members ?? [c.persona];
    for (const [i, slug] of datasetSlugs(c).entries()) {
      for (const dataset of METHODS[c.method]?.datasets(c.format) ?? []) {
        if (!trainingFile(datasets, slug, dataset, seedDataDir(loaded, c.seed))) {
          throw new InputError(join(seedDataDir(loaded, c.seed), slug), dataset, `the ${dataset} dataset of ${names[i]} (not found or empty: run \`persona-lab generate ${loaded.file}\` first, or check the data stage's manifest for what its filters dropped)`);
        }
      }
    }
  }
}

/** Every local model the experiment names (roles and run.subjects): directories and adapters whole. */
export async function checkModelInputs(loaded: LoadedExperiment): Promise<void> {
  for (const [role, ref] of Object.entries(loaded.experiment.models)) if (ref !== undefined) await checkModelRef(loaded.file, `models.${role}`, ref);
  for (const [i, extra] of (loaded.experiment.run?.subjects ?? []).entries()) await checkModelRef(loaded.file, `run.subjects[${i}].model`, extra.model);
}

/** `validate`'s deeper check of an experiment: models, and what training reads when it trains. */
export async function checkExperimentInputs(loaded: LoadedExperiment): Promise<void> {
  await checkModelInputs(loaded);
  if (loaded.experiment.run) checkStages(loaded.experiment.run, loaded.file);
  const subject = await localRef(loaded.experiment.models.subject);
  if (subject && (loaded.experiment.run?.methods ?? ['sft']).length > 0) await checkTrainInputs(loaded, subject.path);
}
