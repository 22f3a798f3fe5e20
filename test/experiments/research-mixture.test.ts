/**
 * Several personas in one model, end to end on the bundled tiny model: the offline example trimmed
 * to one seed, through `persona-lab run` (generate, the mixture method's data and training, the
 * interference eval, the report).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import YAML from 'yaml';
import { chatRowSchema, type ChatRow } from '../../src/data/rows.js';
import type { EvalSummary } from '../../src/evals/summary.js';
import { runCli } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'pl-mixture-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const rowsOf = (file: string): ChatRow[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => chatRowSchema.parse(JSON.parse(line)));

test('persona-lab run: two personas in one tiny adapter, called by a tag or by nothing; the matrix in the report', async () => {
  const example = YAML.parse(readFileSync('examples/research/multi-persona-tiny.yaml', 'utf8')) as Record<string, any>;
  const run = join(dir, 'run');
  const experiment = {
    ...example,
    constitutions: example.constitutions.map((c: string) => resolve('examples/research', c)),
    seeds: [1],
    output: run,
    run: { ...example.run, mixture: { signals: ['system-tag', 'none'] } },
    eval: { ...example.eval, classifier: { repliesPerPersona: 10, testPrompts: 6, maxTokens: 48 }, interference: { samples: 1, maxTokens: 48 } },
  };
  const file = join(dir, 'exp.yaml');
  writeFileSync(file, YAML.stringify(experiment));
  const result = await runCli(['--json', 'run', file], { env: { PERSONA_LAB_CACHE_DIR: join(dir, 'cache') } });
  assert.equal(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout) as { eval: EvalSummary; report: { markdown: string } };

  // The mixture's data: each persona's chat rows in equal shares, interleaved, each with its signal.
  const skeptic = rowsOf(join(run, 'datasets', 'skeptic', 'chat.jsonl'));
  const wren = rowsOf(join(run, 'datasets', 'wren', 'chat.jsonl'));
  const share = Math.min(skeptic.length, wren.length);
  assert.ok(share > 0);
  const tagged = rowsOf(join(run, 'adapters', 'skeptic-wren', 'mixture-system-tag', 'seed-1', 'mixture.jsonl'));
  assert.equal(tagged.length, 2 * share);
  tagged.forEach((row, i) => {
    const [persona, tag, source] = i % 2 === 0 ? ['Skeptic', '[skeptic]', skeptic] : ['Wren', '[wren]', wren];
    assert.equal(row.meta.persona, persona);
    assert.deepEqual(row.messages[0], { role: 'system', content: tag });
    assert.deepEqual(row.messages.slice(1), source[Math.floor(i / 2)].messages.filter((m) => m.role !== 'system'));
  });
  const untagged = rowsOf(join(run, 'adapters', 'skeptic-wren', 'mixture-none', 'seed-1', 'mixture.jsonl'));
  assert.equal(untagged.length, 2 * share);
  assert.ok(untagged.every((row) => row.messages[0].role === 'user'), 'no signal: no system message');
  assert.deepEqual(untagged.filter((r) => r.meta.persona === 'Skeptic').length, share);

  // The journal keeps the members; the eval calls the tagged adapter as each persona, and both adapters untagged.
  const journal = readFileSync(join(run, 'journals', 'train', 'adapters.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).value);
  assert.deepEqual(journal.map((c: { members: string[] }) => c.members), [['Skeptic', 'Wren'], ['Skeptic', 'Wren']]);
  const mixtureSubjects = summary.eval.subjects.filter((s) => s.cell?.method === 'mixture');
  assert.deepEqual(mixtureSubjects.map((s) => [s.name, s.persona, s.cell!.persona]), [
    ['skeptic-wren.mixture-system-tag.seed-1.as-skeptic', 'Skeptic', 'Skeptic'],
    ['skeptic-wren.mixture-system-tag.seed-1.as-wren', 'Wren', 'Wren'],
    ['skeptic-wren.mixture-system-tag.seed-1.default', null, 'Skeptic+Wren'],
    ['skeptic-wren.mixture-none.seed-1.default', null, 'Skeptic+Wren'],
  ]);
  const interference = summary.eval.evals.find((e) => e.eval === 'interference')!;
  assert.equal(interference.status, 'ok', interference.reason);
  const asSkeptic = interference.subjects['skeptic-wren.mixture-system-tag.seed-1.as-skeptic'];
  const shares = ['Skeptic', 'Wren', 'assistant'].map((l) => asSkeptic[`classifiedAs.${l}`].value!);
  assert.ok(Math.abs(shares.reduce((a, b) => a + b, 0) - 1) < 1e-9, 'every reply goes to one label');
  assert.equal(asSkeptic.strength.value, shares[0]);
  assert.equal(asSkeptic.leakage.value, shares[1]);

  // The report: one matrix per signal, called rows, the untagged default and the references, with intervals.
  const markdown = readFileSync(summary.report.markdown, 'utf8');
  const section = markdown.split('## Several personas in one model')[1]?.split('\n## ')[0];
  assert.ok(section, 'the section is there');
  assert.match(section, /Signal "system-tag"/);
  assert.match(section, /Signal "none"/);
  const cell = String.raw`\d\.\d\d \[\d\.\d\d, \d\.\d\d\]`;
  assert.match(section, new RegExp(String.raw`\| Skeptic \| ${cell} \| ${cell} \| ${cell} \| ${cell} \| ${cell} \| 6 \| 1 \|`));
  assert.match(section, new RegExp(String.raw`\| untagged default \| ${cell} \| ${cell} \| ${cell} \| – \| ${cell} \| 6 \| 1 \|`));
  assert.match(section, /\| prompted Wren \|/);
  assert.match(section, /\| base \|/);
});

test('a mixture of fewer than two personas, or of an unknown one, is refused before anything is written', async () => {
  const example = YAML.parse(readFileSync('examples/research/multi-persona-tiny.yaml', 'utf8')) as Record<string, any>;
  for (const [mixture, field, expected] of [
    [{ personas: ['Skeptic', 'Nobody'] }, 'run.mixture.personas[1]', /the name of one of the constitutions \(Skeptic, Wren\), found "Nobody"/],
    [{}, 'run.mixture.personas', /at least two personas to train together/],
  ] as const) {
    const run = join(dir, `bad-${field}`);
    const constitutions = Object.keys(mixture).length ? example.constitutions : example.constitutions.slice(0, 1);
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, YAML.stringify({ ...example, constitutions: constitutions.map((c: string) => resolve('examples/research', c)), output: run, run: { ...example.run, mixture } }));
    const result = await runCli(['run', file], { env: { PERSONA_LAB_CACHE_DIR: join(dir, 'cache') } });
    assert.equal(result.code, 2, result.stderr);
    assert.ok(result.stderr.includes(`${file}: ${field}: `), result.stderr);
    assert.match(result.stderr, expected);
    assert.equal(existsSync(run), false, 'nothing written');
  }
});
