/**
 * Checks, before anything is written, that every endpoint an experiment names answers. A dead endpoint
 * is bad input: the error names the experiment file and the models.<role> field.
 */
import OpenAI from 'openai';
import { InputError } from '../core/errors.js';
import type { ModelRef } from '../providers/ref.js';
import type { Experiment } from './config.js';

interface Endpoint {
  baseURL: string;
  apiKey: string;
}

function endpointOf(ref: ModelRef, env: NodeJS.ProcessEnv): Endpoint | undefined {
  if (typeof ref === 'string') {
    if (!ref.startsWith('openai:')) return undefined;
    const at = ref.indexOf('@', 'openai:'.length);
    const baseURL = at >= 0 ? ref.slice(at + 1) : (env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1');
    return { baseURL, apiKey: env.OPENAI_API_KEY ?? 'none' };
  }
  if (ref.provider !== 'openai') return undefined;
  return { baseURL: ref.baseURL ?? env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1', apiKey: env[ref.apiKeyEnv] ?? 'none' };
}

/** The innermost error code (ECONNREFUSED, ENOTFOUND, ...) of a connection failure, else its message. */
function rootCause(error: unknown): string {
  let current = error as { cause?: unknown; code?: unknown; message?: string } | undefined;
  let found = (error as Error).message;
  while (current) {
    if (typeof current.code === 'string') found = current.code;
    current = current.cause as typeof current | undefined;
  }
  return found;
}

export async function checkEndpoints(file: string, experiment: Experiment, env: NodeJS.ProcessEnv = process.env, timeoutMs = 5000): Promise<void> {
  const checked = new Map<string, Promise<string | undefined>>();
  for (const [role, ref] of Object.entries(experiment.models)) {
    if (ref === undefined) continue;
    const endpoint = endpointOf(ref, env);
    if (!endpoint) continue;
    if (!checked.has(endpoint.baseURL)) {
      const client = new OpenAI({ baseURL: endpoint.baseURL, apiKey: endpoint.apiKey, maxRetries: 0, timeout: timeoutMs });
      checked.set(
        endpoint.baseURL,
        client.models.list().then(
          () => undefined,
          (error: unknown) => {
            const status = (error as { status?: number }).status;
            // A server that answers (even 401/404 on /models) is reachable; only no answer is fatal here.
            if (status !== undefined) return undefined;
            return rootCause(error);
          },
        ),
      );
    }
    const failure = await checked.get(endpoint.baseURL);
    if (failure) throw new InputError(file, `models.${role}`, `a reachable OpenAI-compatible endpoint at ${endpoint.baseURL} (${failure})`);
  }
}
