/** Reverse Turing test: how often each subject names its twin among K candidates, against chance 1/K. */
import { estimateCells, num } from '../format.js';
import { kindColors, pointWithInterval } from '../plots.js';
import type { ReverseTuringData } from '../research-input.js';
import { absent, baselinesFirst, estimateColumns, table, type Section } from '../section.js';
import type { Estimate } from '../model.js';

/** "above" / "below" chance when the interval excludes it, else "at chance". */
function versusChance(e: Estimate | undefined, chance: number): string {
  if (!e || !Number.isFinite(e.lo) || !Number.isFinite(e.hi)) return '–';
  return e.lo > chance ? 'above' : e.hi < chance ? 'below' : 'at chance';
}

export function reverseTuringSection(data: ReverseTuringData | undefined): Section {
  const id = 'reverse-turing';
  const title = 'Reverse Turing test';
  if (!data || data.subjects.length === 0) return absent(id, title, 'No reverse Turing test results in the summary (eval.evals must name reverseTuring).');
  const subjects = baselinesFirst(data.subjects, (s) => s.kind);
  const values = subjects.flatMap((s) => (s.accuracy ? [{ subject: s.subject, kind: s.kind, ...s.accuracy }] : []));
  const spec = {
    data: { values },
    width: 380,
    height: { step: 22 },
    layer: [
      { mark: { type: 'rule', color: '#9a9a9a', strokeDash: [4, 3] }, encoding: { x: { datum: data.chance, type: 'quantitative' } } },
      ...pointWithInterval(
        'x',
        'share of trials naming the twin',
        { y: { field: 'subject', type: 'nominal', title: null, sort: values.map((v) => v.subject) }, color: { field: 'kind', type: 'nominal', legend: null, scale: kindColors(values.map((v) => v.kind)) } },
        { domain: [0, 1] },
      ),
    ],
  };
  const chance = num(data.chance);
  return {
    id,
    title,
    description:
      `Each subject questioned ${data.candidates} candidates under shuffled labels - itself (same model, same system prompt, a fresh conversation) and ${data.candidates - 1} decoys ` +
      '(other subjects of the run, its own model as another persona) - and named its twin. Accuracy with 95% Wilson intervals (one trial, one unit); ' +
      `chance is 1/${data.candidates} = ${chance}. "above" means the interval lies above chance. Trials whose pick could not be read are counted, not scored` +
      (data.unparsedPicks ? ` (${data.unparsedPicks} here).` : '.') +
      ' Strategies are the subjects\' own accounts of how they decided, sorted into categories by the judge: what a model says it did, not necessarily what it did.',
    plots: values.length ? [{ caption: `Accuracy naming the twin (95% intervals); the dashed line is chance (1/${data.candidates}).`, spec }] : [],
    tables: [
      table(
        'Accuracy naming the twin, per subject',
        [['subject', false], ['kind', false], ...estimateColumns('accuracy'), ['chance', true], ['vs chance', false], ['unread picks', true]],
        subjects.map((s) => [s.subject, s.kind, ...estimateCells(s.accuracy), chance, versusChance(s.accuracy, data.chance), String(s.missing)]),
      ),
      ...(data.cells.length || data.personas.length
        ? [
            table(
              'Accuracy per trained cell (pooled over seeds) and per persona (all its subjects)',
              [['persona', false], ['condition', false], ['seeds', true], ...estimateColumns('accuracy'), ['vs chance', false]],
              [
                ...data.cells.map((c) => [c.persona, c.condition, String(c.seeds), ...estimateCells(c.accuracy), versusChance(c.accuracy, data.chance)]),
                ...data.personas.map((p) => [p.persona, '(all subjects)', '–', ...estimateCells(p.accuracy), versusChance(p.accuracy, data.chance)]),
              ],
            ),
          ]
        : []),
      ...(data.strategies.length
        ? [
            table(
              'Stated strategies: share of trials, and accuracy when using it',
              [['subject', false], ['strategy', false], ...estimateColumns('share'), ...estimateColumns('accuracy')],
              data.strategies.map((s) => [s.subject, s.strategy, ...estimateCells(s.share), ...estimateCells(s.accuracy)]),
            ),
          ]
        : []),
      ...(data.picked.length
        ? [
            table(
              'Which candidate was named (twin = right; otherwise the kind of decoy taken for itself)',
              [['subject', false], ['named', false], ...estimateColumns('share of picks')],
              data.picked.filter((p) => p.share.value > 0).map((p) => [p.subject, p.kind, ...estimateCells(p.share)]),
            ),
          ]
        : []),
    ],
  };
}
