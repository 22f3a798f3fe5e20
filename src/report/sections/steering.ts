/**
 * The white-box sections: the steering sweep (the layer and coefficient chosen on one half of the
 * evaluation questions, its movement reported on the other), projection monitoring (does the
 * activation along the persona vector predict expression?) and the fine-tuning shift (how far
 * training moved activations along it).
 */
import { interval, num, signed } from '../format.js';
import type { SteeringReport } from '../model.js';
import { absent, table, type Plot, type Section } from '../section.js';

type Trait = SteeringReport['traits'][number];

const NOT_STEERED = 'The run did not steer (no `steer:` section, or its stage has not run).';

const traitName = (t: Trait) => `${t.persona} · t${t.traitIndex}`;
const range = (lo: number | null, hi: number | null) => interval(lo === null || hi === null ? undefined : { lo, hi });

function choiceCells(t: Trait): string[] {
  const chosen = t.sweep.chosen;
  const held = t.sweep.held.chosen;
  if (!chosen) return ['no steering effect', '–', '–', '–', '–', '–'];
  return [`layer ${chosen.layer} × ${num(chosen.coef, 2)}`, signed(chosen.movement, 1), signed(held?.movement ?? undefined, 1), range(held?.low ?? null, held?.high ?? null), String(held?.n ?? 0), String(held?.questions ?? 0)];
}

export function steeringSweepSection(data: SteeringReport | undefined, note?: string): Section {
  const id = 'steering-sweep';
  const title = 'Steering sweep';
  if (!data || data.traits.length === 0) return absent(id, title, note ?? NOT_STEERED);
  const plots: Plot[] = data.traits.map((t) => ({
    caption: `${traitName(t)}: movement of trait expression (steered − unsteered, selection half) per layer and coefficient; crossed cells lost coherence or did not raise expression.`,
    spec: {
      data: { values: t.sweep.cells.map((c) => ({ layer: c.layer, coef: c.coef, movement: c.movement, admissible: c.admissible ? 'chosen-eligible' : 'excluded' })) },
      width: { step: 36 },
      height: { step: 18 },
      layer: [
        { mark: 'rect', encoding: { x: { field: 'coef', type: 'ordinal', title: 'coefficient' }, y: { field: 'layer', type: 'ordinal', title: 'layer' }, color: { field: 'movement', type: 'quantitative', title: 'movement', scale: { scheme: 'redblue', domainMid: 0, reverse: true } } } },
        { transform: [{ filter: "datum.admissible === 'excluded'" }], mark: { type: 'text', text: '×', color: '#333' }, encoding: { x: { field: 'coef', type: 'ordinal' }, y: { field: 'layer', type: 'ordinal' } } },
      ],
    },
  }));
  return {
    id,
    title,
    description:
      'Each trait\'s persona vector added at one layer with one coefficient (no system prompt), against the unsteered model on the same questions and seeds. ' +
      'The evaluation questions are split into two disjoint halves: the cell is chosen on the selection half (largest movement at equal coherence, and only a cell that raises expression), ' +
      'and its movement is reported on the report half with a 95% interval clustered by question. "No steering effect": no cell raised expression, so nothing is steered or evaluated.',
    plots,
    tables: [
      table(
        'Chosen cell per trait',
        [
          ['trait', false],
          ['chosen', false],
          ['movement (selection)', true],
          ['movement (report half)', true],
          ['95% CI', true],
          ['n', true],
          ['questions', true],
        ],
        data.traits.map((t) => [traitName(t), ...choiceCells(t)]),
      ),
      table(
        'Every cell (selection half; report half beside it)',
        [
          ['trait', false],
          ['layer', true],
          ['coef', true],
          ['expression', true],
          ['coherence', true],
          ['movement', true],
          ['eligible', false],
          ['expression (report half)', true],
          ['n', true],
        ],
        data.traits.flatMap((t) =>
          t.sweep.cells.map((c, i) => [
            traitName(t),
            String(c.layer),
            num(c.coef, 2),
            num(c.expression ?? undefined, 1),
            num(c.coherence ?? undefined, 1),
            signed(c.movement ?? undefined, 1),
            c.admissible ? 'yes' : 'no',
            num(t.sweep.held.cells[i]?.expression ?? undefined, 1),
            String(c.n),
          ]),
        ),
        true,
      ),
    ],
  };
}

export function steeringMonitorSection(data: SteeringReport | undefined, note?: string): Section {
  const id = 'steering-monitor';
  const title = 'Monitoring: projection vs expression';
  const traits = data?.traits.filter((t) => t.monitor) ?? [];
  if (traits.length === 0) return absent(id, title, data ? 'No trait had a chosen layer to monitor at.' : (note ?? NOT_STEERED));
  return {
    id,
    title,
    description:
      "The last prompt token's activation at the chosen layer projected on the persona vector, against the judged expression of the reply, over the evaluation questions asked with no system prompt and with every contrastive prompt: " +
      'Pearson r with a Fisher-z 95% interval (no interval at n ≤ 3).',
    plots: [],
    tables: [
      table(
        'Projection vs expression',
        [
          ['trait', false],
          ['layer', true],
          ['r', true],
          ['95% CI', true],
          ['n', true],
          ['unscored', true],
        ],
        traits.map((t) => [traitName(t), String(t.monitor!.layer), num(t.monitor!.correlation.r ?? undefined, 2), range(t.monitor!.correlation.low, t.monitor!.correlation.high), String(t.monitor!.correlation.n), String(t.monitor!.missing)]),
      ),
    ],
  };
}

export function steeringShiftSection(data: SteeringReport | undefined, note?: string): Section {
  const id = 'steering-shift';
  const title = 'Fine-tuning shift along the persona vectors';
  const rows = (data?.traits ?? []).flatMap((t) =>
    t.shifts.map((s) => {
      // The chosen layer's shift, else the largest one.
      const at = s.layers.find((l) => l.layer === t.sweep.chosen?.layer) ?? [...s.layers].sort((a, b) => Math.abs(b.shift ?? 0) - Math.abs(a.shift ?? 0))[0];
      const name = s.cell ? `${s.cell.method}${s.cell.format ? `/${s.cell.format}` : ''} seed ${s.cell.seed}` : s.adapter;
      return [traitName(t), name, at ? String(at.layer) : '–', signed(at?.shift ?? undefined, 3), signed(at?.relative ?? undefined, 3)];
    }),
  );
  if (rows.length === 0) return absent(id, title, data ? 'No trained adapter was measured (the run trained none and steer.monitor.adapters is empty).' : (note ?? NOT_STEERED));
  return {
    id,
    title,
    description:
      "How far training moved the model along each persona vector: (mean trained activation − mean base activation) · v/|v| on the trait's evaluation questions, at the sweep's chosen layer (else the layer that moved most), " +
      'and relative to |v| (1 = the whole distance between trait-eliciting and trait-suppressing replies).',
    plots: [],
    tables: [
      table(
        'Projection shift per trained cell',
        [
          ['trait', false],
          ['trained', false],
          ['layer', true],
          ['shift', true],
          ['shift / |v|', true],
        ],
        rows,
      ),
    ],
  };
}
