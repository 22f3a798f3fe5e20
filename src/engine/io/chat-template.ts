/**
 * Chat templates as transformers finds and renders them: `chat_template.jinja` (newer checkpoints),
 * else tokenizer_config.json's `chat_template`, a string or a list of named templates
 * (`[{name: 'default', template}, {name: 'tool_use', template}]`). Rendered with @huggingface/jinja.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { InputError } from '../../core/errors.js';

/** A message as chat templates read it: any role, extra fields passed through (tool calls, names). */
export interface TemplateMessage {
  role: string;
  content: string;
  [field: string]: unknown;
}

export interface RenderOptions {
  /** End with the opening of an assistant turn (what generation continues from). */
  addGenerationPrompt?: boolean;
  /** Tool definitions (JSON schema objects) for templates that support them. */
  tools?: unknown[];
  /** A named template; default: `tool_use` when tools are given and it exists, else `default`. */
  templateName?: string;
  /** Extra template variables: bos_token/eos_token (the tokenizer fills them), enable_thinking, date_string... */
  variables?: Record<string, unknown>;
}

export class ChatTemplates {
  private readonly compiled = new Map<string, Template>();

  /** `templates` maps names to Jinja source; `file` names their source in errors. */
  constructor(
    readonly templates: ReadonlyMap<string, string>,
    readonly file: string,
  ) {
    for (const [name, source] of templates) {
      try {
        this.compiled.set(name, new Template(source));
      } catch (error) {
        throw new InputError(file, templates.size > 1 ? `chat_template.${name}` : 'chat_template', `a Jinja template (${(error as Error).message})`);
      }
    }
  }

  /** The model directory's chat templates, or null when it has none (a base model). */
  static load(dir: string, tokenizerConfig: Record<string, unknown>): ChatTemplates | null {
    const jinjaFile = join(dir, 'chat_template.jinja');
    if (existsSync(jinjaFile)) return new ChatTemplates(new Map([['default', readFileSync(jinjaFile, 'utf8')]]), jinjaFile);
    const configFile = join(dir, 'tokenizer_config.json');
    return ChatTemplates.fromConfigValue(tokenizerConfig.chat_template, configFile);
  }

  /** Reads tokenizer_config.json's `chat_template` value: a string, a list of {name, template}, or absent. */
  static fromConfigValue(value: unknown, file = 'tokenizer_config.json'): ChatTemplates | null {
    if (value === undefined || value === null) return null;
    if (typeof value === 'string') return new ChatTemplates(new Map([['default', value]]), file);
    if (Array.isArray(value)) {
      const templates = new Map<string, string>();
      value.forEach((entry, i) => {
        const { name, template } = (entry ?? {}) as { name?: unknown; template?: unknown };
        if (typeof name !== 'string' || typeof template !== 'string') throw new InputError(file, `chat_template[${i}]`, 'an object {name, template} of strings');
        templates.set(name, template);
      });
      return new ChatTemplates(templates, file);
    }
    throw new InputError(file, 'chat_template', 'a template string or a list of {name, template}');
  }

  names(): string[] {
    return [...this.templates.keys()];
  }

  /** Picks the template as transformers does and renders the conversation. */
  render(messages: TemplateMessage[], options: RenderOptions = {}): string {
    const name =
      options.templateName ?? (options.tools && this.compiled.has('tool_use') ? 'tool_use' : this.compiled.size === 1 ? this.names()[0] : 'default');
    const template = this.compiled.get(name);
    if (!template) throw new InputError(this.file, 'chat_template', `a template named "${name}" (available: ${this.names().join(', ')})`);
    const context: Record<string, unknown> = {
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? false,
      ...options.variables,
    };
    if (options.tools) context.tools = options.tools;
    try {
      return template.render(context);
    } catch (error) {
      throw new InputError(this.file, 'chat_template', `a template that renders this conversation (${(error as Error).message})`);
    }
  }
}
