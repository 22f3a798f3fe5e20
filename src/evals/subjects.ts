/**
 * What each subject is (base, a persona's prompted baseline, a trained cell, a steered or capped
 * model) and which cell a trained subject belongs to: comparisons need each persona's own prompted
 * baseline, and pooling over seeds needs the cell without its seed.
 */
import type { CellIdentity } from '../core/cell.js';
import type { Subject, SubjectKind } from './types.js';

/** A name usable as a journal file name. */
export const fileSafe = (name: string): string => name.replace(/[^A-Za-z0-9._-]+/g, '_');

/**
 * Each persona's prompted subject: one marked `kind: "prompted"` with that persona, else the one named
 * like baselineSubjects names it (`<prompted>` for the first constitution, `<prompted>-<persona>`).
 */
export function promptedByPersona(subjects: readonly Subject[], personas: readonly string[], promptedName: string): Map<string, Subject> {
  const out = new Map<string, Subject>();
  personas.forEach((persona, i) => {
    const withPersona = subjects.filter((s) => s.persona === persona);
    const found =
      withPersona.find((s) => s.kind === 'prompted') ??
      withPersona.find((s) => s.kind === undefined && (s.name === `${promptedName}-${fileSafe(persona)}` || (i === 0 && s.name === promptedName)));
    if (found) out.set(persona, found);
  });
  return out;
}

/** A trained subject's cell: its own, else read from a `<persona slug>.<method>.seed-<n>` name (sft-<format> splits into method and format). */
export function cellOf(subject: Subject): CellIdentity | undefined {
  if (subject.cell) return subject.cell;
  const m = /^(.+)\.([A-Za-z0-9_-]+)\.seed-(\d+)$/.exec(subject.name);
  if (!m || subject.persona === undefined) return undefined;
  const [method, ...format] = m[2].split('-');
  return { persona: subject.persona, method: format.length && method === 'sft' ? 'sft' : m[2], format: format.length && method === 'sft' ? format.join('-') : null, seed: Number(m[3]), backend: 'unknown', optionsHash: '' };
}

/** A subject's kind: its own, else base / prompted by the baselines' names, trained when it has a cell, other otherwise. */
export function kindOf(subject: Subject, base: Subject | undefined, prompted: ReadonlyMap<string, Subject>): SubjectKind {
  if (subject.kind) return subject.kind;
  if (subject === base) return 'base';
  if ([...prompted.values()].includes(subject)) return 'prompted';
  return cellOf(subject) ? 'trained' : 'other';
}
