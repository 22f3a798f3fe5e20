/**
 * The report: a self-contained HTML page (inline SVG plots rendered here with vega-lite, no scripts,
 * no network) and a Markdown summary, both from a run directory.
 */
import { basename, dirname, join } from 'node:path';
import { writeFileAtomic } from '../core/journal.js';
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';
import type { ReportData } from './model.js';
import { readRun } from './run-input.js';
import type { Section } from './section.js';
import { bigFiveSection } from './sections/bigfive.js';
import { capabilitySection } from './sections/capability.js';
import { continuedSection } from './sections/continued.js';
import { comparisonSection, confusionSection } from './sections/classifier.js';
import { driftSection } from './sections/drift.js';
import { headlineSection } from './sections/headline.js';
import { leakageSection } from './sections/leakage.js';
import { preferencesSection } from './sections/preferences.js';
import { reverseTuringSection } from './sections/reverse-turing.js';
import { multiPersonaSection, personaKnowledgeSection } from './sections/research.js';
import { runSection } from './sections/run.js';
import { scoresSection } from './sections/scores.js';
import { traitSpaceSection } from './sections/trait-space.js';
import { steeringMonitorSection, steeringShiftSection, steeringSweepSection } from './sections/steering.js';
import { transcriptsSection } from './sections/transcripts.js';

export { escapeHtml } from './escape.js';
export { readRun, SUMMARY_PATH } from './run-input.js';
export type { ReportData } from './model.js';

export interface ReportFiles {
  html: string;
  markdown: string;
}

/**
 * Section texts say "95%" (the evals' default level); a run with another level gets its own number in
 * every header, caption and description (never in table cells, which hold data).
 */
function atConfidence(section: Section, confidence: number): Section {
  if (confidence === 0.95) return section;
  const level = (text: string) => text.replace(/95%/g, `${Math.round(confidence * 1000) / 10}%`);
  return {
    ...section,
    ...(section.description ? { description: level(section.description) } : {}),
    plots: section.plots.map((p) => ({ ...p, caption: level(p.caption) })),
    tables: section.tables.map((t) => ({ ...t, caption: level(t.caption), columns: t.columns.map(level) })),
  };
}

/** The report's sections in reading order; absent data gives a one-line note, never an error. */
export function reportSections(data: ReportData): Section[] {
  const sections = [
    headlineSection(data.headline),
    comparisonSection(data.classifier),
    confusionSection(data.classifier),
    preferencesSection(data.preferences),
    leakageSection(data.leakage),
    driftSection(data.drift),
    bigFiveSection(data.bigFive),
    capabilitySection(data.capability),
    ...(data.reverseTuring ? [reverseTuringSection(data.reverseTuring)] : []),
    ...(data.traitSpace ? [traitSpaceSection(data.traitSpace)] : []),
    steeringSweepSection(data.steering, data.steeringNote),
    steeringMonitorSection(data.steering, data.steeringNote),
    steeringShiftSection(data.steering, data.steeringNote),
    multiPersonaSection(data.multiPersona),
    personaKnowledgeSection(data.personaKnowledge),
    // Only runs with run.continue stages have this section.
    ...(data.continued ? [continuedSection(data.continued)] : []),
    scoresSection(data.scores),
    transcriptsSection(data.transcripts),
    runSection(data),
  ];
  return sections.map((s) => atConfidence(s, data.confidence));
}

/** Renders both documents from report data, in memory. */
export async function renderReport(data: ReportData): Promise<{ html: string; markdown: string }> {
  const sections = reportSections(data);
  return { html: await renderHtml(data, sections), markdown: renderMarkdown(data, sections) };
}

/**
 * Writes <run>/report.html and <run>/report.md (or `outFile` and the same path ending in .md).
 * Both are rendered before either is written, and each is written whole or not at all.
 */
export async function writeReport(runDir: string, options: { outFile?: string } = {}): Promise<ReportFiles> {
  const html = options.outFile ?? join(runDir, 'report.html');
  const markdown = join(dirname(html), `${basename(html).replace(/\.html?$/i, '')}.md`);
  const rendered = await renderReport(readRun(runDir));
  writeFileAtomic(html, rendered.html);
  writeFileAtomic(markdown, rendered.markdown);
  return { html, markdown };
}
