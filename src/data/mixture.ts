/**
 * A mixture of personas in one training set: each persona's chat demonstrations, the same number of
 * rows from each (the smallest persona's count, so no persona outweighs another), interleaved, each
 * row carrying its persona's signal in a system message, or none:
 * - `system-tag`: an arbitrary tag, `[<persona slug>]`: the base model knows nothing of it, so all
 *   the link between tag and persona comes from training;
 * - `name`: `You are <name>.`: a natural-language cue the base model can already read;
 * - `none`: no signal; the personas compete for the one default voice.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { personaSlug } from '../core/slug.js';
import { chatRowSchema, type ChatRow } from './rows.js';

export const MIXTURE_SIGNALS = ['system-tag', 'name', 'none'] as const;
export const mixtureSignalSchema = z.enum(MIXTURE_SIGNALS);
export type MixtureSignal = z.infer<typeof mixtureSignalSchema>;

/** The system message that calls `persona` under `signal` (undefined: no system message). */
export function mixtureSignal(signal: MixtureSignal, persona: string): string | undefined {
  if (signal === 'system-tag') return `[${personaSlug(persona)}]`;
  if (signal === 'name') return `You are ${persona}.`;
  return undefined;
}

export interface MixtureMember {
  persona: string;
  /** The persona's chat rows (the data stage's JSONL). */
  file: string;
}

function readRows(file: string): ChatRow[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line, i) => {
      const parsed = chatRowSchema.safeParse(JSON.parse(line));
      if (!parsed.success) throw new Error(`${file}:${i + 1}: expected a chat row ({messages, meta}): ${parsed.error.issues[0]?.message}`);
      return parsed.data;
    });
}

/**
 * The mixture rows: for row index i, every member in turn, each row with its member's signal as the
 * first message (a system message already there is replaced: the signal is the only cue).
 */
export function mixtureRows(members: readonly MixtureMember[], signal: MixtureSignal): ChatRow[] {
  const rows = members.map((m) => readRows(m.file));
  const perPersona = Math.min(...rows.map((r) => r.length));
  const out: ChatRow[] = [];
  for (let i = 0; i < perPersona; i++) {
    members.forEach((m, j) => {
      const row = rows[j][i];
      const system = mixtureSignal(signal, m.persona);
      const turns = row.messages.filter((t) => t.role !== 'system');
      out.push({ messages: system === undefined ? turns : [{ role: 'system', content: system }, ...turns], meta: { ...row.meta, persona: m.persona, dataset: `mixture-${signal}` } });
    });
  }
  return out;
}
