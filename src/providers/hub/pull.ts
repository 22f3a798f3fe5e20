/**
 * `persona-lab pull <org>/<name>[@revision]`: a model's files from the Hugging Face Hub into the shared
 * cache (./cache.ts), through Hugging Face's own JavaScript client (@huggingface/hub) for the revision,
 * the file list and the downloads. Each file lands in blobs/<etag>.incomplete first; an interrupted pull
 * resumes it with a range request, and a file only becomes a blob once its size and checksum (sha256 for
 * LFS files, the git blob sha1 otherwise) match what the Hub listed. The token is sent, never printed.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { downloadFile, HubApiError, listFiles, modelInfo, type ListFileEntry } from '@huggingface/hub';
import { InputError } from '../../core/errors.js';
import { COMMIT_HASH, cachedSnapshot, hubCacheDir, hubEndpoint, hubOffline, hubToken, repoCacheDir, repoFolderName } from './cache.js';

export interface HubRef {
  /** `org/name` */
  repo: string;
  /** Branch, tag or commit; default "main". */
  revision: string;
}

const REPO = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/** `hf:<org>/<name>[@<revision>]` or `<org>/<name>[@<revision>]`. */
export function parseHubRef(ref: string): HubRef {
  const body = ref.startsWith('hf:') ? ref.slice(3) : ref;
  const at = body.indexOf('@');
  const repo = at < 0 ? body : body.slice(0, at);
  const revision = at < 0 ? 'main' : body.slice(at + 1);
  if (!REPO.test(repo) || repo.includes('..') || !/^[\w.\-/]+$/.test(revision) || revision.includes('..')) {
    throw new InputError('model reference', ref, 'expected "hf:<org>/<name>[@<revision>]" (a Hugging Face Hub model id)');
  }
  return { repo, revision };
}

/** What the engine reads: config, weights, tokenizer, chat template, generation config. */
export const DEFAULT_INCLUDE = ['*.json', '*.safetensors', '*.jinja', '*.txt', 'tokenizer.model'];

/** fnmatch-style pattern (as huggingface_hub's allow_patterns): `*` matches any run of characters. */
function globRegExp(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

export interface PullProgress {
  file: string;
  /** Bytes of this pull done so far (files already cached count as done), and in all. */
  bytes: number;
  totalBytes: number;
}

export interface PullOptions {
  env?: NodeJS.ProcessEnv;
  /** File patterns to fetch (default DEFAULT_INCLUDE). */
  include?: string[];
  onProgress?: (p: PullProgress) => void;
  /** For tests and the benchmark: the fetch the Hub client uses. */
  fetch?: typeof fetch;
}

export interface PulledFile {
  path: string;
  size: number;
  etag: string;
  /** Bytes fetched now (0 when cached; less than size when resumed). */
  fetched: number;
}

export interface PullResult {
  repo: string;
  revision: string;
  commit: string;
  /** The snapshot directory: load the model from here. */
  dir: string;
  files: PulledFile[];
  /** True when the Hub was not asked (HF_HUB_OFFLINE, or a commit already cached). */
  offline: boolean;
}

/** Hub answers turned into errors that name the model and never the token. */
function hubError(error: unknown, ref: HubRef, hubUrl: string): Error {
  const endpoint = publicURL(hubUrl);
  const name = `hf:${ref.repo}@${ref.revision}`;
  if (error instanceof HubApiError) {
    if (error.statusCode === 401 || error.statusCode === 403) {
      return new InputError(name, 'HF_TOKEN', `a token with access to ${ref.repo} (the Hub at ${endpoint} answered ${error.statusCode}: the model is gated or private, or the token is wrong)`);
    }
    if (error.statusCode === 404) return new InputError(name, '', `a model and revision that exist on the Hub at ${endpoint} (it answered 404)`);
    return new Error(`Hub at ${endpoint} answered ${error.statusCode} for ${name}`);
  }
  if (error instanceof TypeError && /access token/.test(error.message)) return new InputError('environment', 'HF_TOKEN', 'a Hugging Face access token (it starts with "hf_")');
  return error instanceof Error ? error : new Error(String(error));
}

/** The Hub's address as it may be shown: no credentials, query or fragment. */
function publicURL(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`.replace(/\/$/, '');
  } catch {
    return '(HF_ENDPOINT)';
  }
}

const isNetworkError = (error: unknown) => error instanceof TypeError && /fetch failed/.test(error.message);

function gitBlobHash(size: number): Hash {
  return createHash('sha1').update(`blob ${size}\0`);
}

/** Feeds the bytes of a partial download into the hash so a resumed file is still checked end to end. */
async function hashExisting(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

async function fetchBlob(
  ref: HubRef,
  commit: string,
  entry: ListFileEntry & { etag: string },
  blobPath: string,
  client: { hubUrl: string; accessToken?: string; fetch?: typeof fetch },
  onBytes: (n: number) => void,
): Promise<number> {
  const incomplete = `${blobPath}.incomplete`;
  const lfs = entry.lfs !== undefined;
  const hash = lfs ? createHash('sha256') : gitBlobHash(entry.size);
  let start = existsSync(incomplete) ? statSync(incomplete).size : 0;
  if (start > entry.size) {
    rmSync(incomplete);
    start = 0;
  }
  if (start > 0) {
    await hashExisting(incomplete, hash);
    onBytes(start);
  }
  if (start < entry.size) {
    // The listing already gave size and checksum: no probe request, the resolve URL redirects to the bytes.
    const url = `${client.hubUrl}/${ref.repo}/resolve/${commit}/${entry.path.split('/').map(encodeURIComponent).join('/')}`;
    const blob = await downloadFile({ repo: ref.repo, path: entry.path, revision: commit, ...client, xet: false, downloadInfo: { size: entry.size, etag: entry.etag, url } });
    if (!blob) throw new Error(`hf:${ref.repo}: ${entry.path} is listed but the Hub has no file there`);
    const body = start > 0 ? blob.slice(start) : blob;
    // Each chunk is on disk before the next is read, so a dropped connection or a kill loses nothing received.
    const fd = openSync(incomplete, 'a');
    try {
      const sink = new Writable({
        write(chunk: Buffer, _encoding, done) {
          try {
            writeSync(fd, chunk);
            hash.update(chunk);
            onBytes(chunk.length);
            done();
          } catch (error) {
            done(error as Error);
          }
        },
      });
      await pipeline(Readable.fromWeb(body.stream() as never), sink);
    } finally {
      closeSync(fd);
    }
  }
  const size = statSync(incomplete).size;
  const digest = hash.digest('hex');
  if (size !== entry.size || digest !== entry.etag) {
    rmSync(incomplete);
    throw new Error(`hf:${ref.repo}: ${entry.path} failed its checksum (${lfs ? 'sha256' : 'git sha1'} ${digest}, ${size} bytes; the Hub listed ${entry.etag}, ${entry.size} bytes); the partial file was removed, pull again`);
  }
  renameSync(incomplete, blobPath);
  return entry.size - start;
}

function link(blobPath: string, pointer: string): void {
  mkdirSync(dirname(pointer), { recursive: true });
  rmSync(pointer, { force: true });
  symlinkSync(relative(dirname(pointer), blobPath), pointer);
}

/** Whether a process is alive (a lock whose holder died is stale). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const heldHere = new Set<string>();

/**
 * One writer per blob across processes (and pulls within one): a lock file holding the writer's pid,
 * created exclusively; a lock whose process is gone is taken over, so a killed pull never blocks the next.
 */
async function acquireLock(path: string): Promise<{ release(): void }> {
  mkdirSync(dirname(path), { recursive: true });
  for (;;) {
    if (!heldHere.has(path)) {
      try {
        writeFileSync(path, String(process.pid), { flag: 'wx' });
        heldHere.add(path);
        return {
          release: () => {
            heldHere.delete(path);
            rmSync(path, { force: true });
          },
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const text = readFileSync(path, 'utf8').trim();
        const holder = Number(text);
        // empty: its writer is between creating and filling it (or died there long ago)
        const stale = text === '' ? Date.now() - statSync(path).mtimeMs > 10_000 : !Number.isInteger(holder) || holder === process.pid || !alive(holder);
        if (stale) {
          rmSync(path, { force: true });
          continue;
        }
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Pulls a model revision into the Hub cache and returns its snapshot. */
export async function pullModel(ref: HubRef, options: PullOptions = {}): Promise<PullResult> {
  const env = options.env ?? process.env;
  const cached = cachedSnapshot(ref.repo, ref.revision, env);
  const fromCache = (): PullResult => ({ repo: ref.repo, revision: ref.revision, commit: cached!.split(/[\\/]/).at(-1)!, dir: cached!, files: [], offline: true });
  const endpoint = hubEndpoint(env);
  if (hubOffline(env)) {
    if (cached) return fromCache();
    throw new InputError(`hf:${ref.repo}@${ref.revision}`, 'HF_HUB_OFFLINE', `the model in the Hub cache (${repoCacheDir(ref.repo, env)}); offline mode is on, so pull it first with network access`);
  }
  // A commit is immutable: when its snapshot is cached there is nothing to ask the Hub.
  if (cached && COMMIT_HASH.test(ref.revision)) return fromCache();
  const token = hubToken(env);
  const client = { hubUrl: endpoint, ...(token ? { accessToken: token } : {}), ...(options.fetch ? { fetch: options.fetch } : {}) };
  let commit: string;
  let entries: (ListFileEntry & { etag: string })[];
  try {
    const info = await modelInfo({ name: ref.repo, revision: ref.revision, additionalFields: ['sha'], ...client });
    commit = String((info as { sha?: string }).sha ?? '');
    if (!COMMIT_HASH.test(commit)) throw new Error(`the Hub at ${publicURL(endpoint)} gave no commit for hf:${ref.repo}@${ref.revision}`);
    const include = (options.include ?? DEFAULT_INCLUDE).map(globRegExp);
    entries = [];
    for await (const entry of listFiles({ repo: ref.repo, revision: commit, recursive: true, ...client })) {
      if (entry.type !== 'file' || !include.some((re) => re.test(entry.path))) continue;
      const etag = entry.lfs?.oid ?? entry.oid;
      if (!etag || !/^([0-9a-f]{40}|[0-9a-f]{64})$/.test(etag)) throw new Error(`the Hub at ${publicURL(endpoint)} listed ${entry.path} without a sha1 / sha256 checksum`);
      // names come from the server: none may step out of the snapshot directory
      if (entry.path.startsWith('/') || entry.path.split(/[\\/]/).includes('..')) throw new Error(`the Hub at ${publicURL(endpoint)} listed an unsafe file name ${JSON.stringify(entry.path)}`);
      entries.push({ ...entry, size: entry.lfs?.size ?? entry.size, etag });
    }
  } catch (error) {
    // Like huggingface_hub: with the Hub unreachable, a cached snapshot of the revision still serves.
    if (cached && isNetworkError(error)) return fromCache();
    throw hubError(error, ref, endpoint);
  }
  if (entries.length === 0) throw new InputError(`hf:${ref.repo}@${ref.revision}`, '', `files matching ${(options.include ?? DEFAULT_INCLUDE).join(', ')} (the repository has none)`);

  const repoDir = repoCacheDir(ref.repo, env);
  const snapshot = join(repoDir, 'snapshots', commit);
  mkdirSync(join(repoDir, 'blobs'), { recursive: true });
  const totalBytes = entries.reduce((n, e) => n + e.size, 0);
  let bytes = 0;
  const files: PulledFile[] = [];
  for (const entry of entries) {
    const blobPath = join(repoDir, 'blobs', entry.etag);
    const pointer = join(snapshot, ...entry.path.split('/'));
    let fetched = 0;
    const missing = () => !existsSync(blobPath) || statSync(blobPath).size !== entry.size;
    if (missing()) {
      const lock = await acquireLock(join(hubCacheDir(env), '.locks', repoFolderName(ref.repo), `${entry.etag}.persona-lab.lock`));
      try {
        // another pull may have finished the file while this one waited
        if (missing()) {
          fetched = await fetchBlob(ref, commit, entry, blobPath, client, (n) => {
            bytes += n;
            options.onProgress?.({ file: entry.path, bytes, totalBytes });
          });
        } else {
          bytes += entry.size;
        }
      } catch (error) {
        throw hubError(error, ref, endpoint);
      } finally {
        lock.release();
      }
    } else {
      bytes += entry.size;
      options.onProgress?.({ file: entry.path, bytes, totalBytes });
    }
    if (!existsSync(pointer)) link(blobPath, pointer);
    files.push({ path: entry.path, size: entry.size, etag: entry.etag, fetched });
  }
  if (!COMMIT_HASH.test(ref.revision)) {
    const refFile = join(repoDir, 'refs', ...ref.revision.split('/'));
    mkdirSync(dirname(refFile), { recursive: true });
    writeFileSync(refFile, commit);
  }
  return { repo: ref.repo, revision: ref.revision, commit, dir: snapshot, files, offline: false };
}
