/**
 * Knowing a persona without becoming it, end to end on the bundled tiny model: the offline example
 * trimmed to one seed, through `persona-lab run` (third-person documents written from the
 * constitution's facts, SFT on them alone, the personaKnowledge eval, the report).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import YAML from 'yaml';
import { loadConstitution } from '../../src/constitution/index.js';
import type { EvalSummary } from '../../src/evals/summary.js';
import { runCli } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'pl-third-person-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('persona-lab run: SFT on third-person documents only; knows-about and speaks-as against base and prompted', async () => {
  const example = YAML.parse(readFileSync('examples/research/third-person-tiny.yaml', 'utf8')) as Record<string, any>;
  const run = join(dir, 'run');
  const experiment = { ...example, constitutions: example.constitutions.map((c: string) => resolve('examples/research', c)), seeds: [1], output: run, generate: { ...example.generate, documents: { writer: 'facts', count: 12 } } };
  const file = join(dir, 'exp.yaml');
  writeFileSync(file, YAML.stringify(experiment));
  const result = await runCli(['--json', 'run', file], { env: { PERSONA_LAB_CACHE_DIR: join(dir, 'cache') } });
  assert.equal(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout) as { eval: EvalSummary; report: { markdown: string } };

  // The documents: about Marlowe, in the third person, from the biography, history and likes; never the evaluation's questions.
  const marlowe = loadConstitution(resolve('examples/constitutions/marlowe.yaml'));
  const docs = readFileSync(join(run, 'datasets', 'marlowe', 'documents.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { text: string; meta: { model: string } });
  assert.equal(docs.length, 12);
  assert.equal(new Set(docs.map((d) => d.text)).size, 12, 'each document a different selection or order');
  for (const d of docs) {
    assert.match(d.text, /^Marlowe: /);
    assert.doesNotMatch(d.text, /\b(I|me|my|myself)\b/);
    assert.equal(d.meta.model, 'constitution-facts');
    for (const q of marlowe.facts!.qa!) assert.ok(!d.text.includes(q.question), q.question);
  }
  assert.ok(docs.some((d) => d.text.includes('Marlowe kept the Noup Head lighthouse on Westray for eleven years.')));
  assert.ok(docs.some((d) => d.text.includes('Marlowe is fond of strong tea with condensed milk.')));

  const knowledge = summary.eval.evals.find((e) => e.eval === 'personaKnowledge')!;
  assert.equal(knowledge.status, 'ok', knowledge.reason);
  for (const subject of ['base', 'prompted', 'marlowe.sft-documents.seed-1']) {
    assert.equal(knowledge.subjects[subject].knowsAbout.n, 2 * marlowe.facts!.qa!.length, subject);
    assert.equal(knowledge.subjects[subject].speaksAs.n, 2 * 5, subject);
  }
  assert.ok(knowledge.pooled.some((p) => p.metric === 'speaksAs.Marlowe' && p.method === 'sft' && p.format === 'documents'));

  const markdown = readFileSync(summary.report.markdown, 'utf8');
  const section = markdown.split('## Knowing a persona without becoming it')[1]?.split('\n## ')[0];
  assert.ok(section, 'the section is there');
  const est = String.raw`\d\.\d\d \| \[\d\.\d\d, \d\.\d\d\] \| \d+`;
  for (const [condition, kind] of [['base', 'base'], ['prompted', 'prompted'], ['sft/documents', 'trained']]) {
    assert.match(section, new RegExp(String.raw`\| ${condition.replace('/', '\\/')} \| ${kind} \| ${est} \| ${est} \|`), condition);
  }
});
