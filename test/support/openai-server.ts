/**
 * A real OpenAI-compatible HTTP server on 127.0.0.1 for tests: it speaks the chat-completions,
 * embeddings and models protocol (JSON and SSE streaming) and lets a test decide each reply or inject
 * faults (status codes, Retry-After, stalls, malformed bodies). Clients reach it through the real
 * `openai` SDK with baseURL = server.baseURL.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ChatCompletionBody {
  model: string;
  messages: { role: string; content: string }[];
  temperature?: number;
  top_p?: number;
  max_tokens?: number;
  max_completion_tokens?: number;
  seed?: number;
  n?: number;
  stop?: string | string[];
  logprobs?: boolean;
  top_logprobs?: number;
  logit_bias?: Record<string, number>;
  presence_penalty?: number;
  frequency_penalty?: number;
  stream?: boolean;
  response_format?: { type: string; json_schema?: { name: string; schema: unknown } };
}

/** What a test's handler returns for one chat request. */
export type Reply =
  | string
  | string[] // one text per choice (n)
  | { texts: string[]; logprobs?: { token: string; logprob: number; top: { token: string; logprob: number }[] }[][]; finishReason?: string }
  | { fault: 'status'; status: number; retryAfter?: number; body?: string; headers?: Record<string, string> }
  | { fault: 'stall'; ms: number }
  | { fault: 'malformed' }
  | { fault: 'reset' };

export interface FakeServerOptions {
  /** Decides the reply to each chat request; `attempt` counts requests with the same body so far (1-based). */
  chat?: (body: ChatCompletionBody, attempt: number) => Reply | Promise<Reply>;
  embed?: (inputs: string[]) => number[][];
  models?: string[];
}

export interface FakeServer {
  baseURL: string;
  /** Every request body received, in order (chat requests only). */
  requests: ChatCompletionBody[];
  /** Authorization headers seen (to check keys are sent, and never elsewhere). */
  authHeaders: string[];
  /** Chat requests being answered right now, and the most at any one time (concurrency limits). */
  readonly inFlight: number;
  readonly maxInFlight: number;
  close(): Promise<void>;
}

const tokensOf = (text: string) => text.split(/(?<=\s)/).filter(Boolean);

function completion(body: ChatCompletionBody, texts: string[], reply: Exclude<Reply, string | string[] | { fault: string }> | undefined) {
  const promptTokens = body.messages.reduce((n, m) => n + tokensOf(m.content).length, 0);
  return {
    id: `chatcmpl-${Math.random().toString(36).slice(2)}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: body.model,
    choices: texts.map((text, index) => ({
      index,
      message: { role: 'assistant', content: text },
      finish_reason: reply?.finishReason ?? 'stop',
      logprobs: body.logprobs
        ? {
            content: (reply?.logprobs?.[index] ?? tokensOf(text).map((t) => ({ token: t, logprob: -0.1, top: [] }))).map((t) => ({
              token: t.token,
              logprob: t.logprob,
              bytes: null,
              top_logprobs: t.top.map((a) => ({ token: a.token, logprob: a.logprob, bytes: null })),
            })),
          }
        : null,
    })),
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: texts.reduce((n, t) => n + tokensOf(t).length, 0),
      total_tokens: promptTokens + texts.reduce((n, t) => n + tokensOf(t).length, 0),
    },
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(typeof payload === 'string' ? payload : JSON.stringify(payload));
}

/** The default handler: echoes the last user message, so tests can see what was asked. */
const echo = (body: ChatCompletionBody): Reply => {
  const last = body.messages.at(-1)?.content ?? '';
  return Array.from({ length: body.n ?? 1 }, (_, i) => `echo(${i}): ${last}`);
};

export async function startFakeServer(options: FakeServerOptions = {}): Promise<FakeServer> {
  const requests: ChatCompletionBody[] = [];
  const authHeaders: string[] = [];
  const attempts = new Map<string, number>();
  const sockets = new Set<import('node:net').Socket>();
  let inFlight = 0;
  let maxInFlight = 0;

  const server: Server = createServer(async (req, res) => {
    authHeaders.push(String(req.headers.authorization ?? ''));
    const url = req.url ?? '';
    try {
      if (req.method === 'GET' && url.endsWith('/models')) {
        return send(res, 200, { object: 'list', data: (options.models ?? ['fake-model']).map((id) => ({ id, object: 'model', created: 0, owned_by: 'test' })) });
      }
      const raw = await readBody(req);
      if (url.endsWith('/embeddings')) {
        const body = JSON.parse(raw) as { input: string | string[] };
        const inputs = Array.isArray(body.input) ? body.input : [body.input];
        const vectors = (options.embed ?? ((xs) => xs.map((x) => [x.length, (x.match(/[aeiou]/g) ?? []).length, 1])))(inputs);
        return send(res, 200, {
          object: 'list',
          data: vectors.map((embedding, index) => ({ object: 'embedding', index, embedding })),
          model: 'fake-embed',
          usage: { prompt_tokens: 0, total_tokens: 0 },
        });
      }
      if (!url.endsWith('/chat/completions')) return send(res, 404, { error: { message: `no route ${url}` } });
      const body = JSON.parse(raw) as ChatCompletionBody;
      requests.push(body);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      let done = false;
      const finish = () => {
        if (!done) inFlight--;
        done = true;
      };
      res.once('finish', finish);
      res.once('close', finish);
      const attempt = (attempts.get(raw) ?? 0) + 1;
      attempts.set(raw, attempt);
      const reply = await (options.chat ?? echo)(body, attempt);
      if (typeof reply === 'object' && !Array.isArray(reply) && 'fault' in reply) {
        switch (reply.fault) {
          case 'status':
            return send(res, reply.status, reply.body ?? { error: { message: `injected ${reply.status}`, type: 'server_error' } }, {
              ...(reply.retryAfter !== undefined ? { 'retry-after': String(reply.retryAfter) } : {}),
              ...reply.headers,
            });
          case 'stall':
            await new Promise((r) => setTimeout(r, reply.ms));
            if (!res.destroyed) send(res, 200, completion(body, ['late'], undefined));
            return;
          case 'malformed':
            res.writeHead(200, { 'content-type': 'application/json' });
            return res.end('{"id": "broken", "choices": [ {"mess');
          case 'reset':
            return req.socket.destroy();
        }
      }
      const texts = typeof reply === 'string' ? [reply] : Array.isArray(reply) ? reply : reply.texts;
      const full = completion(body, texts, typeof reply === 'object' && !Array.isArray(reply) ? reply : undefined);
      if (!body.stream) return send(res, 200, full);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const choice of full.choices) {
        for (const piece of tokensOf(choice.message.content)) {
          res.write(`data: ${JSON.stringify({ id: full.id, object: 'chat.completion.chunk', created: full.created, model: full.model, choices: [{ index: choice.index, delta: { content: piece }, finish_reason: null }] })}\n\n`);
        }
        res.write(`data: ${JSON.stringify({ id: full.id, object: 'chat.completion.chunk', created: full.created, model: full.model, choices: [{ index: choice.index, delta: {}, finish_reason: choice.finish_reason }] })}\n\n`);
      }
      res.end('data: [DONE]\n\n');
    } catch (error) {
      if (!res.headersSent) send(res, 500, { error: { message: String(error) } });
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    requests,
    authHeaders,
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
