/**
 * A loopback Hugging Face Hub speaking the file-resolution protocol the Hub clients use:
 *   GET /api/models/<org>/<name>/revision/<rev>     model info with the commit `sha`
 *   GET /api/models/<org>/<name>/tree/<rev>?recursive=true   files with git oid, size and LFS sha256
 *   GET /<org>/<name>/resolve/<rev>/<path>          X-Repo-Commit + ETag; LFS files redirect (302) to
 *                                                   a CDN path with X-Linked-ETag / X-Linked-Size
 *   POST /api/models/<org>/<name>/paths-info/<rev>  the same for chosen paths, with the last commit
 *   GET /cdn/<sha256>                               the LFS bytes, with range requests (206)
 * Gated repos answer 401 without the right bearer token. Failures are injected per file: a body cut
 * off halfway (once) or corrupted bytes. Every request is logged for the tests to inspect.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';

export interface HubFile {
  path: string;
  content: Buffer;
  lfs: boolean;
}

export interface HubRepo {
  /** Commit sha -> files; refs name commits. */
  commits: Map<string, HubFile[]>;
  refs: Map<string, string>;
  /** A gated repo answers 401 to any other bearer token. */
  token?: string;
}

export interface LoggedRequest {
  method: string;
  url: string;
  range?: string;
  authorization?: string;
}

export interface FakeHub {
  url: string;
  repos: Map<string, HubRepo>;
  log: LoggedRequest[];
  /** Paths whose next download is cut off after half the bytes. */
  cutOnce: Set<string>;
  /** Paths served with one byte flipped. */
  corrupt: Set<string>;
  close(): Promise<void>;
}

/** Hashes per buffer, computed once: the server must not rehash every file on every request. */
const memo = new WeakMap<Buffer, { git?: string; sha?: string }>();
const memoized = (content: Buffer) => memo.get(content) ?? memo.set(content, {}).get(content)!;
export const gitOid = (content: Buffer) => (memoized(content).git ??= createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex'));
export const sha256 = (content: Buffer) => (memoized(content).sha ??= createHash('sha256').update(content).digest('hex'));
export const fakeCommit = (seed: string) => createHash('sha1').update(seed).digest('hex');

/** A directory's files as repo files; weights (and anything over 1 KiB) go through LFS as on the Hub. */
export function filesOfDir(dir: string): HubFile[] {
  const out: HubFile[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else {
        const content = readFileSync(path);
        out.push({ path: relative(dir, path).split('\\').join('/'), content, lfs: name.endsWith('.safetensors') || content.length > 1024 });
      }
    }
  };
  walk(dir);
  return out;
}

/** A repo with one commit on main (and optional extra refs). */
export function repoOf(files: HubFile[], options: { seed?: string; token?: string } = {}): HubRepo {
  const sha = fakeCommit(options.seed ?? files.map((f) => f.path).join(','));
  return { commits: new Map([[sha, files]]), refs: new Map([['main', sha]]), token: options.token };
}

export async function startFakeHub(repos: Record<string, HubRepo> = {}): Promise<FakeHub> {
  const app = Fastify({ logger: false, bodyLimit: 1 << 16 });
  const hub: FakeHub = { url: '', repos: new Map(Object.entries(repos)), log: [], cutOnce: new Set(), corrupt: new Set(), close: () => app.close() };
  const blobs = new Map<string, HubFile>();
  const refreshBlobs = () => {
    for (const repo of hub.repos.values()) for (const files of repo.commits.values()) for (const f of files) if (f.lfs) blobs.set(sha256(f.content), f);
  };

  app.addHook('onRequest', async (req) => {
    hub.log.push({ method: req.method, url: req.url, range: req.headers.range, authorization: req.headers.authorization });
  });

  const apiError = (reply: FastifyReply, status: number, message: string, code?: string) => {
    if (code) reply.header('X-Error-Code', code);
    return reply.code(status).type('application/json').send({ error: message });
  };

  /** The repo and commit a request names, or an error reply (401 gated, 404 missing). */
  const lookup = (req: FastifyRequest, reply: FastifyReply, org: string, name: string, rev: string) => {
    const repo = hub.repos.get(`${org}/${name}`);
    if (!repo) return void apiError(reply, 404, 'Repository not found', 'RepoNotFound');
    if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) {
      return void apiError(reply, 401, `Access to model ${org}/${name} is restricted. You must have access to it and be authenticated to access it.`, 'GatedRepo');
    }
    const sha = repo.commits.has(rev) ? rev : repo.refs.get(decodeURIComponent(rev));
    if (!sha) return void apiError(reply, 404, `Invalid rev id: ${rev}`, 'RevisionNotFound');
    return { repo, sha, files: repo.commits.get(sha)! };
  };

  /** Sends bytes honouring a Range header; a cut-off file sends half and drops the connection. */
  const sendBytes = (req: FastifyRequest, reply: FastifyReply, file: HubFile) => {
    let content = file.content;
    if (hub.corrupt.has(file.path)) {
      content = Buffer.from(content);
      content[content.length >> 1] ^= 0xff;
    }
    const total = content.length;
    let start = 0;
    let end = total - 1;
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (m) {
      start = Number(m[1]);
      end = m[2] ? Math.min(Number(m[2]), total - 1) : total - 1;
      if (start >= total) return reply.code(416).header('Content-Range', `bytes */${total}`).send();
    }
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream', 'Content-Length': String(end - start + 1), 'Accept-Ranges': 'bytes' };
    if (m) headers['Content-Range'] = `bytes ${start}-${end}/${total}`;
    const body = content.subarray(start, end + 1);
    if (hub.cutOnce.has(file.path) && body.length > 1) {
      hub.cutOnce.delete(file.path);
      reply.hijack();
      reply.raw.writeHead(m ? 206 : 200, { ...(reply.getHeaders() as Record<string, string>), ...headers });
      // half the bytes arrive, then the connection drops
      reply.raw.write(body.subarray(0, body.length >> 1), () => setTimeout(() => reply.raw.destroy(), 100));
      return reply;
    }
    return reply.code(m ? 206 : 200).headers(headers).send(body);
  };

  app.get<{ Params: { org: string; name: string; rev: string } }>('/api/models/:org/:name/revision/:rev', async (req, reply) => {
    const { org, name, rev } = req.params;
    const found = lookup(req, reply, org, name, rev);
    if (!found) return reply;
    return {
      _id: fakeCommit(`${org}/${name}`).slice(0, 24),
      id: `${org}/${name}`,
      sha: found.sha,
      private: false,
      gated: found.repo.token ? 'manual' : false,
      downloads: 0,
      likes: 0,
      lastModified: '2026-01-01T00:00:00.000Z',
      siblings: found.files.map((f) => ({ rfilename: f.path })),
    };
  });

  app.get<{ Params: { org: string; name: string; rev: string } }>('/api/models/:org/:name/tree/:rev', async (req, reply) => {
    const { org, name, rev } = req.params;
    const found = lookup(req, reply, org, name, rev);
    if (!found) return reply;
    return found.files.map((f) => ({
      type: 'file',
      oid: gitOid(f.lfs ? Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(f.content)}\nsize ${f.content.length}\n`) : f.content),
      size: f.content.length,
      path: f.path,
      ...(f.lfs ? { lfs: { oid: sha256(f.content), size: f.content.length, pointerSize: 134 } } : {}),
    }));
  });

  /** Per-path info (huggingface_hub's get_paths_info; @huggingface/hub's downloadFileToCacheDir). */
  app.post<{ Params: { org: string; name: string; rev: string }; Body: { paths?: string[] } }>('/api/models/:org/:name/paths-info/:rev', async (req, reply) => {
    const { org, name, rev } = req.params;
    const found = lookup(req, reply, org, name, rev);
    if (!found) return reply;
    const wanted = new Set(req.body?.paths ?? []);
    return found.files
      .filter((f) => wanted.has(f.path))
      .map((f) => ({
        type: 'file',
        oid: gitOid(f.content),
        size: f.content.length,
        path: f.path,
        lastCommit: { id: found.sha, title: 'upload', date: '2026-01-01T00:00:00.000Z' },
        ...(f.lfs ? { lfs: { oid: sha256(f.content), size: f.content.length, pointerSize: 134 } } : {}),
      }));
  });

  app.get<{ Params: { org: string; name: string; rev: string; '*': string } }>('/:org/:name/resolve/:rev/*', async (req, reply) => {
    const { org, name, rev } = req.params;
    const found = lookup(req, reply, org, name, rev);
    if (!found) return reply;
    const file = found.files.find((f) => f.path === req.params['*']);
    if (!file) return apiError(reply, 404, 'Entry not found', 'EntryNotFound');
    reply.header('X-Repo-Commit', found.sha);
    if (file.lfs) {
      const oid = sha256(file.content);
      refreshBlobs();
      return reply
        .code(302)
        .header('X-Linked-ETag', `"${oid}"`)
        .header('X-Linked-Size', String(file.content.length))
        .header('ETag', `"${gitOid(file.content)}"`)
        .header('Location', `/cdn/${oid}`)
        .send();
    }
    reply.header('ETag', `"${gitOid(file.content)}"`);
    return sendBytes(req, reply, file);
  });

  app.get<{ Params: { oid: string } }>('/cdn/:oid', async (req, reply) => {
    refreshBlobs();
    const file = blobs.get(req.params.oid);
    if (!file) return reply.code(404).send();
    reply.header('ETag', `"${req.params.oid}"`);
    return sendBytes(req, reply, file);
  });

  hub.url = await app.listen({ host: '127.0.0.1', port: 0 });
  return hub;
}
