/**
 * Serves ChatModels over the OpenAI HTTP protocol (chat completions with SSE streaming, completions,
 * embeddings, models; logprobs), so that any OpenAI client, and persona-lab itself, can use the local
 * engine as an endpoint. Built on fastify; binds 127.0.0.1 unless told otherwise.
 *
 * It stays up under load and bad requests: bodies are size-limited (413), prompts longer than the
 * model's context get 400 (context_length_exceeded) and max_tokens is clamped to what is left of it,
 * at most `concurrency` requests run at once with `maxQueue` more waiting (beyond that 503 with
 * Retry-After), and a request still unanswered after `timeoutMs` gets 504 (it leaves the queue
 * unstarted if it had not started). Parameters the models cannot honour are refused with 400, never
 * ignored. One access-log line per request, without prompt text unless `logPrompts`.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionTokenLogprob } from 'openai/resources/chat/completions';
import type { Completion } from 'openai/resources/completions';
import type { CreateEmbeddingResponse } from 'openai/resources/embeddings';
import type { Model as ModelInfo } from 'openai/resources/models';
import pLimit from 'p-limit';
import { z } from 'zod';
import { ContextLengthError, InputError, ProviderError } from '../core/errors.js';
import type { ChatMessage, ChatModel, ChatResult, SamplingParams, TokenLogprob } from './types.js';

export interface ServeOptions {
  host?: string;
  port?: number;
  /** Largest request body in bytes (default 1 MiB); larger ones get 413. */
  bodyLimit?: number;
  /** Requests the models work on at once (default 8; the engine batches them). */
  concurrency?: number;
  /** Requests that may wait for a slot (default 64); more get 503 with Retry-After. */
  maxQueue?: number;
  /** A request unanswered after this many ms gets 504 (default 300000). */
  timeoutMs?: number;
  /** Where access-log lines go (default stderr); false for none. */
  accessLog?: ((line: string) => void) | false;
  /** Put the request's last message (truncated) in the access log. */
  logPrompts?: boolean;
}

const MAX_N = 16;

const sampling = {
  model: z.string(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  top_k: z.number().int().positive().optional(),
  min_p: z.number().min(0).max(1).optional(),
  max_tokens: z.number().int().positive().nullable().optional(),
  seed: z.number().int().nullable().optional(),
  n: z.number().int().min(1).max(MAX_N).nullable().optional(),
  stop: z.union([z.string(), z.array(z.string()).max(16)]).nullable().optional(),
  stream: z.boolean().nullable().optional(),
  logit_bias: z.record(z.string().regex(/^\d+$/, 'token ids as keys'), z.number().min(-100).max(100)).nullable().optional(),
  presence_penalty: z.number().min(-2).max(2).nullable().optional(),
  frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
};

const contentPart = z.object({ type: z.string(), text: z.string().optional() }).loose();

const chatBody = z.object({
  ...sampling,
  max_completion_tokens: z.number().int().positive().nullable().optional(),
  messages: z
    .array(z.object({ role: z.enum(['system', 'user', 'assistant', 'developer', 'tool', 'function']), content: z.union([z.string(), z.array(contentPart)]).nullable().optional() }).loose())
    .min(1),
  logprobs: z.boolean().nullable().optional(),
  top_logprobs: z.number().int().min(0).max(20).nullable().optional(),
  response_format: z.object({ type: z.enum(['text', 'json_object', 'json_schema']), json_schema: z.object({ name: z.string(), schema: z.record(z.string(), z.unknown()).optional() }).loose().optional() }).loose().optional(),
  tools: z.array(z.unknown()).nullable().optional(),
  tool_choice: z.unknown().optional(),
  functions: z.array(z.unknown()).optional(),
});
type ChatBody = z.infer<typeof chatBody>;

const completionBody = z.object({
  ...sampling,
  prompt: z.union([z.string(), z.array(z.string()).length(1)]),
  logprobs: z.number().int().min(0).max(20).nullable().optional(),
});

const embeddingBody = z.object({ model: z.string(), input: z.union([z.string(), z.array(z.string()).min(1).max(256)]), encoding_format: z.enum(['float', 'base64']).optional() });

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'invalid_request_error',
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  if (body === undefined || body === null || typeof body !== 'object') throw new HttpError(400, 'request body must be a JSON object');
  const result = schema.safeParse(body);
  if (!result.success) {
    const issue = result.error.issues[0];
    const param = issue.path.join('.') || null;
    throw new HttpError(400, `${param ?? 'body'}: ${issue.message}`, 'invalid_request_error', null, param);
  }
  return result.data;
}

const stopList = (stop: string | string[] | null | undefined) => (stop == null ? undefined : Array.isArray(stop) ? stop : [stop]);
const orUndefined = <T>(v: T | null | undefined): T | undefined => v ?? undefined;

/** The OpenAI sampling fields as SamplingParams (shared by chat and completions). */
function samplingParams(body: z.infer<z.ZodObject<typeof sampling>>): SamplingParams {
  return {
    temperature: orUndefined(body.temperature),
    topP: orUndefined(body.top_p),
    topK: body.top_k,
    minP: body.min_p,
    maxTokens: orUndefined(body.max_tokens),
    seed: orUndefined(body.seed),
    n: orUndefined(body.n),
    stop: stopList(body.stop),
    logitBias: orUndefined(body.logit_bias),
    presencePenalty: orUndefined(body.presence_penalty) || undefined,
    frequencyPenalty: orUndefined(body.frequency_penalty) || undefined,
  };
}

/** Messages as ChatMessages: text content parts joined; anything else the engine cannot read is refused. */
function chatMessages(body: ChatBody): ChatMessage[] {
  return body.messages.map((m, i) => {
    if (m.role === 'tool' || m.role === 'function') throw new HttpError(400, `messages.${i}.role: "${m.role}" messages are not supported (this server has no tool calling)`, 'invalid_request_error', null, `messages.${i}.role`);
    if (m.content == null) throw new HttpError(400, `messages.${i}.content: expected text (tool calls are not supported)`, 'invalid_request_error', null, `messages.${i}.content`);
    let content: string;
    if (typeof m.content === 'string') content = m.content;
    else {
      content = m.content
        .map((part, j) => {
          if (part.type !== 'text' || typeof part.text !== 'string') {
            throw new HttpError(400, `messages.${i}.content.${j}: only text content parts are supported (found type "${part.type}")`, 'invalid_request_error', null, `messages.${i}.content.${j}.type`);
          }
          return part.text;
        })
        .join('');
    }
    return { role: m.role === 'developer' ? 'system' : m.role, content };
  });
}

/** Refuses what no ChatModel here can honour; returns the structured-output request, if any. */
function refuseUnsupported(body: ChatBody): { name: string; schema: Record<string, unknown> } | undefined {
  if ((body.tools?.length || body.functions?.length) && body.tool_choice !== 'none') {
    throw new HttpError(400, 'tools: tool calling is not supported by this server (send no tools, or tool_choice "none")', 'invalid_request_error', null, 'tools');
  }
  const format = body.response_format;
  if (!format || format.type === 'text') return undefined;
  if (format.type === 'json_object') throw new HttpError(400, 'response_format: json_object is not supported (no constrained decoding)', 'invalid_request_error', null, 'response_format');
  if (!format.json_schema?.schema) throw new HttpError(400, 'response_format.json_schema.schema: required for json_schema', 'invalid_request_error', null, 'response_format.json_schema.schema');
  // passed on: a model that cannot constrain its output refuses it (the engine does, with 400)
  return { name: format.json_schema.name, schema: format.json_schema.schema };
}

const chatLogprobs = (tokens: TokenLogprob[] | undefined): ChatCompletion.Choice.Logprobs | null =>
  tokens
    ? {
        refusal: null,
        content: tokens.map(
          (t): ChatCompletionTokenLogprob => ({
            token: t.token,
            logprob: t.logprob,
            bytes: [...Buffer.from(t.token)],
            top_logprobs: t.top.map((a) => ({ token: a.token, logprob: a.logprob, bytes: [...Buffer.from(a.token)] })),
          }),
        ),
      }
    : null;

const usageOf = (r: ChatResult) => ({
  prompt_tokens: r.usage.promptTokens,
  completion_tokens: r.usage.completionTokens,
  total_tokens: r.usage.promptTokens + r.usage.completionTokens,
});

type FinishReason = ChatCompletion.Choice['finish_reason'];
const finishReason = (r: string): FinishReason => (r === 'stop' || r === 'length' || r === 'content_filter' || r === 'tool_calls' ? r : 'stop');

/** An error as OpenAI shapes it, with its HTTP status. */
function errorResponse(error: unknown): { status: number; body: { error: { message: string; type: string; code: string | null; param: string | null } }; retryAfter?: number } {
  const shaped = (status: number, message: string, type: string, code: string | null = null, param: string | null = null) => ({ status, body: { error: { message, type, code, param } } });
  if (error instanceof HttpError) return { ...shaped(error.status, error.message, error.type, error.code, error.param), ...(error.status === 503 ? { retryAfter: 1 } : {}) };
  if (error instanceof ContextLengthError) {
    return shaped(400, `This model's maximum context length is ${error.contextLength} tokens; the ${error.file} has ${error.tokens} tokens. Shorten the messages.`, 'invalid_request_error', 'context_length_exceeded', 'messages');
  }
  if (error instanceof InputError) return shaped(400, error.message, 'invalid_request_error', null, error.field || null);
  if (error instanceof ProviderError && error.status && error.status >= 400 && error.status < 500) return shaped(error.status, error.message, 'invalid_request_error');
  if (error instanceof DOMException && error.name === 'TimeoutError') return shaped(504, 'the request timed out on the server', 'timeout_error');
  const fastifyError = error as FastifyError;
  if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return shaped(413, `request body is larger than the server's limit (${fastifyError.message})`, 'invalid_request_error', 'request_too_large');
  if (fastifyError.statusCode && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) return shaped(fastifyError.statusCode, fastifyError.message, 'invalid_request_error');
  return shaped(500, (error as Error).message ?? String(error), 'server_error');
}

export interface ServeHandle {
  url: string;
  close(): Promise<void>;
}

export async function serveModels(models: Record<string, ChatModel>, options: ServeOptions = {}): Promise<ServeHandle> {
  const concurrency = options.concurrency ?? 8;
  const maxQueue = options.maxQueue ?? 64;
  const timeoutMs = options.timeoutMs ?? 300_000;
  const log = options.accessLog === false ? undefined : (options.accessLog ?? ((line: string) => process.stderr.write(`${line}\n`)));
  const limit = pLimit(concurrency);
  // what the access log says about each request beyond method, path and status
  const notes = new WeakMap<FastifyRequest, string[]>();
  const note = (request: FastifyRequest, ...words: string[]) => notes.set(request, [...(notes.get(request) ?? []), ...words]);

  const modelFor = (request: FastifyRequest, id: string): ChatModel => {
    note(request, `model=${JSON.stringify(id)}`);
    const model = models[id];
    if (!model) throw new HttpError(404, `The model "${id}" does not exist here; served models: ${Object.keys(models).join(', ')}`, 'invalid_request_error', 'model_not_found', 'model');
    return model;
  };

  /**
   * Runs `work` in a slot: refused with 503 when the queue is full, abandoned with 504 at the
   * deadline and when the client goes away. The slot is held until the work settles, so abandoned
   * work still counts against the bound while it runs.
   */
  async function admit<T>(request: FastifyRequest, reply: FastifyReply, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (limit.activeCount + limit.pendingCount >= concurrency + maxQueue) {
      throw new HttpError(503, `the server is at capacity (${concurrency} running, ${maxQueue} waiting); retry later`, 'server_overloaded', 'server_overloaded');
    }
    const gone = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) gone.abort(new Error('client closed the connection'));
    });
    const signal = AbortSignal.any([gone.signal, AbortSignal.timeout(timeoutMs)]);
    const running = limit(() => {
      signal.throwIfAborted();
      return work(signal);
    });
    running.catch(() => undefined); // the race below may have answered already
    const abandoned = new Promise<never>((_, reject) => {
      if (signal.aborted) reject(signal.reason);
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
    return Promise.race([running, abandoned]);
  }

  const app = Fastify({ bodyLimit: options.bodyLimit ?? 1024 * 1024, logger: false, return503OnClosing: true });

  app.addHook('onResponse', async (request, reply) => {
    if (!log) return;
    // the path only: a query string may carry credentials
    const path = request.url.split('?')[0];
    log([new Date().toISOString(), request.method, path, reply.statusCode, `${Math.round(reply.elapsedTime)}ms`, ...(notes.get(request) ?? [])].join(' '));
  });

  app.setErrorHandler((error, _request, reply) => {
    const { status, body, retryAfter } = errorResponse(error);
    if (retryAfter) reply.header('retry-after', String(retryAfter));
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: { message: `no route ${request.method} ${request.url.split('?')[0]}`, type: 'invalid_request_error', code: 'not_found', param: null } }),
  );

  const modelInfo = (id: string): ModelInfo => ({ id, object: 'model', created: 0, owned_by: 'persona-lab' });
  app.get('/health', async () => ({ status: 'ok', models: Object.keys(models), running: limit.activeCount, waiting: limit.pendingCount }));
  app.get('/v1/models', async () => ({ object: 'list', data: Object.keys(models).map(modelInfo) }));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (request) => modelFor(request, request.params.id) && modelInfo(request.params.id));

  app.post('/v1/chat/completions', async (request, reply) => {
    const body = parse(chatBody, request.body);
    const model = modelFor(request, body.model);
    const jsonSchema = refuseUnsupported(body);
    const messages = chatMessages(body);
    if (options.logPrompts) note(request, `prompt=${JSON.stringify(messages.at(-1)!.content.slice(0, 200))}`);
    const result = await admit(request, reply, (signal) =>
      model.chat(
        {
          ...samplingParams(body),
          maxTokens: orUndefined(body.max_completion_tokens ?? body.max_tokens),
          messages,
          logprobs: orUndefined(body.logprobs),
          topLogprobs: orUndefined(body.top_logprobs),
          ...(jsonSchema ? { jsonSchema } : {}),
        },
        { signal },
      ),
    );
    note(request, `prompt_tokens=${result.usage.promptTokens}`, `completion_tokens=${result.usage.completionTokens}`);
    const id = `chatcmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    if (!body.stream) {
      const completion: ChatCompletion = {
        id,
        object: 'chat.completion',
        created,
        model: body.model,
        choices: result.choices.map((c, index) => ({ index, message: { role: 'assistant', content: c.text, refusal: null }, finish_reason: finishReason(c.finishReason), logprobs: body.logprobs ? chatLogprobs(c.logprobs) : null })),
        usage: usageOf(result),
      };
      return completion;
    }
    // The engine returns whole replies; the stream sends each choice token by token (by its logprob
    // tokens where present, else by words) so streaming clients work unchanged.
    const chunk = (choices: ChatCompletionChunk['choices'], extra: Partial<ChatCompletionChunk> = {}) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, choices, ...extra } satisfies ChatCompletionChunk)}\n\n`;
    const events: string[] = [];
    result.choices.forEach((c, index) => {
      events.push(chunk([{ index, delta: { role: 'assistant', content: '' }, finish_reason: null }]));
      const pieces = c.logprobs?.length ? c.logprobs.map((t) => t.token) : c.text.split(/(?<=\s)/);
      pieces.forEach((piece, i) => events.push(chunk([{ index, delta: { content: piece }, finish_reason: null, logprobs: body.logprobs && c.logprobs ? chatLogprobs([c.logprobs[i]]) : null }])));
      events.push(chunk([{ index, delta: {}, finish_reason: finishReason(c.finishReason) }]));
    });
    events.push(chunk([], { usage: usageOf(result) }), 'data: [DONE]\n\n');
    return reply.header('content-type', 'text/event-stream').header('cache-control', 'no-cache').send(events.join(''));
  });

  app.post('/v1/completions', async (request, reply) => {
    const body = parse(completionBody, request.body);
    const model = modelFor(request, body.model);
    if (body.stream) throw new HttpError(400, 'stream: supported on /v1/chat/completions only', 'invalid_request_error', null, 'stream');
    if (!model.complete) throw new HttpError(400, `model "${body.model}" has no raw completion`);
    const complete = model.complete.bind(model);
    const prompt = Array.isArray(body.prompt) ? body.prompt[0] : body.prompt;
    if (options.logPrompts) note(request, `prompt=${JSON.stringify(prompt.slice(0, 200))}`);
    const result = await admit(request, reply, (signal) =>
      complete({ ...samplingParams(body), prompt, logprobs: body.logprobs != null, topLogprobs: orUndefined(body.logprobs) }, { signal }),
    );
    note(request, `prompt_tokens=${result.usage.promptTokens}`, `completion_tokens=${result.usage.completionTokens}`);
    const completion: Completion = {
      id: `cmpl-${randomUUID()}`,
      object: 'text_completion',
      created: Math.floor(Date.now() / 1000),
      model: body.model,
      choices: result.choices.map((c, index) => ({
        index,
        text: c.text,
        finish_reason: c.finishReason === 'length' ? 'length' : 'stop',
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
    };
    return completion;
  });

  app.post('/v1/embeddings', async (request, reply) => {
    const body = parse(embeddingBody, request.body);
    const model = modelFor(request, body.model);
    if (!model.embed) throw new HttpError(400, `model "${body.model}" has no embeddings`);
    const embed = model.embed.bind(model);
    const inputs = Array.isArray(body.input) ? body.input : [body.input];
    const vectors = await admit(request, reply, (signal) => embed(inputs, { signal }));
    const tokens = inputs.reduce((n, t) => n + (model.countTokens?.(t) ?? 0), 0);
    const response: CreateEmbeddingResponse = {
      object: 'list',
      model: body.model,
      data: vectors.map((vector, index) => ({ object: 'embedding', index, embedding: body.encoding_format === 'base64' ? (Buffer.from(new Float32Array(vector).buffer).toString('base64') as unknown as number[]) : vector })),
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    };
    return response;
  });

  await app.listen({ port: options.port ?? 0, host: options.host ?? '127.0.0.1' });
  const address = app.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}/v1`,
    close: () => app.close(),
  };
}
