import type { ZodError } from 'zod';

/**
 * Bad input from a user: a file, a field path inside it and what was expected.
 * The CLI prints it as one line and exits 2; nothing may be written before it is thrown.
 */
export class InputError extends Error {
  readonly file: string;
  readonly field: string;
  readonly expected: string;

  constructor(file: string, field: string, expected: string) {
    super(`${file}${field ? `: ${field}` : ''}: ${expected}`);
    this.name = 'InputError';
    this.file = file;
    this.field = field;
    this.expected = expected;
  }

  /** The first issue of a zod error, as an InputError naming the file and the field path. */
  static fromZod(file: string, error: ZodError): InputError {
    const issue = error.issues[0];
    const field = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');
    return new InputError(file, field || '(root)', issue.message);
  }
}

/** A failure of a model endpoint or the engine that is not the user's input. */
export class ProviderError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly retryable = false,
  ) {
    super(message);
    this.name = 'ProviderError';
  }
}

/**
 * A request longer than the model can attend to (prompt tokens >= its context). Servers answer it
 * with 400 and code context_length_exceeded, as OpenAI-compatible servers do.
 */
export class ContextLengthError extends InputError {
  constructor(
    what: string,
    readonly tokens: number,
    readonly contextLength: number,
  ) {
    super(what, 'prompt', `${tokens} tokens, but the model's maximum context length is ${contextLength} tokens (shorten the input)`);
    this.name = 'ContextLengthError';
  }
}
