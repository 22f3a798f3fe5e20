/**
 * Content-addressed on-disk response cache, one file per sample: the key is the sha256 of the
 * canonical JSON of the model's identity (endpoint URL and model, never a key), the messages, every
 * sampling and output option, and the sample's index. n = 4 after n = 2 reuses the first two.
 * Only successful samples are written, atomically (temp file + rename); a torn or foreign file reads
 * as a miss.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import stableStringify from 'fast-json-stable-stringify';
import type { ChatChoice, ChatRequest, TokenUsage } from './types.js';

/** Bump when the meaning of a cached sample changes; old files then simply miss. */
export const CACHE_FORMAT = 1;

export interface CachedSample {
  v: number;
  modelId: string;
  index: number;
  choice: ChatChoice;
  /** The model id the server reported. */
  model: string;
  /** Prompt tokens of the call that produced the sample, and its share of the completion tokens. */
  usage: TokenUsage;
  createdAt: string;
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  return resolve(cwd, env.PERSONA_LAB_CACHE_DIR || join('.cache', 'persona-lab', 'responses'));
}

/** Everything in a request that changes what comes back, except n (the sample index stands for it). */
export function sampleKey(modelId: string, request: ChatRequest, index: number): string {
  const { messages, temperature, topP, topK, maxTokens, seed, stop, logprobs, topLogprobs, jsonSchema } = request;
  const identity = { v: CACHE_FORMAT, modelId, messages, temperature, topP, topK, maxTokens, seed, stop, logprobs, topLogprobs, jsonSchema, index };
  return createHash('sha256').update(stableStringify(identity)).digest('hex');
}

const keyPattern = /^[0-9a-f]{64}$/;

export class ResponseCache {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  private path(key: string): string {
    return join(this.dir, key.slice(0, 2), `${key}.json`);
  }

  async read(key: string): Promise<CachedSample | undefined> {
    let text: string;
    try {
      text = await readFile(this.path(key), 'utf8');
    } catch {
      return undefined;
    }
    try {
      const sample = JSON.parse(text) as CachedSample;
      return sample.v === CACHE_FORMAT && typeof sample.choice?.text === 'string' ? sample : undefined;
    } catch {
      return undefined;
    }
  }

  async write(key: string, sample: CachedSample): Promise<void> {
    const path = this.path(key);
    const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const text = JSON.stringify(sample);
    try {
      await writeFile(temp, text);
    } catch (error) {
      // The folder is made on first use (and again after a clear from elsewhere).
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      await mkdir(join(this.dir, key.slice(0, 2)), { recursive: true });
      await writeFile(temp, text);
    }
    await rename(temp, path);
  }

  /** Removes the cache's own files (and nothing else), returning how many samples were dropped. */
  async clear(): Promise<number> {
    return clearCache(this.dir);
  }
}

/**
 * Deletes the samples under `dir`: only `<2 hex>/<sha256>.json` files and their temp files, so a
 * mistyped directory never loses anything else. Returns the number of samples removed.
 */
export async function clearCache(dir: string): Promise<number> {
  let removed = 0;
  let subs: string[];
  try {
    subs = await readdir(dir);
  } catch {
    return 0;
  }
  for (const sub of subs) {
    if (!/^[0-9a-f]{2}$/.test(sub)) continue;
    let names: string[];
    try {
      names = await readdir(join(dir, sub));
    } catch {
      continue;
    }
    for (const name of names) {
      const key = name.slice(0, 64);
      if (!keyPattern.test(key) || !key.startsWith(sub) || !/^\.json(\.\d+\.[0-9a-f]+\.tmp)?$/.test(name.slice(64))) continue;
      await rm(join(dir, sub, name), { force: true });
      if (!name.endsWith('.tmp')) removed++;
    }
    await rmdir(join(dir, sub)).catch(() => undefined);
  }
  await rmdir(dir).catch(() => undefined);
  return removed;
}
