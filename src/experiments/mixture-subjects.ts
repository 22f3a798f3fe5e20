/**
 * The eval subjects of a mixture cell (several personas in one adapter): the adapter called as each
 * member persona with that persona's signal (its system message; the persona's own cell identity, so
 * it pools over seeds and is compared with that persona's prompted baseline), and the adapter with no
 * signal at all, the untagged default, which belongs to no persona. A cell trained without a signal
 * has only the default.
 */
import type { CellIdentity } from '../core/cell.js';
import { personaSlug } from '../core/slug.js';
import { mixtureSignal, mixtureSignalSchema } from '../data/mixture.js';
import type { Subject } from '../evals/index.js';
import type { ChatModel } from '../providers/types.js';

/** The suffix of the untagged default subject's name (<cell subject>.default). */
export const MIXTURE_DEFAULT = 'default';
/** The suffix of a called-as subject's name (<cell subject>.as-<persona slug>). */
export const calledAsSuffix = (persona: string): string => `as-${personaSlug(persona)}`;

export function mixtureSubjects(cell: CellIdentity, members: readonly string[], name: string, model: ChatModel): Subject[] {
  const signal = mixtureSignalSchema.parse(cell.format);
  const called: Subject[] =
    signal === 'none'
      ? []
      : members.map((persona) => ({ name: `${name}.${calledAsSuffix(persona)}`, model, persona, systemPrompt: mixtureSignal(signal, persona), kind: 'trained', cell: { ...cell, persona } }));
  return [...called, { name: `${name}.${MIXTURE_DEFAULT}`, model, kind: 'trained', cell }];
}
