/**
 * Serves ChatModels over the OpenAI HTTP protocol (chat completions with SSE streaming, completions,
 * embeddings, models; logprobs), so that any OpenAI client, and persona-lab itself, can use the local
 * engine as an endpoint. Binds 127.0.0.1 unless told otherwise.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import type { ChatModel, ChatResult, TokenLogprob } from './types.js';

const sampling = {
  model: z.string(),
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().gt(0).max(1).optional(),
  top_k: z.number().int().positive().optional(),
  max_tokens: z.number().int().positive().optional(),
  max_completion_tokens: z.number().int().positive().optional(),
  seed: z.number().int().optional(),
  n: z.number().int().min(1).max(128).optional(),
  stop: z.union([z.string(), z.array(z.string()).max(16)]).nullable().optional(),
  stream: z.boolean().optional(),
};

const chatBody = z.object({
  ...sampling,
  messages: z.array(z.object({ role: z.enum(['system', 'user', 'assistant', 'developer']), content: z.string() })).min(1),
  logprobs: z.boolean().optional(),
  top_logprobs: z.number().int().min(0).max(20).optional(),
});

const completionBody = z.object({
  ...sampling,
  prompt: z.string(),
  logprobs: z.number().int().min(0).max(20).nullable().optional(),
});

const embeddingBody = z.object({ model: z.string(), input: z.union([z.string(), z.array(z.string())]), encoding_format: z.enum(['float', 'base64']).optional() });

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'invalid_request_error',
  ) {
    super(message);
  }
}

function parse<T>(schema: z.ZodType<T>, raw: string): T {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new HttpError(400, 'request body is not valid JSON');
  }
  const result = schema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new HttpError(400, `${issue.path.join('.') || 'body'}: ${issue.message}`);
  }
  return result.data;
}

const stopList = (stop: string | string[] | null | undefined) => (stop == null ? undefined : Array.isArray(stop) ? stop : [stop]);

function sendJson(res: ServerResponse, status: number, payload: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(payload));
}

const chatLogprobs = (tokens: TokenLogprob[] | undefined) =>
  tokens && {
    content: tokens.map((t) => ({
      token: t.token,
      logprob: t.logprob,
      bytes: [...Buffer.from(t.token)],
      top_logprobs: t.top.map((a) => ({ token: a.token, logprob: a.logprob, bytes: [...Buffer.from(a.token)] })),
    })),
  };

const usageOf = (r: ChatResult) => ({
  prompt_tokens: r.usage.promptTokens,
  completion_tokens: r.usage.completionTokens,
  total_tokens: r.usage.promptTokens + r.usage.completionTokens,
});

export interface ServeHandle {
  url: string;
  close(): Promise<void>;
}

export async function serveModels(models: Record<string, ChatModel>, options: { host?: string; port?: number } = {}): Promise<ServeHandle> {
  const modelFor = (id: string): ChatModel => {
    const model = models[id] ?? (Object.keys(models).length === 1 ? Object.values(models)[0] : undefined);
    if (!model) throw new HttpError(404, `model "${id}" is not served here (served: ${Object.keys(models).join(', ')})`, 'not_found_error');
    return model;
  };

  async function handle(req: IncomingMessage, res: ServerResponse, signal: AbortSignal) {
    const path = (req.url ?? '').split('?')[0].replace(/\/+$/, '');
    if (req.method === 'GET' && path === '/v1/models') {
      return sendJson(res, 200, { object: 'list', data: Object.keys(models).map((id) => ({ id, object: 'model', created: 0, owned_by: 'persona-lab' })) });
    }
    if (req.method !== 'POST') throw new HttpError(404, `no route ${req.method} ${path}`, 'not_found_error');
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const id = `${path === '/v1/completions' ? 'cmpl' : 'chatcmpl'}-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);

    if (path === '/v1/chat/completions') {
      const body = parse(chatBody, raw);
      const result = await modelFor(body.model).chat(
        {
          messages: body.messages.map((m) => ({ role: m.role === 'developer' ? 'system' : m.role, content: m.content })),
          temperature: body.temperature,
          topP: body.top_p,
          topK: body.top_k,
          maxTokens: body.max_completion_tokens ?? body.max_tokens,
          seed: body.seed,
          n: body.n,
          stop: stopList(body.stop),
          logprobs: body.logprobs,
          topLogprobs: body.top_logprobs,
        },
        { signal },
      );
      if (!body.stream) {
        return sendJson(res, 200, {
          id,
          object: 'chat.completion',
          created,
          model: body.model,
          choices: result.choices.map((c, index) => ({ index, message: { role: 'assistant', content: c.text }, finish_reason: c.finishReason, logprobs: body.logprobs ? chatLogprobs(c.logprobs) : null })),
          usage: usageOf(result),
        });
      }
      // The engine returns whole replies; the stream sends each choice token by token (by its logprob
      // tokens where present, else by words) so streaming clients work unchanged.
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      const chunk = (payload: unknown) => res.write(`data: ${JSON.stringify(payload)}\n\n`);
      result.choices.forEach((c, index) => {
        chunk({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [{ index, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
        const pieces = c.logprobs?.length ? c.logprobs.map((t) => t.token) : c.text.split(/(?<=\s)/);
        pieces.forEach((piece, i) =>
          chunk({
            id,
            object: 'chat.completion.chunk',
            created,
            model: body.model,
            choices: [{ index, delta: { content: piece }, finish_reason: null, logprobs: body.logprobs && c.logprobs ? chatLogprobs([c.logprobs[i]]) : null }],
          }),
        );
        chunk({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [{ index, delta: {}, finish_reason: c.finishReason }] });
      });
      chunk({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [], usage: usageOf(result) });
      return res.end('data: [DONE]\n\n');
    }

    if (path === '/v1/completions') {
      const body = parse(completionBody, raw);
      if (body.stream) throw new HttpError(400, 'stream is supported on /v1/chat/completions only');
      const model = modelFor(body.model);
      if (!model.complete) throw new HttpError(400, `model "${body.model}" has no raw completion`);
      const result = await model.complete(
        {
          prompt: body.prompt,
          temperature: body.temperature,
          topP: body.top_p,
          topK: body.top_k,
          maxTokens: body.max_tokens,
          seed: body.seed,
          n: body.n,
          stop: stopList(body.stop),
          logprobs: body.logprobs != null,
          topLogprobs: body.logprobs ?? undefined,
        },
        { signal },
      );
      return sendJson(res, 200, {
        id,
        object: 'text_completion',
        created,
        model: body.model,
        choices: result.choices.map((c, index) => ({
          index,
          text: c.text,
          finish_reason: c.finishReason,
          logprobs:
            body.logprobs != null && c.logprobs
              ? {
                  tokens: c.logprobs.map((t) => t.token),
                  token_logprobs: c.logprobs.map((t) => t.logprob),
                  top_logprobs: c.logprobs.map((t) => Object.fromEntries(t.top.map((a) => [a.token, a.logprob]))),
                  text_offset: c.logprobs.reduce<number[]>((offsets, t, i) => [...offsets, i === 0 ? 0 : offsets[i - 1] + c.logprobs![i - 1].token.length], []),
                }
              : null,
        })),
        usage: usageOf(result),
      });
    }

    if (path === '/v1/embeddings') {
      const body = parse(embeddingBody, raw);
      const model = modelFor(body.model);
      if (!model.embed) throw new HttpError(400, `model "${body.model}" has no embeddings`);
      const inputs = Array.isArray(body.input) ? body.input : [body.input];
      const vectors = await model.embed(inputs, { signal });
      const tokens = inputs.reduce((n, t) => n + (model.countTokens?.(t) ?? 0), 0);
      return sendJson(res, 200, { object: 'list', model: body.model, data: vectors.map((vector, index) => ({ object: 'embedding', index, embedding: body.encoding_format === 'base64' ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector })), usage: { prompt_tokens: tokens, total_tokens: tokens } });
    }
    throw new HttpError(404, `no route POST ${path}`, 'not_found_error');
  }

  const server = createServer((req, res) => {
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    handle(req, res, abort.signal).catch((error: unknown) => {
      if (res.headersSent) return res.end();
      const status = error instanceof HttpError ? error.status : 500;
      sendJson(res, status, { error: { message: (error as Error).message, type: error instanceof HttpError ? error.type : 'server_error', code: null, param: null } });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve);
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}/v1`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
