/** Reads the PyTorch reference outputs written by scripts/fixtures/make_models.py. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const MODELS_DIR = join(import.meta.dirname, '..', '..', 'fixtures', 'models');
export const FAMILIES = ['llama', 'llama3', 'mistral', 'qwen2', 'qwen3', 'smollm3'] as const;

export interface Reference {
  family: string;
  vocabSize: number;
  prompts: { tokens: number[]; logits: Float32Array; residualLast: Float32Array[]; embedding: Float32Array }[];
  batch: { tokens: number[][]; attentionMask: number[][]; logits: Float32Array };
  greedy: { tokens: number[]; minTop2Gap: number }[];
  steer?: { layer: number; coef: number; vector: number[]; positions: number[]; logits: Float32Array };
  cap?: { layers: number[]; threshold: number; axis: number[]; logits: Float32Array };
  lora?: { tokens: number[]; a: Float32Array; aHalfPlusBTwice: Float32Array };
}

function f32(b64: string): Float32Array {
  const bytes = Buffer.from(b64, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

export function modelDir(name: string): string {
  return join(MODELS_DIR, name);
}

export function loadReference(family: string): Reference {
  const raw = JSON.parse(readFileSync(join(MODELS_DIR, family, 'reference.json'), 'utf8'));
  const conv = (o: Record<string, unknown>, keys: string[]) => {
    for (const k of keys) if (typeof o[k] === 'string') o[k] = f32(o[k] as string);
  };
  for (const p of raw.prompts) {
    conv(p, ['logits', 'embedding']);
    p.residualLast = p.residualLast.map(f32);
  }
  conv(raw.batch, ['logits']);
  if (raw.steer) conv(raw.steer, ['logits']);
  if (raw.cap) conv(raw.cap, ['logits']);
  if (raw.lora) conv(raw.lora, ['a', 'aHalfPlusBTwice']);
  return raw as Reference;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
