/** generation_config.json: a checkpoint's sampling defaults, with transformers' own defaults filling gaps. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { readStructured, validate } from '../../core/load.js';

const tokenIds = z.union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative())]).nullable().optional();

export const generationConfigSchema = z
  .object({
    do_sample: z.boolean().optional(),
    temperature: z.number().nonnegative().nullable().optional(),
    top_p: z.number().gt(0).max(1).nullable().optional(),
    top_k: z.number().int().nonnegative().nullable().optional(),
    min_p: z.number().min(0).max(1).nullable().optional(),
    repetition_penalty: z.number().positive().nullable().optional(),
    max_new_tokens: z.number().int().positive().nullable().optional(),
    max_length: z.number().int().positive().nullable().optional(),
    bos_token_id: z.number().int().nonnegative().nullable().optional(),
    eos_token_id: tokenIds,
    pad_token_id: z.number().int().nonnegative().nullable().optional(),
  })
  .loose();

export interface GenerationDefaults {
  /** false means greedy decoding: transformers ignores temperature/top_p/top_k then. */
  doSample: boolean;
  temperature: number;
  topP: number;
  /** 0 disables top-k. */
  topK: number;
  minP: number | null;
  repetitionPenalty: number;
  maxNewTokens: number | null;
  /** Total length cap (prompt + reply) when the file sets one and no max_new_tokens. */
  maxLength: number | null;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  /** The file read, or null when the directory has none (all values are transformers' defaults). */
  source: string | null;
}

/** Reads `<dir>/generation_config.json` if present. */
export function loadGenerationConfig(dir: string): GenerationDefaults {
  const file = join(dir, 'generation_config.json');
  return parseGenerationConfig(existsSync(file) ? readStructured(file) : {}, existsSync(file) ? file : null);
}

export function parseGenerationConfig(raw: unknown, source: string | null = 'generation_config.json'): GenerationDefaults {
  const g = validate(source ?? 'generation_config.json', raw, generationConfigSchema);
  const eos = g.eos_token_id;
  return {
    doSample: g.do_sample ?? false,
    temperature: g.temperature ?? 1,
    topP: g.top_p ?? 1,
    topK: g.top_k ?? 50,
    minP: g.min_p ?? null,
    repetitionPenalty: g.repetition_penalty ?? 1,
    maxNewTokens: g.max_new_tokens ?? null,
    maxLength: source && g.max_length ? g.max_length : null,
    bosTokenId: g.bos_token_id ?? null,
    eosTokenIds: eos == null ? [] : Array.isArray(eos) ? eos : [eos],
    padTokenId: g.pad_token_id ?? null,
    source,
  };
}
