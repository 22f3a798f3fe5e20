/**
 * The Hugging Face Hub cache, laid out exactly as Python's huggingface_hub lays it out, so both share
 * one copy of every model:
 *   <HF_HUB_CACHE>/models--<org>--<name>/blobs/<etag>            file contents (etag: LFS sha256 or git blob sha1)
 *   <HF_HUB_CACHE>/models--<org>--<name>/snapshots/<commit>/<path> relative symlinks into blobs/
 *   <HF_HUB_CACHE>/models--<org>--<name>/refs/<revision>          the commit a branch or tag pointed at
 * HF_HUB_CACHE defaults to $HF_HOME/hub, HF_HOME to $XDG_CACHE_HOME/huggingface (~/.cache/huggingface).
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve, sep } from 'node:path';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
export const COMMIT_HASH = /^[0-9a-f]{40}$/;

export function hfHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface');
}

export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE || join(hfHome(env), 'hub');
}

export function hubEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return (env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

/** HF_HUB_OFFLINE=1 (or true/yes/on): never reach the Hub, serve from the cache. */
export function hubOffline(env: NodeJS.ProcessEnv = process.env): boolean {
  return /^(1|true|yes|on)$/i.test(env.HF_HUB_OFFLINE ?? '');
}

/** HF_TOKEN, else the token file `huggingface-cli login` writes (HF_TOKEN_PATH or $HF_HOME/token). */
export function hubToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.HF_TOKEN) return env.HF_TOKEN.trim();
  const file = env.HF_TOKEN_PATH || join(hfHome(env), 'token');
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** `models--org--name` */
export function repoFolderName(repo: string): string {
  return ['models', ...repo.split('/')].join('--');
}

export function repoCacheDir(repo: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(hubCacheDir(env), repoFolderName(repo));
}

/** The commit a revision names in the cache: a commit hash itself, or what refs/<revision> records. */
export function cachedCommit(repo: string, revision: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (COMMIT_HASH.test(revision)) return revision;
  try {
    const commit = readFileSync(join(repoCacheDir(repo, env), 'refs', revision), 'utf8').trim();
    return COMMIT_HASH.test(commit) ? commit : undefined;
  } catch {
    return undefined;
  }
}

/** The cached snapshot directory of a revision, if the cache holds it. */
export function cachedSnapshot(repo: string, revision: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const commit = cachedCommit(repo, revision, env);
  if (!commit) return undefined;
  const dir = join(repoCacheDir(repo, env), 'snapshots', commit);
  return existsSync(dir) ? dir : undefined;
}

/**
 * The Hub id (`org/name`) and commit of a directory that is a snapshot in a Hub cache
 * (.../models--org--name/snapshots/<commit>), or undefined for any other directory.
 */
export function hubSnapshotOfDir(dir: string): { repo: string; commit: string } | undefined {
  let abs = resolve(dir);
  try {
    abs = realpathSync(abs);
  } catch {
    // not on disk: judge the path as written
  }
  const snapshots = dirname(abs);
  const repoDir = dirname(snapshots);
  if (basename(snapshots) !== 'snapshots' || !COMMIT_HASH.test(basename(abs))) return undefined;
  const m = /^models--(.+)$/.exec(basename(repoDir));
  if (!m || abs.split(sep).length < 4) return undefined;
  return { repo: m[1].split('--').join('/'), commit: basename(abs) };
}

/**
 * How an adapter names the base it was trained on (PEFT's `base_model_name_or_path` and `revision`):
 * a Hub cache snapshot by its Hub id, which PEFT and vLLM resolve anywhere, pinned to the snapshot's
 * commit (a branch such as main may move on); any other directory by its absolute path.
 */
export function adapterBaseOf(dir: string): { baseModelNameOrPath: string; revision: string | null } {
  const hub = hubSnapshotOfDir(dir);
  return hub ? { baseModelNameOrPath: hub.repo, revision: hub.commit } : { baseModelNameOrPath: resolve(dir), revision: null };
}

/** The Hub id (`org/name`) of a Hub cache snapshot directory, or undefined for any other directory. */
export function hubRepoOfDir(dir: string): string | undefined {
  return hubSnapshotOfDir(dir)?.repo;
}
