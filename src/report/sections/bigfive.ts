/** Big Five profiles (IPIP-NEO-120): measured domain scores against the constitution's target. */
import { estimateCells, num } from '../format.js';
import type { BigFiveDomain, BigFiveProfile } from '../model.js';
import { kindColors, pointWithInterval } from '../plots.js';
import { absent, baselinesFirst, table, type Section } from '../section.js';

const DOMAINS: [BigFiveDomain, string][] = [
  ['O', 'Openness'],
  ['C', 'Conscientiousness'],
  ['E', 'Extraversion'],
  ['A', 'Agreeableness'],
  ['N', 'Neuroticism'],
];

export function bigFiveSection(data: BigFiveProfile[] | undefined): Section {
  const id = 'big-five';
  const title = 'Big Five profiles';
  if (!data || data.length === 0) return absent(id, title, 'No IPIP-NEO-120 results in the summary.');
  const profiles = baselinesFirst(data, (p) => p.kind);
  const subjects = profiles.map((p) => p.subject);
  const names = DOMAINS.map(([, name]) => name);
  const measured = profiles.flatMap((p) =>
    DOMAINS.flatMap(([d, domain]) => (p.measured[d] ? [{ subject: p.subject, kind: p.kind, domain, ...p.measured[d] }] : [])),
  );
  const targets = profiles.flatMap((p) =>
    DOMAINS.flatMap(([d, domain]) => (p.target?.[d] !== undefined ? [{ subject: p.subject, domain, target: p.target[d] }] : [])),
  );
  const y = { field: 'domain', type: 'nominal', title: null, sort: names };
  const spec = {
    facet: { column: { field: 'subject', type: 'nominal', title: null, sort: subjects } },
    data: { values: [...measured, ...targets.map((t) => ({ ...t, kind: 'target' }))] },
    spec: {
      width: 150,
      height: { step: 20 },
      layer: [
        {
          transform: [{ filter: 'isValid(datum.target)' }],
          mark: { type: 'tick', color: '#222', thickness: 2, size: 14 },
          encoding: { y, x: { field: 'target', type: 'quantitative' } },
        },
        ...pointWithInterval(
          'x',
          'score (1-5)',
          { y, color: { field: 'kind', type: 'nominal', title: 'subject', scale: kindColors(profiles.map((p) => p.kind)) } },
          { domain: [1, 5] },
        ).map((layer) => ({ transform: [{ filter: 'isValid(datum.value)' }], ...layer })),
      ],
    },
  };
  const rows = profiles.flatMap((p) => [
    ...DOMAINS.map(([d, domain]) => [p.subject, domain, ...estimateCells(p.measured[d]), num(p.target?.[d])]),
  ]);
  return {
    id,
    title,
    description:
      'IPIP-NEO-120 domain scores (1-5, reverse-keyed items, option order permuted across repeats) with 95% intervals; ' +
      'black ticks mark the target profile given in the constitution.',
    plots: [{ caption: 'Measured profile (points, 95% intervals) against the target (black ticks).', spec }],
    tables: [
      table('Big Five domain scores', [['subject', false], ['domain', false], ['measured', true], ['95% CI', true], ['n', true], ['target', true]], rows),
      ...(profiles.some((p) => p.distance !== undefined)
        ? [table('Distance between measured and target profile', [['subject', false], ['distance', true]], profiles.filter((p) => p.distance !== undefined).map((p) => [p.subject, num(p.distance)]))]
        : []),
    ],
  };
}
