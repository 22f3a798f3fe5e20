/**
 * The one chat-model interface every pipeline stage uses. Implemented by OpenAI-compatible
 * endpoints (./openai.ts) and by the local engine (src/engine/provider.ts).
 */

export type Role = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: Role;
  content: string;
}

export interface SamplingParams {
  temperature?: number;
  topP?: number;
  /** Local engine only; endpoints that do not support it ignore it. */
  topK?: number;
  maxTokens?: number;
  seed?: number;
  /** Number of samples for the same messages. */
  n?: number;
  stop?: string[];
  /** Local engine only: keep tokens at least minP times as likely as the most likely one. */
  minP?: number;
  /** Added to the logits of these token ids (OpenAI's logit_bias, keys are token ids); sent to endpoints too. */
  logitBias?: Record<string, number>;
  presencePenalty?: number;
  frequencyPenalty?: number;
}

export interface ChatRequest extends SamplingParams {
  messages: ChatMessage[];
  /** Return per-token log-probabilities of the generated text. */
  logprobs?: boolean;
  /** With logprobs: how many alternatives per position (0-20). */
  topLogprobs?: number;
  /** Ask for JSON output matching this schema (structured output). */
  jsonSchema?: { name: string; schema: Record<string, unknown> };
}

export interface TokenAlternative {
  token: string;
  logprob: number;
}

export interface TokenLogprob extends TokenAlternative {
  top: TokenAlternative[];
}

export type FinishReason = 'stop' | 'length' | 'content_filter' | 'tool_calls' | 'other';

export interface ChatChoice {
  text: string;
  finishReason: FinishReason;
  logprobs?: TokenLogprob[];
}

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

export interface ChatResult {
  choices: ChatChoice[];
  usage: TokenUsage;
  /** The model id the server reported. */
  model: string;
  /** True when every choice came from the on-disk response cache. */
  cached: boolean;
}

export interface CallOptions {
  signal?: AbortSignal;
}

/** A raw-text completion request (no chat template), for /v1/completions. */
export interface CompletionRequest extends SamplingParams {
  prompt: string;
  logprobs?: boolean;
  topLogprobs?: number;
}

export interface ChatModel {
  /** Stable identity used in cache keys, journals and reports (never contains secrets). */
  readonly id: string;
  chat(request: ChatRequest, options?: CallOptions): Promise<ChatResult>;
  /** Sentence embeddings, where the backend has them (endpoint /v1/embeddings, engine pooled states). */
  embed?(texts: string[], options?: CallOptions): Promise<number[][]>;
  /** Raw-text completion, where the backend has it (the local engine). */
  complete?(request: CompletionRequest, options?: CallOptions): Promise<ChatResult>;
  /** Token count with the model's own tokenizer, where it has one. */
  countTokens?(text: string): number;
  /** Tokens the model attends to (prompt + reply), where known; longer prompts are refused. */
  readonly contextLength?: number;
  close?(): Promise<void>;
}
