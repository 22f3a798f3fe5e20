/**
 * The model providers, by the `provider` key of a reference's object form. Each owns its short
 * strings (promptfoo style: "openai:gpt-4o-mini", "local:models/x+adapter", "tiny",
 * "steered(tiny):vector.safetensors@4*2"), their object form, and how a ChatModel is made of them.
 * Adding a provider is a file beside this one and an entry here.
 */
import { z } from 'zod';
import { InputError } from '../../core/errors.js';
import { endpointSchema, openaiProvider } from './openai.js';
import { hfProvider } from './hf.js';
import { localModelSchema, localProvider } from './local.js';
import { steeredModelSchema, steeredProvider } from './steered.js';
import { vllmModelSchema, vllmProvider } from './vllm.js';
import type { ProviderEntry } from './types.js';

export type { CreateContext, ProviderCapabilities, ProviderEntry } from './types.js';
export { DEFAULT_BASE_URL, endpointSchema, isLocalURL, type EndpointRef } from './openai.js';
export { TINY_MODEL_DIR, loadLocalEngine, localModelSchema, parseLocalModelRef, type LocalEngineModule, type LocalModelRef } from './local.js';
export { steeredModelSchema, type SteeredModelRef } from './steered.js';

export const PROVIDERS: Record<string, ProviderEntry> = {
  openai: openaiProvider,
  local: localProvider,
  hf: hfProvider,
  steered: steeredProvider,
  vllm: vllmProvider,
};

/** Every short-string form, for messages. */
const grammar = () => Object.values(PROVIDERS).flatMap((p) => p.grammar.map((g) => `"${g}"`)).join(', ');

/** A short string some provider claims, or an object form (the published schema spells out the built-in ones). */
export const modelRefSchema = z.union([
  z.string().superRefine((ref, ctx) => {
    if (!Object.values(PROVIDERS).some((p) => p.claims(ref))) ctx.addIssue({ code: 'custom', message: `expected ${grammar()}` });
  }),
  z.discriminatedUnion('provider', [endpointSchema, localModelSchema, steeredModelSchema, vllmModelSchema]),
]);
export type ModelRef = z.infer<typeof modelRefSchema>;
/** A reference as written (object defaults not yet filled in) or as parsed from a config. */
export type ModelRefInput = z.input<typeof modelRefSchema> | string | ({ provider: string } & Record<string, unknown>);

export interface ResolvedRef {
  /** The provider's key in PROVIDERS. */
  provider: string;
  entry: ProviderEntry;
  /** The object form, validated, with environment defaults and absolute paths. */
  ref: { provider: string } & Record<string, unknown>;
}

/** The provider of a reference and the reference in its object form, every default filled in. */
export function resolveModelRef(ref: ModelRefInput, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ResolvedRef {
  let raw: { provider?: unknown };
  if (typeof ref === 'string') {
    const entry = Object.values(PROVIDERS).find((p) => p.claims(ref));
    if (!entry) throw new InputError('model reference', ref, `expected ${grammar()}`);
    raw = entry.parse(ref);
  } else raw = ref;
  const provider = String(raw.provider);
  if (!Object.hasOwn(PROVIDERS, provider)) throw new InputError('model reference', 'provider', `one of ${Object.keys(PROVIDERS).join(', ')}, found "${provider}"`);
  const entry = PROVIDERS[provider];
  const parsed = entry.schema.safeParse(raw);
  if (!parsed.success) throw InputError.fromZod(`model reference ${JSON.stringify(typeof ref === 'string' ? ref : provider)}`, parsed.error);
  const resolved = entry.resolve ? entry.resolve(parsed.data, env, cwd) : parsed.data;
  return { provider, entry, ref: resolved as ResolvedRef['ref'] };
}
