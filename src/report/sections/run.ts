/** Provenance: which evaluations ran, judge agreement, and the journals behind the numbers. */
import { num } from '../format.js';
import type { ReportData } from '../model.js';
import { table, type Section, type Table } from '../section.js';

export function runSection(data: ReportData): Section {
  const tables: Table[] = [];
  if (data.evalStatus.length) {
    tables.push(table('Evaluations in the summary', [['evaluation', false], ['status', false], ['reason', false]], data.evalStatus.map((s) => [s.evaluation, s.status, s.reason ?? ''])));
  }
  if (data.judgeAgreement?.length) {
    tables.push(
      table(
        'Agreement between the two judges',
        [['evaluation', false], ['metric', false], ['judges', false], ['statistic', false], ['value', true], ['n', true]],
        data.judgeAgreement.map((j) => [j.evaluation, j.metric, j.judges.join(' vs '), j.statistic, num(j.value ?? undefined), String(j.n)]),
      ),
    );
  }
  if (data.journals.length) {
    tables.push(table('Run journals (one line per finished item)', [['journal', false], ['items', true]], data.journals.map((j) => [j.name, String(j.items)])));
  }
  return { id: 'run', title: 'Run details', description: data.summaryNote, plots: [], tables };
}
