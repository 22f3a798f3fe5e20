/**
 * `persona-lab tiny build`: makes the bundled tiny chat model (models/tiny/) from nothing. The steps:
 *   1. generate the seeded dialogue corpus (./corpus.ts);
 *   2. train a byte-level BPE tokenizer on its text (src/engine/io), ChatML template, <|im_end|> as EOS;
 *   3. write a Llama config and HF-style random weights (normal std 0.02, norms 1) into a staging dir;
 *   4. pretrain every weight with the project's own trainer (src/train trainSft, fullParameter) on the
 *      dialogues, packed, loss on assistant tokens, AdamW with warmup and cosine decay;
 *   5. write the final directory: config, weights (f16 by default), tokenizer, generation config, a
 *      model card with the loss curve.
 * The same options and seed give the same bytes (the trainer is deterministic for a thread count).
 * The run directory holds checkpoints, so a killed build resumes where it stopped.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHATML_TEMPLATE, type ModelConfig, parseModelConfig, SafetensorsModel, TextTokenizer, trainBpeTokenizer, writeSafetensors, writeTokenizerFiles } from '../../engine/io/index.js';
import { architectureOf } from '../../engine/models/index.js';
import { type SftChatRow, trainSft, type StepLog } from '../../train/index.js';
import { sftOptionsSchema } from '../../train/options.js';
import { Rng } from '../../train/rng.js';
import { type CorpusExample, generateCorpus } from './corpus.js';
import { modelCard } from './card.js';
import { type QualityResult, runQualityCheck } from './quality.js';

export { generateCorpus, generateExample, seededRandom, type CorpusExample } from './corpus.js';
export { qualityItems, runQualityCheck, type QualityItem, type QualityResult } from './quality.js';

export const SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] as const;

export interface TinyModelShape {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  intermediateSize: number;
  maxPositionEmbeddings: number;
  ropeTheta: number;
}

/** The shape of the committed model (docs/tiny-model.md says how it was chosen). */
export const DEFAULT_SHAPE: TinyModelShape = {
  vocabSize: 2048,
  hiddenSize: 128,
  numLayers: 4,
  numHeads: 4,
  numKvHeads: 2,
  intermediateSize: 352,
  maxPositionEmbeddings: 512,
  ropeTheta: 10000,
};

export interface TinyBuildOptions {
  /** The finished model directory (replaced). */
  outDir: string;
  /** Seeds the corpus, the initial weights and the data order. */
  seed?: number;
  /** Dialogues generated for the corpus. */
  examples?: number;
  /** Optimizer steps. */
  steps?: number;
  shape?: Partial<TinyModelShape>;
  /** Packed rows per optimizer step and tokens per row. */
  batchSize?: number;
  seqLength?: number;
  lr?: number;
  warmupSteps?: number;
  weightDecay?: number;
  /**
   * Checkpoints, the step log and the staging model; default `<outDir>.build`. A killed build rerun
   * with the same options resumes from it; it is removed after a successful build unless keepWorkDir.
   */
  workDir?: string;
  keepWorkDir?: boolean;
  /** ORT threads (the result is reproducible for a fixed count); default 2. */
  threads?: number;
  /** Weight dtype in the final directory. */
  dtype?: 'F16' | 'F32';
  checkpointEvery?: number;
}

export interface TinyBuildProgress {
  stage: 'corpus' | 'tokenizer' | 'init' | 'train' | 'write' | 'quality';
  step?: number;
  totalSteps?: number;
  loss?: number;
  message?: string;
}

export interface TinyBuildResult {
  outDir: string;
  parameters: number;
  corpusTokens: number;
  trainedTokens: number;
  steps: number;
  firstLoss: number | null;
  finalLoss: number | null;
  seconds: number;
  log: StepLog[];
}

/** What the build records in its model card and tiny-build.json (everything needed to redo it). */
export interface TinyBuildRecord {
  options: Required<Omit<TinyBuildOptions, 'outDir' | 'workDir' | 'keepWorkDir' | 'shape'>> & { shape: TinyModelShape };
  parameters: number;
  corpusKinds: Record<string, number>;
  /** Tokens of one pass over the corpus rendered with the chat template. */
  corpusTokens: number;
  /** Tokens the training steps read (packed rows, padding excluded). */
  trainedTokens: number;
  /** Seconds in training steps (summed over resumed runs). */
  trainSeconds: number;
  /** [step, mean loss of the steps since the previous point], about 50 points. */
  lossCurve: [number, number][];
}

/** The options with defaults filled in (what the build record stores). */
export function resolveOptions(o: TinyBuildOptions): TinyBuildRecord['options'] {
  return {
    seed: o.seed ?? 1,
    examples: o.examples ?? 20000,
    steps: o.steps ?? 1000,
    shape: { ...DEFAULT_SHAPE, ...o.shape },
    batchSize: o.batchSize ?? 8,
    seqLength: o.seqLength ?? 256,
    lr: o.lr ?? 3e-3,
    warmupSteps: o.warmupSteps ?? 40,
    weightDecay: o.weightDecay ?? 0.1,
    threads: o.threads ?? 2,
    dtype: o.dtype ?? 'F16',
    checkpointEvery: o.checkpointEvery ?? 100,
  };
}

/** The text the tokenizer is trained on: every message and the role names the template writes. */
export function tokenizerLines(corpus: readonly CorpusExample[]): string[] {
  return [...corpus.flatMap((e) => e.messages.map((m) => m.content)), 'system', 'user', 'assistant'];
}

/** config.json of a Llama model with this shape and tokenizer ids. */
export function llamaConfig(shape: TinyModelShape, ids: { bos: number; eos: number; pad: number }): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: shape.vocabSize,
    hidden_size: shape.hiddenSize,
    intermediate_size: shape.intermediateSize,
    num_hidden_layers: shape.numLayers,
    num_attention_heads: shape.numHeads,
    num_key_value_heads: shape.numKvHeads,
    head_dim: shape.hiddenSize / shape.numHeads,
    hidden_act: 'silu',
    max_position_embeddings: shape.maxPositionEmbeddings,
    initializer_range: 0.02,
    rms_norm_eps: 1e-5,
    rope_theta: shape.ropeTheta,
    rope_scaling: null,
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    tie_word_embeddings: true,
    bos_token_id: ids.bos,
    eos_token_id: ids.eos,
    pad_token_id: ids.pad,
    torch_dtype: 'float32',
    use_cache: true,
  };
}

/**
 * HF's init, over the tensors the config's architecture lists: every linear and the embedding
 * ~ N(0, 0.02), RMSNorm weights 1, biases 0 (a tied head is not stored).
 */
export function initialWeights(config: ModelConfig, seed: number): { name: string; shape: number[]; data: Float32Array }[] {
  const rng = Rng.seeded(seed ^ 0x7179);
  const normal = (n: number) => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      // Box-Muller: two normals per pair of uniforms
      const r = Math.sqrt(-2 * Math.log(1 - rng.uniform()));
      const t = 2 * Math.PI * rng.uniform();
      out[i] = 0.02 * r * Math.cos(t);
      if (i + 1 < n) out[i + 1] = 0.02 * r * Math.sin(t);
    }
    return out;
  };
  return [...architectureOf(config).weightShapes(config)].flatMap(([name, { shape, optional }]) => {
    if (optional) return [];
    const size = shape.reduce((a, b) => a * b, 1);
    const data = /norm\.weight$/.test(name) ? new Float32Array(size).fill(1) : name.endsWith('.bias') ? new Float32Array(size) : normal(size);
    return [{ name, shape, data }];
  });
}

/** Greedy by default: a model this small drifts off its templates when sampled. */
export const GENERATION_CONFIG = { do_sample: false, max_new_tokens: 96 };

/** Builds the tiny model into `o.outDir`; see the file comment for the steps. */
export async function buildTinyModel(o: TinyBuildOptions, hooks: { onProgress?: (p: TinyBuildProgress) => void } = {}): Promise<TinyBuildResult> {
  const opts = resolveOptions(o);
  const { shape } = opts;
  if (shape.hiddenSize % shape.numHeads !== 0 || shape.numHeads % shape.numKvHeads !== 0) {
    throw new RangeError(`tiny model shape: hidden ${shape.hiddenSize} / heads ${shape.numHeads} / kv heads ${shape.numKvHeads} do not divide`);
  }
  const progress = hooks.onProgress ?? (() => {});
  const workDir = o.workDir ?? `${o.outDir}.build`;
  const staging = join(workDir, 'init');
  const started = performance.now();
  // A work dir left by a killed build resumes only if it was started with the same options.
  const optionsFile = join(workDir, 'options.json');
  if (existsSync(optionsFile) && readFileSync(optionsFile, 'utf8') !== JSON.stringify(opts)) rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  writeFileSync(optionsFile, JSON.stringify(opts));

  progress({ stage: 'corpus', message: `${opts.examples} dialogues, seed ${opts.seed}` });
  const corpus = generateCorpus(opts.examples, opts.seed);

  progress({ stage: 'tokenizer', message: `byte-level BPE, ${shape.vocabSize} ids` });
  const tokenizer = trainBpeTokenizer(tokenizerLines(corpus), { style: 'byte-level', vocabSize: shape.vocabSize, specialTokens: [...SPECIAL_TOKENS] });
  const id = (t: string) => tokenizer.added_tokens.find((a) => a.content === t)!.id;
  const ids = { bos: id('<|im_start|>'), eos: id('<|im_end|>'), pad: id('<|endoftext|>') };
  // vocab_size must cover the ids; a corpus too small to fill the vocabulary gives fewer ids
  const maxId = Math.max(...tokenizer.added_tokens.map((a) => a.id));
  if (maxId >= shape.vocabSize) throw new RangeError(`tokenizer has ids up to ${maxId}, over vocab ${shape.vocabSize}`);

  progress({ stage: 'init', message: `hidden ${shape.hiddenSize}, ${shape.numLayers} layers` });
  if (!existsSync(join(staging, 'model.safetensors'))) {
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true });
    writeTokenizerFiles(staging, tokenizer, {
      bos_token: null,
      eos_token: '<|im_end|>',
      pad_token: '<|endoftext|>',
      unk_token: null,
      model_max_length: shape.maxPositionEmbeddings,
      chat_template: CHATML_TEMPLATE,
    });
    const config = llamaConfig(shape, ids);
    writeFileSync(join(staging, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    writeFileSync(join(staging, 'generation_config.json'), JSON.stringify({ ...GENERATION_CONFIG, eos_token_id: ids.eos, pad_token_id: ids.pad }, null, 2) + '\n');
    writeSafetensors(join(staging, 'model.safetensors'), initialWeights(parseModelConfig(config), opts.seed), { format: 'pt' });
  }

  const options = sftOptionsSchema.parse({
    fullParameter: true,
    packing: true,
    maxLength: opts.seqLength,
    batchSize: opts.batchSize,
    gradAccumulation: 1,
    epochs: 1000,
    maxSteps: opts.steps,
    checkpointEvery: opts.checkpointEvery,
    optimizer: {
      lr: opts.lr,
      betas: [0.9, 0.95],
      weightDecay: opts.weightDecay,
      maxGradNorm: 1,
      schedule: 'cosine',
      warmupSteps: opts.warmupSteps,
      minLrRatio: 0.1,
    },
  });
  const result = await trainSft({
    model: staging,
    options,
    runDir: join(workDir, 'run'),
    seed: opts.seed,
    threads: opts.threads,
    // corpus roles are system/user/assistant only
    rows: corpus.map((e) => ({ messages: e.messages })) as SftChatRow[],
    onStep: (log, totalSteps) => progress({ stage: 'train', step: log.step, totalSteps, loss: log.loss }),
  });

  progress({ stage: 'write', message: o.outDir });
  const trained = SafetensorsModel.open(result.outputDir);
  let parameters = 0;
  const tensors = trained.names().sort().map((name) => {
    const data = trained.readFloat32(name);
    parameters += data.length;
    return { name, shape: trained.shapes().get(name)!, data, dtype: opts.dtype };
  });
  trained.close();
  rmSync(o.outDir, { recursive: true, force: true });
  mkdirSync(o.outDir, { recursive: true });
  for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']) cpSync(join(staging, f), join(o.outDir, f));
  if (opts.dtype === 'F16') {
    const config = JSON.parse(readFileSync(join(o.outDir, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(o.outDir, 'config.json'), JSON.stringify({ ...config, torch_dtype: 'float16' }, null, 2) + '\n');
  }
  writeSafetensors(join(o.outDir, 'model.safetensors'), tensors, { format: 'pt' });

  const record = buildRecord(opts, corpus, o.outDir, parameters, result.log);
  progress({ stage: 'quality', message: 'greedy replies to held-out questions' });
  await finishModelDir(o.outDir, record, opts.threads);
  if (!o.keepWorkDir) rmSync(workDir, { recursive: true, force: true });
  return {
    outDir: o.outDir,
    parameters,
    corpusTokens: record.corpusTokens,
    trainedTokens: record.trainedTokens,
    steps: result.steps,
    firstLoss: result.metrics.firstLoss,
    finalLoss: result.metrics.finalLoss,
    seconds: (performance.now() - started) / 1000,
    log: result.log,
  };
}

/** The build record from the options, the corpus and the full step log (train.jsonl, across resumes). */
export function buildRecord(opts: TinyBuildRecord['options'], corpus: readonly CorpusExample[], dir: string, parameters: number, log: readonly StepLog[]): TinyBuildRecord {
  const every = Math.max(1, Math.floor(log.length / 50));
  const kinds: Record<string, number> = {};
  for (const e of corpus) kinds[e.kind] = (kinds[e.kind] ?? 0) + 1;
  return {
    options: opts,
    parameters,
    corpusKinds: kinds,
    corpusTokens: corpusTokenCount(corpus, dir),
    trainedTokens: log.reduce((n, l) => n + l.tokens, 0),
    trainSeconds: Math.round(log.reduce((n, l) => n + l.seconds, 0)),
    lossCurve: Array.from({ length: Math.ceil(log.length / every) }, (_, w) => {
      const window = log.slice(w * every, (w + 1) * every);
      return [window.at(-1)!.step, Number((window.reduce((n, l) => n + l.loss, 0) / window.length).toFixed(4))];
    }),
  };
}

/** Writes tiny-build.json (the record) and README.md (the model card with the quality check) into `dir`. */
export async function finishModelDir(dir: string, record: TinyBuildRecord, threads = 2): Promise<QualityResult[]> {
  writeFileSync(join(dir, 'tiny-build.json'), JSON.stringify(record, null, 1) + '\n');
  const quality = await runQualityCheck(dir, { examples: record.options.examples, seed: record.options.seed }, threads);
  writeFileSync(join(dir, 'README.md'), modelCard(record, quality));
  return quality;
}

/** Tokens of the whole corpus rendered with the ChatML template (what one epoch reads). */
function corpusTokenCount(corpus: readonly CorpusExample[], dir: string): number {
  const tok = TextTokenizer.load(dir);
  let n = 0;
  for (const e of corpus) n += tok.encode(e.messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join(''), { addSpecialTokens: false }).length;
  return n;
}
