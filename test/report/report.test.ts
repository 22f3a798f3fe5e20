/** The report without a browser: the Markdown summary, absent data, bad input, escaping. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { InputError } from '../../src/core/errors.js';
import { escapeHtml, isInertSvg, escapeMarkdownCell } from '../../src/report/escape.js';
import { confusionScores } from '../../src/report/from-summary.js';
import { writeReport } from '../../src/report/index.js';
import { renderPlot } from '../../src/report/plots.js';
import { comparisonSection, confusionSection } from '../../src/report/sections/classifier.js';
import { fixtureSummary, HOSTILE, makeRun, SCRIPT_REPLY } from './fixture.js';

const root = mkdtempSync(join(tmpdir(), 'persona-lab-report-md-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** The GitHub-flavoured tables of a Markdown text: runs of lines starting with "|". */
function tables(markdown: string): string[][] {
  const out: string[][] = [];
  let current: string[] | undefined;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('|')) (current ??= []).push(line);
    else if (current) {
      out.push(current);
      current = undefined;
    }
  }
  return out;
}

/** Cells of a table row, splitting on pipes that are not escaped. */
const cells = (row: string) => row.slice(1, -1).split(/(?<!\\)\|/);

describe('Markdown summary', () => {
  const dir = join(root, 'full');
  makeRun(dir);
  const written = writeReport(dir);

  it('has a section per result with well-formed GFM tables', async () => {
    const md = readFileSync((await written).markdown, 'utf8');
    for (const heading of ['# persona-lab report: formats', '## Headline: prompting, steering and training compared', '## Persona strength by format and method', '## Persona classifier: confusion matrices', '## Revealed preferences', '## Behavioural leakage by category', '## Drift over turns', '## Big Five profiles', '## Capability cost', '## All scores', '## Sample transcripts', '## Run details']) {
      assert.ok(md.includes(`\n${heading}\n`) || md.startsWith(`${heading}\n`), `missing ${heading}`);
    }
    const found = tables(md);
    assert.ok(found.length >= 12, `${found.length} tables`);
    for (const t of found) {
      const width = cells(t[0]).length;
      assert.match(t[1], /^\|( ---:? \|)+$/, 'second line is the alignment row');
      for (const row of t) assert.equal(cells(row).length, width, `row has ${width} cells: ${row}`);
    }
  });

  it('leads with the headline: baselines, cells pooled over seeds with paired differences, and contrasts', async () => {
    const md = readFileSync((await written).markdown, 'utf8');
    assert.ok(md.indexOf('## Headline') < md.indexOf('## Persona strength'), 'the headline comes first');
    const found = tables(md);
    const rows = found.find((t) => t[0].startsWith('| persona | condition | kind | score | 95% CI | n | seeds | between-seed SD | Δ vs base |'));
    assert.ok(rows, 'the headline table');
    assert.ok(rows.includes('| sailor | prompted | prompted | 0.71 | [0.60, 0.82] | 60 | 1 | – | +0.57 | [0.49, 0.65] | – | – | 0.11 |'), rows.join('\n'));
    assert.ok(rows.includes('| sailor | sft/chat | trained | 0.64 | [0.54, 0.74] | 180 | 3 | 0.04 | +0.50 | [0.40, 0.60] | −0.07 | [−0.17, 0.03] | 0.14 |'), rows.join('\n'));
    const contrasts = found.find((t) => t[0].startsWith('| metric | persona | contrast | a | b |'));
    assert.ok(contrasts?.includes('| classifier · classifiedAsPersona | sailor | format | sft/introspective | sft/chat | +0.10 | [0.03, 0.17] | 180 | 3 |'), contrasts?.join('\n'));
  });

  it('gives n and 95% intervals beside every estimate', async () => {
    const md = readFileSync((await written).markdown, 'utf8');
    const strength = tables(md).find((t) => t[0].startsWith('| persona | condition | strength | 95% CI | n |'));
    assert.ok(strength, 'the persona-strength table');
    assert.equal(strength[2], '| sailor | base | 0.14 | [0.03, 0.25] | 60 | 0.11 | [0.06, 0.16] | 480 |');
    assert.ok(md.includes('| chat | 0.62 | [0.49, 0.75] | 50 | 0.58 | [0.45, 0.71] | 50 | −0.04 | [−0.13, 0.05] | 50 |'), 'capability row with paired difference');
  });

  it('escapes model output: no raw HTML, pipes kept inside their cell', async () => {
    const md = readFileSync((await written).markdown, 'utf8');
    assert.ok(!md.includes('<script'), 'no raw <script>');
    assert.ok(!md.includes('<img'), 'no raw <img>');
    assert.ok(!md.includes('</svg>'), 'no raw </svg>');
    assert.ok(md.includes('&lt;script&gt;window.\\_\\_pwned = 1&lt;/script&gt;'), 'the <script> reply is there, escaped');
    assert.ok(md.includes('Hedges \\| refuses to pick a side'), 'the judge reason keeps its pipe escaped');
    // Only the report's own <br> line breaks remain as tags.
    assert.deepEqual([...new Set(md.match(/<[a-z/][^>]*>/gi) ?? [])], []);
  });

  it('leaves out absent sections with a one-line note (skipped eval)', async () => {
    const md = readFileSync((await written).markdown, 'utf8');
    assert.match(md, /\n\| traitExpression \| skipped \| no judge configured \|\n/);
  });
});

describe('absent and partial data', () => {
  it('writes a report with every results section omitted when the evals have not run', async () => {
    const dir = join(root, 'no-summary');
    makeRun(dir, { summary: false });
    const { html, markdown } = await writeReport(dir);
    const page = readFileSync(html, 'utf8');
    const md = readFileSync(markdown, 'utf8');
    assert.match(md, /No evaluation summary at evals\/summary\.json/);
    for (const title of ['Persona strength by format and method', 'Revealed preferences', 'Drift over turns', 'Big Five profiles', 'Capability cost']) {
      assert.match(md, new RegExp(`\\n_${title}: omitted\\. [^\\n]+_\\n`), `one-line note for ${title}`);
      assert.ok(page.includes(`<span class="label">${title}</span>: omitted.`));
    }
    assert.ok(!page.includes('<svg'), 'no plots without data');
    // The journals still give transcripts, escaped.
    assert.ok(page.includes(escapeHtml(SCRIPT_REPLY)));
  });

  it('omits only the sections whose data is missing', async () => {
    const dir = join(root, 'partial');
    makeRun(dir);
    const summary = fixtureSummary();
    summary.evals = summary.evals.filter((e) => e.eval === 'capability');
    writeFileSync(join(dir, 'evals', 'summary.json'), JSON.stringify(summary));
    const { html } = await writeReport(dir, { outFile: join(root, 'partial-out', 'paper.html') });
    const page = readFileSync(html, 'utf8');
    assert.ok(existsSync(join(root, 'partial-out', 'paper.md')), 'Markdown beside the chosen HTML path');
    assert.equal((page.match(/<figure>/g) ?? []).length, 2, 'the capability plot, and the headline figure of its accuracy');
    assert.ok(page.includes('<section id="capability">'));
    assert.ok(page.includes('<section id="headline">'));
    assert.ok(page.includes('<span class="label">Drift over turns</span>: omitted.'));
  });
});

describe('few clusters', () => {
  it('flags a score resting on fewer than 10 independent clusters', async () => {
    const dir = join(root, 'few-clusters');
    makeRun(dir);
    const summary = fixtureSummary();
    const classifier = summary.evals.find((e) => e.eval === 'classifier')!;
    classifier.subjects.chat.classifiedAsPersona.clusters = 3;
    classifier.subjects.dpo.classifiedAsPersona.clusters = 40;
    writeFileSync(join(dir, 'evals', 'summary.json'), JSON.stringify(summary));
    const md = readFileSync((await writeReport(dir)).markdown, 'utf8');
    assert.match(md, /\| classifiedAsPersona \| chat \| 0\.64† \|/);
    assert.match(md, /\| classifiedAsPersona \| dpo \| 0\.83 \|/);
  });
});

describe('interval level', () => {
  it('labels intervals with the summary\'s confidence level', async () => {
    const dir = join(root, 'level-90');
    makeRun(dir);
    const summary = fixtureSummary();
    summary.confidence = 0.9;
    writeFileSync(join(dir, 'evals', 'summary.json'), JSON.stringify(summary));
    const md = readFileSync((await writeReport(dir)).markdown, 'utf8');
    assert.ok(md.includes('| persona | condition | strength | 90% CI | n |'));
    assert.ok(!md.includes('95%'), 'no 95% label left');
  });
});

describe('bad input', () => {
  it('names a missing manifest and writes nothing', async () => {
    const dir = join(root, 'not-a-run');
    makeRun(dir);
    rmSync(join(dir, 'manifest.json'));
    await assert.rejects(writeReport(dir), (e: unknown) => e instanceof InputError && e.field === 'manifest.json');
    assert.ok(!existsSync(join(dir, 'report.html')) && !existsSync(join(dir, 'report.md')));
  });

  it('names the summary file and the field that does not match the schema', async () => {
    const dir = join(root, 'bad-summary');
    makeRun(dir);
    const summary = JSON.parse(readFileSync(join(dir, 'evals', 'summary.json'), 'utf8'));
    summary.evals[0].subjects.base.classifiedAsPersona.n = 'sixty';
    writeFileSync(join(dir, 'evals', 'summary.json'), JSON.stringify(summary));
    await assert.rejects(writeReport(dir), (e: unknown) => e instanceof InputError && e.file.endsWith('summary.json') && e.field === 'evals[0].subjects.base.classifiedAsPersona.n');
    assert.ok(!existsSync(join(dir, 'report.html')));
  });

  it('rejects a path that is not a directory', async () => {
    await assert.rejects(writeReport(join(root, 'nowhere')), InputError);
  });
});

describe('escaping and plots', () => {
  it('escapes every HTML-significant character', () => {
    assert.equal(escapeHtml(`<a href="x" onclick='y'>&</a>`), '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
    assert.equal(escapeMarkdownCell('a | b\nc <i>'), 'a \\| b<br>c &lt;i&gt;');
    assert.equal(escapeMarkdownCell('[click](http://x) it\'s **bold** [0.1, 0.2]'), '[click\\](http://x) it\'s \\*\\*bold\\*\\* [0.1, 0.2]');
  });

  it('vega escapes hostile labels in server-rendered SVG, and active SVG is refused', async () => {
    const svg = await renderPlot({ data: { values: [{ label: HOSTILE.svg, v: 1 }, { label: HOSTILE.img, v: 2 }] }, mark: 'bar', encoding: { y: { field: 'label', type: 'nominal' }, x: { field: 'v', type: 'quantitative' } } });
    assert.ok(isInertSvg(svg));
    assert.ok(!svg.includes('<script') && !svg.includes('<img'));
    assert.ok(svg.includes('&lt;/svg&gt;&lt;script&gt;'), 'the label is drawn as escaped text');
    assert.equal(isInertSvg('<svg><script>alert(1)</script></svg>'), false);
    assert.equal(isInertSvg('<svg><rect onload="alert(1)"/></svg>'), false);
    assert.equal(isInertSvg('<svg><image href="http://x/y.png"/></svg>'), false);
    assert.equal(isInertSvg('<svg></svg><svg></svg>'), false);
  });

  it('accuracy of a confusion matrix with a Wilson interval, and macro-F1', () => {
    const { accuracy, macroF1 } = confusionScores([
      [8, 2],
      [1, 9],
    ]);
    assert.equal(accuracy?.value, 0.85);
    assert.equal(accuracy?.n, 20);
    // Wilson 95% for 17/20: [0.640, 0.948].
    assert.ok(Math.abs((accuracy?.lo ?? 0) - 0.6396) < 1e-3 && Math.abs((accuracy?.hi ?? 0) - 0.9476) < 1e-3, `${accuracy?.lo} ${accuracy?.hi}`);
    // F1: class 0 = 16/19, class 1 = 18/21.
    assert.ok(Math.abs((macroF1?.value ?? 0) - (16 / 19 + 18 / 21) / 2) < 1e-12);
  });

  it('warns when the classifier never predicts a class present in its own held-out replies', () => {
    const strength = { value: 1, lo: 0.6, hi: 1, n: 6 };
    const section = (counts: number[][]) => ({
      comparison: [{ persona: 'Skeptic', condition: 'base', kind: 'base' as const, strength }],
      confusion: [{ title: 'held-out training replies', labels: ['Skeptic', 'assistant'], counts }],
    });
    // The degenerate fit of an imbalanced training set: every held-out reply called the persona.
    const blind = section([
      [73, 0],
      [1, 0],
    ]);
    for (const s of [comparisonSection(blind), confusionSection(blind)]) assert.match(s.description ?? '', /never predicts "assistant"/);
    const seeing = section([
      [70, 3],
      [0, 1],
    ]);
    assert.doesNotMatch(comparisonSection(seeing).description ?? '', /never predicts/);
    assert.equal(confusionSection(seeing).description, undefined);
  });
});
