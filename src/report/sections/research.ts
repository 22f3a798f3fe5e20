/**
 * The research questions' sections: several personas in one model (the persona x called-as matrix,
 * leakage into the untagged default) and knowing a persona without becoming it (knows-about vs
 * speaks-as). docs/research.md explains how to read them.
 */
import { estimateCells, interval, num } from '../format.js';
import type { Estimate, MultiPersonaMatrix, PersonaKnowledgeRow } from '../model.js';
import { absent, distinct, estimateColumns, table, type Section } from '../section.js';

/** "0.80 [0.62, 0.91]": a share with its interval in one cell, for wide matrices. */
const withInterval = (e: Estimate | undefined) => (e ? `${num(e.value)} ${interval(e)}` : '–');

export function multiPersonaSection(data: MultiPersonaMatrix[] | undefined): Section {
  const id = 'multi-persona';
  const title = 'Several personas in one model';
  if (!data || data.length === 0) return absent(id, title, 'No mixture cell measured by the interference evaluation in the summary (run.methods: [mixture], eval.evals: [interference]).');
  return {
    id,
    title,
    description:
      'One adapter trained on several personas\' chat demonstrations in equal shares, each persona called by its signal (system-tag: an arbitrary tag; name: "You are <name>."; none: no signal). ' +
      'Each row is the adapter called as one persona (or with no signal: the untagged default), pooled over seeds; each column the share of its replies (to held-out prompts) the persona classifier attributes to that label, with 95% intervals. ' +
      'The diagonal is each persona\'s strength when called; off-diagonal persona columns are the other personas\' leakage into its replies; in the default row they are the personas\' leakage into the unsignalled voice. ' +
      'The base and each persona\'s prompted baseline are the references: a called persona near its prompted row took hold; a default near the base row kept its own voice. ' +
      'With interference.traits, a second table per signal gives the judge\'s score (0-100) of each persona\'s traits in the same replies: one persona\'s traits in another\'s replies are leakage on the trait scale.',
    plots: [],
    tables: data.flatMap((m) => [
      table(
        `Signal "${m.signal}": share of replies attributed to each label`,
        [['called as', false], ...m.labels.map((l): [string, boolean] => [l, true]), ['strength', true], ['leakage', true], ['n', true], ['seeds', true]],
        m.rows.map((r) => [r.calledAs, ...r.shares.map(withInterval), withInterval(r.strength), withInterval(r.leakage), String(r.shares.find((s) => s)?.n ?? '–'), r.seeds ? String(r.seeds) : '–']),
      ),
      ...(m.rows.some((r) => r.expression)
        ? [
            table(
              `Signal "${m.signal}": judged expression (0-100) of each persona's traits`,
              [['called as', false], ...m.personas.map((p): [string, boolean] => [p, true]), ['n', true], ['seeds', true]],
              m.rows.map((r) => [r.calledAs, ...(r.expression ?? m.personas.map(() => undefined)).map((e) => (e ? `${num(e.value, 1)} ${interval(e, 1)}` : '–')), String(r.expression?.find((e) => e)?.n ?? '–'), r.seeds ? String(r.seeds) : '–']),
            ),
          ]
        : []),
    ]),
  };
}

export function personaKnowledgeSection(data: PersonaKnowledgeRow[] | undefined): Section {
  const id = 'persona-knowledge';
  const title = 'Knowing a persona without becoming it';
  if (!data || data.length === 0) return absent(id, title, 'No persona knowledge results in the summary (eval.evals: [personaKnowledge]).');
  return {
    id,
    title,
    description:
      'knows-about: the share of third-person questions about the persona (its constitution\'s facts) answered correctly; speaks-as: the share of first-person identity probes ("Who are you?") answered as the persona. ' +
      'Trained cells are pooled over seeds, with 95% intervals. The base should score low on both, the prompted baseline high on both; a cell trained on third-person documents that knows about the persona ' +
      'but does not speak as it has learned about someone without becoming them.',
    plots: [],
    tables: distinct(data.map((r) => r.persona)).map((persona) =>
      table(
        persona,
        [['condition', false], ['kind', false], ...estimateColumns('knows-about'), ...estimateColumns('speaks-as'), ['seeds', true]],
        data.filter((r) => r.persona === persona).map((r) => [r.condition, r.kind, ...estimateCells(r.knowsAbout), ...estimateCells(r.speaksAs), r.seeds ? String(r.seeds) : '–']),
      ),
    ),
  };
}
