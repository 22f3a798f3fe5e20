/**
 * The headline: which format and method gives the stronger persona, and by how much, pooled over
 * seeds, with intervals, on held-out prompts, beside the base, the persona's own prompted baseline
 * and any steered or capped model.
 */
import { estimateCells, interval, num, signed } from '../format.js';
import type { Headline, HeadlineRow } from '../model.js';
import { kindColors, pointWithInterval } from '../plots.js';
import { absent, estimateColumns, table, type Plot, type Section } from '../section.js';

const metricTitle = (r: { evaluation: string; metric: string }) => `${r.evaluation} · ${r.metric}`;

/**
 * The smallest difference this comparison could detect (two-sided 5%, 80% power): its interval's
 * half-width times (1.96 + 0.84) / 1.96. A difference below it that is "not significant" says little.
 */
export function detectable(d: { lo: number; hi: number }): number {
  return (((d.hi - d.lo) / 2) * (1.959964 + 0.841621)) / 1.959964;
}

function deltaCells(row: HeadlineRow, against: 'base' | 'prompted'): string[] {
  const v = row.versus.find((x) => x.against === against);
  return v ? [signed(v.difference.value), interval(v.difference)] : ['–', '–'];
}

export function headlineSection(data: Headline | undefined): Section {
  const id = 'headline';
  const title = 'Headline: prompting, steering and training compared';
  if (!data || data.rows.length === 0) return absent(id, title, 'No headline metrics in the summary.');
  const metrics = [...new Set(data.rows.map(metricTitle))];
  // The figure shows the first headline metric measured (trait expression when it ran).
  const first = metrics[0];
  const rows = data.rows.filter((r) => metricTitle(r) === first);
  const values = rows.map((r) => ({ condition: `${r.persona} · ${r.condition}`, kind: r.kind, value: r.score.value, lo: Number.isFinite(r.score.lo) ? r.score.lo : r.score.value, hi: Number.isFinite(r.score.hi) ? r.score.hi : r.score.value }));
  const plots: Plot[] = [
    {
      caption: `${first}: each condition with its 95% interval; trained cells pooled over their seeds.`,
      spec: {
        data: { values },
        width: 380,
        height: { step: 22 },
        layer: pointWithInterval('x', first, {
          y: { field: 'condition', type: 'nominal', title: null, sort: values.map((v) => v.condition) },
          color: { field: 'kind', type: 'nominal', title: 'subject', scale: kindColors(values.map((v) => v.kind)) },
        }),
      },
    },
  ];
  const firstContrasts = data.contrasts.filter((c) => metricTitle(c) === first);
  if (firstContrasts.length) {
    const cv = firstContrasts.map((c) => ({ contrast: `${c.persona} · ${c.a} − ${c.b}`, value: c.difference.value, lo: Number.isFinite(c.difference.lo) ? c.difference.lo : c.difference.value, hi: Number.isFinite(c.difference.hi) ? c.difference.hi : c.difference.value }));
    plots.push({
      caption: `${first}: paired differences between formats and between methods on the same prompts, pooled over seeds, with 95% intervals; the line is no difference.`,
      spec: {
        data: { values: cv },
        width: 380,
        height: { step: 22 },
        layer: [
          { mark: { type: 'rule', color: '#9a9a9a', strokeDash: [4, 3] }, encoding: { x: { datum: 0, type: 'quantitative' } } },
          ...pointWithInterval('x', `difference in ${first}`, { y: { field: 'contrast', type: 'nominal', title: null, sort: cv.map((v) => v.contrast) } }),
        ],
      },
    });
  }
  return {
    id,
    title,
    description:
      'Per persona: the base model, the persona\'s own prompted baseline, steered or capped models (one per seed, pooled as cells are), and every trained cell (method and format) ' +
      'pooled over its seeds (mean of the seed means; the interval from a two-level bootstrap over seeds and prompt clusters). ' +
      'Δ columns are paired differences on the same held-out prompts from the base and from the persona\'s own prompted baseline. ' +
      'Contrasts compare two formats of one method, or two methods, on the same prompts, seed by seed, pooled over seeds. ' +
      '"detectable Δ" is the smallest difference from the prompted baseline (else the base) the design could detect (5% two-sided, 80% power): a smaller difference is underpowered, not absent.',
    plots,
    tables: [
      ...metrics.map((m) =>
        table(
          m,
          [['persona', false], ['condition', false], ['kind', false], ...estimateColumns('score'), ['seeds', true], ['between-seed SD', true], ['Δ vs base', true], ['95% CI', true], ['Δ vs prompted', true], ['95% CI', true], ['detectable Δ', true]],
          data.rows
            .filter((r) => metricTitle(r) === m)
            .map((r) => {
              const vs = r.versus.find((v) => v.against === 'prompted') ?? r.versus.find((v) => v.against === 'base');
              return [r.persona, r.condition, r.kind, ...estimateCells(r.score), String(r.seeds), num(r.betweenSeedSd), ...deltaCells(r, 'base'), ...deltaCells(r, 'prompted'), vs ? num(detectable(vs.difference)) : '–'];
            }),
        ),
      ),
      ...(data.contrasts.length
        ? [
            table(
              'Contrasts between formats and methods (a − b), pooled over seeds',
              [['metric', false], ['persona', false], ['contrast', false], ['a', false], ['b', false], ...estimateColumns('a − b'), ['seeds', true]],
              data.contrasts.map((c) => [metricTitle(c), c.persona, c.kind, c.a, c.b, ...estimateCells(c.difference, 2, true), String(c.seeds)]),
            ),
          ]
        : []),
    ],
  };
}
