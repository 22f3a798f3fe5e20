/** Shared bits of the provider tests: a throwaway cache dir, a fake key, small backoff. */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RetryPolicy } from '../../src/providers/index.js';

/** A key that must never show up anywhere but the Authorization header. */
export const KEY = 'sk-test-SECRET-7f3a9c41d2';
export const env = { OPENAI_API_KEY: KEY } as NodeJS.ProcessEnv;
/** Backoff bases small enough that retry tests take milliseconds. */
export const fast: Partial<RetryPolicy> = { baseDelayMs: 5, maxDelayMs: 20 };

export async function tempDir(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'persona-lab-providers-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Every file under `dir` with its content. */
export async function filesUnder(dir: string): Promise<{ path: string; text: string }[]> {
  const names = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return Promise.all(
    names.filter((d) => d.isFile()).map(async (d) => {
      const path = join(d.parentPath, d.name);
      return { path, text: await readFile(path, 'utf8') };
    }),
  );
}
