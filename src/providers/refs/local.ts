/**
 * `local:<model dir>[+<adapter dir>[*<scale>]]...` and `tiny` (the bundled models/tiny): the
 * engine, with LoRA adapters applied. The engine module loads only when a local model is created, so
 * endpoint-only runs never load onnxruntime.
 */
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { InputError } from '../../core/errors.js';
import { cachedHubModel } from '../hub/index.js';
import type { ChatModel } from '../types.js';
import type { ProviderEntry } from './types.js';

export const localModelSchema = z
  .object({
    provider: z.literal('local'),
    path: z.string().min(1),
    adapters: z.array(z.object({ path: z.string().min(1), scale: z.number().default(1) }).strict()).default([]),
    concurrency: z.number().int().positive().default(1),
  })
  .strict();
export type LocalModelRef = z.infer<typeof localModelSchema>;

/** The bundled tiny model's directory (persona-lab tiny build --out models/tiny). */
export const TINY_MODEL_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'models', 'tiny');

/**
 * "local:<dir>[+<adapter>[*<scale>]]...", "tiny", or "hf:<org>/<name>[@rev][+<adapter>...]" (the Hub
 * model's snapshot in the shared cache, pulled before any stage runs) -> the object form, paths as written.
 */
export function parseShort(ref: string): Record<string, unknown> {
  if (ref === 'tiny') return { provider: 'local', path: TINY_MODEL_DIR };
  const [head, ...adapters] = ref.split('+');
  const path = head.startsWith('hf:') ? cachedHubModel(head) : head.slice('local:'.length);
  return {
    provider: 'local',
    path,
    adapters: adapters.map((a) => {
      const star = a.lastIndexOf('*');
      const scale = star > 0 ? Number(a.slice(star + 1)) : NaN;
      return Number.isFinite(scale) ? { path: a.slice(0, star), scale } : { path: a };
    }),
  };
}

const absolute = (ref: LocalModelRef, cwd: string): LocalModelRef => {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(cwd, p));
  return { ...ref, path: abs(ref.path), adapters: ref.adapters.map((a) => ({ ...a, path: abs(a.path) })) };
};

/** A local reference (short string or object) with defaults filled and absolute paths. */
export function parseLocalModelRef(ref: string | z.input<typeof localModelSchema>, cwd = process.cwd()): LocalModelRef {
  if (typeof ref === 'string' && !localProvider.claims(ref) && !ref.startsWith('hf:')) throw new InputError('model reference', ref, 'expected "local:<model dir>[+<adapter dir>[*<scale>]]", "hf:<org>/<name>[@<revision>]" or "tiny"');
  const parsed = localModelSchema.safeParse(typeof ref === 'string' ? parseShort(ref) : ref);
  if (!parsed.success) throw InputError.fromZod(`model reference "${typeof ref === 'string' ? ref : ref.path}"`, parsed.error);
  return absolute(parsed.data, cwd);
}

/** What src/engine/provider.ts exports to the registry. */
export interface LocalEngineModule {
  createLocalChatModel(ref: LocalModelRef): ChatModel | Promise<ChatModel>;
}

/**
 * The engine's module, imported only when a local model is asked for; a specifier in a variable keeps
 * tsc from requiring the file to exist. Exported for the test of the "not available" path.
 */
export async function loadLocalEngine(specifier = '../../engine/provider.js'): Promise<LocalEngineModule> {
  try {
    return (await import(specifier)) as LocalEngineModule;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String((error as Error).message).includes(specifier.replace(/^(\.\.\/)+|\.js$/g, ''))) {
      throw new InputError('model reference', 'local', 'local engine not available in this build (src/engine/provider.ts is missing); use an "openai:" endpoint');
    }
    throw error;
  }
}

/**
 * Names, sizes and modification times of the files in the model and adapter folders: retraining an
 * adapter into the same folder must not be answered from the old adapter's cached samples.
 */
export async function weightsFingerprint(local: LocalModelRef): Promise<string> {
  const hash = createHash('sha256');
  const dirs = [{ path: local.path, scale: 1 }, ...local.adapters];
  for (const { path, scale } of dirs) {
    hash.update(`${path}\0${scale}\0`);
    const names = (await readdir(path).catch(() => [] as string[])).sort();
    for (const name of names) {
      const info = await stat(join(path, name)).catch(() => undefined);
      if (info?.isFile()) hash.update(`${name}\0${info.size}\0${info.mtimeMs}\0`);
    }
  }
  return hash.digest('hex').slice(0, 16);
}

export const localProvider: ProviderEntry<LocalModelRef> = {
  grammar: ['local:<model dir>[+<adapter dir>[*<scale>]]', 'tiny'],
  claims: (ref) => ref === 'tiny' || ref.startsWith('local:'),
  schema: localModelSchema,
  parse: parseShort,
  resolve: (ref, _env, cwd) => absolute(ref, cwd),
  async create(ref, ctx) {
    const engine = await loadLocalEngine();
    if (typeof engine.createLocalChatModel !== 'function') throw new InputError('model reference', 'local', 'local engine not available (src/engine/provider.ts exports no createLocalChatModel)');
    const model = await engine.createLocalChatModel(ref);
    return { model, cacheScope: ctx.noCache ? undefined : await weightsFingerprint(ref) };
  },
  capabilities: { generate: true, logprobs: true, steer: true, train: true },
};
