/**
 * A model provider of the registry: the short strings and the object form it answers to, how it
 * parses them, how it makes a ChatModel of one, and what such a model can do.
 */
import type { z } from 'zod';
import type { Accounting } from '../accounting.js';
import type { RetryPolicy } from '../retry.js';
import type { ChatModel } from '../types.js';

export interface ProviderCapabilities {
  /** Chat completions. */
  generate: boolean;
  /** Token logprobs (judges score by them). */
  logprobs: boolean;
  /** White-box access: capture activations, steer, cap (the steer stage). */
  steer: boolean;
  /** A local base the training backends can train adapters on. */
  train: boolean;
}

export interface CreateContext {
  env: NodeJS.ProcessEnv;
  cwd: string;
  noCache?: boolean;
  accounting?: Accounting;
  retry?: Partial<RetryPolicy>;
}

export interface ProviderEntry<R extends { provider: string } = { provider: string }> {
  /** The short-string forms, as error messages and docs show them. */
  grammar: readonly string[];
  /** Whether a short string is one of this provider's. */
  claims(ref: string): boolean;
  /** The object form ({provider: <its key>, ...}), every option spelled out. */
  schema: z.ZodType<R>;
  /** A short string this provider claims -> the object form, before validation. */
  parse(ref: string): Record<string, unknown>;
  /** Defaults from the environment, absolute paths: what `create` and the checks need. */
  resolve?(ref: R, env: NodeJS.ProcessEnv, cwd: string): R;
  /** The model; `cacheScope` keys the response cache to the weights it serves (local files change). */
  create(ref: R, ctx: CreateContext): Promise<{ model: ChatModel; cacheScope?: string }>;
  capabilities: ProviderCapabilities;
}
