/**
 * Checks, before anything is written, that every endpoint an experiment names answers. A dead endpoint
 * is bad input: the error names the experiment file and the models.<role> field.
 */
import OpenAI from 'openai';
import { InputError } from '../core/errors.js';
import { resolveModelRef, type EndpointRef } from '../providers/index.js';
import type { Experiment } from './config.js';

/** The innermost error code (ECONNREFUSED, ENOTFOUND, ...) of a connection failure, else its message. */
function rootCause(error: unknown): string {
  let current = error as { cause?: unknown; code?: unknown; message?: string } | undefined;
  let message = (error as Error).message;
  while (current) {
    if (typeof current.code === 'string') return current.code;
    if (current.message) message = current.message;
    current = current.cause as typeof current | undefined;
  }
  return message;
}

export async function checkEndpoints(file: string, experiment: Experiment, env: NodeJS.ProcessEnv = process.env, timeoutMs = 5000): Promise<void> {
  const checked = new Map<string, Promise<string | undefined>>();
  for (const [role, ref] of Object.entries(experiment.models)) {
    if (ref === undefined) continue;
    let resolved;
    try {
      resolved = resolveModelRef(ref, env);
    } catch (error) {
      if (error instanceof InputError) throw new InputError(file, `models.${role}`, error.expected);
      throw error;
    }
    if (resolved.provider !== 'openai') continue;
    const endpointRef = resolved.ref as EndpointRef & { baseURL: string };
    const endpoint = { baseURL: endpointRef.baseURL, apiKey: env[endpointRef.apiKeyEnv] ?? 'none' };
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
