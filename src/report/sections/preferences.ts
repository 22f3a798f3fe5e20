/** Revealed-preference rankings: Bradley-Terry with intervals, Elo, Spearman between subjects. */
import { interval, num } from '../format.js';
import type { PreferenceSection, TraitRating } from '../model.js';
import { kindColors, pointWithInterval } from '../plots.js';
import { absent, baselinesFirst, table, type Section } from '../section.js';

const TOP = 10;
const BOTTOM = 5;

/** The most and least preferred traits by Bradley-Terry strength, most preferred first. */
function extremes(traits: TraitRating[]): { top: TraitRating[]; bottom: TraitRating[] } {
  const sorted = [...traits].sort((a, b) => b.bt.value - a.bt.value);
  if (sorted.length <= TOP + BOTTOM) return { top: sorted, bottom: [] };
  return { top: sorted.slice(0, TOP), bottom: sorted.slice(-BOTTOM) };
}

export function preferencesSection(data: PreferenceSection | undefined): Section {
  const id = 'preferences';
  const title = 'Revealed preferences';
  if (!data || data.rankings.length === 0) return absent(id, title, 'No revealed-preference results in the summary.');
  const rankings = baselinesFirst(data.rankings, (r) => r.kind);
  // One panel per subject, side by side, each with its own trait order.
  const panels = rankings.map((r) => {
    const { top, bottom } = extremes(r.traits);
    const shown = [...top, ...bottom];
    return {
      title: { text: r.subject, fontSize: 12, anchor: 'middle' },
      data: { values: shown.map((t) => ({ trait: t.trait, kind: r.kind, value: t.bt.value, lo: t.bt.lo, hi: t.bt.hi, elo: t.elo })) },
      width: 190,
      height: { step: 15 },
      layer: [
        { mark: { type: 'rule', strokeDash: [3, 3], color: '#aaa' }, encoding: { x: { datum: 0, type: 'quantitative' } } },
        ...pointWithInterval('x', 'Bradley-Terry strength (log scale)', {
          y: { field: 'trait', type: 'nominal', title: null, sort: shown.map((t) => t.trait) },
          color: { field: 'kind', type: 'nominal', legend: null, scale: kindColors(rankings.map((x) => x.kind)) },
        }),
      ],
    };
  });
  const counts = rankings.map((r) => {
    const { top, bottom } = extremes(r.traits);
    const which = bottom.length ? `top ${top.length} and bottom ${bottom.length} of ${r.traits.length} traits` : `all ${r.traits.length} traits`;
    return `${r.subject}: ${which}, ${r.matches} judged matches, ${r.unparseable} unparseable verdicts dropped`;
  });
  const plots = [
    {
      caption: `Bradley-Terry strength of the most and least preferred traits (point = estimate, bar = 95% bootstrap interval). ${counts.join('; ')}.`,
      spec: { concat: panels, columns: 3, spacing: 30, resolve: { scale: { x: 'shared' } } },
    },
  ];
  const rankingTables = rankings.map((r) => {
    const { top, bottom } = extremes(r.traits);
    const byElo = [...r.traits].sort((a, b) => b.elo - a.elo).map((t) => t.trait);
    const row = (t: TraitRating, rank: number) => [String(rank), t.trait, num(t.bt.value), interval(t.bt), num(t.elo, 0), String(byElo.indexOf(t.trait) + 1), String(t.matches)];
    return table(
      `${r.subject}: most${bottom.length ? ' and least' : ''} preferred traits`,
      [['BT rank', true], ['trait', false], ['BT strength', true], ['95% CI', true], ['Elo', true], ['Elo rank', true], ['matches', true]],
      [...top.map((t, i) => row(t, i + 1)), ...bottom.map((t, i) => row(t, r.traits.length - bottom.length + i + 1))],
    );
  });
  const withCi = data.spearman.some((s) => s.lo !== undefined && s.hi !== undefined);
  const spearman = data.spearman.length
    ? [
        table(
          'Spearman correlation of trait rankings between subjects',
          [['subject A', false], ['subject B', false], ['ranking', false], ['ρ', true], ...(withCi ? ([['95% CI', true]] as [string, boolean][]) : []), ['traits', true]],
          data.spearman.map((s) => [s.a, s.b, s.method ?? '', num(s.rho), ...(withCi ? [interval(s.lo !== undefined && s.hi !== undefined ? { lo: s.lo, hi: s.hi } : undefined)] : []), String(s.n)]),
        ),
      ]
    : [];
  return {
    id,
    title,
    description:
      'The subject picks one of two offered traits and embodies it; a judge decides which of the two the reply shows. ' +
      'Traits are ranked by Bradley-Terry maximum likelihood (order-independent, bootstrap intervals) and by sequential Elo (start 1000, K = 32).',
    plots,
    tables: [...spearman, ...rankingTables],
  };
}

