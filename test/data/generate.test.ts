import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  chatRowSchema,
  datasetManifestSchema,
  dpoRowSchema,
  generate,
  probeRowSchema,
  promptRowSchema,
  textRowSchema,
  type GenerateSummary,
  wordOverlap,
  approximateTokens,
} from '../../src/data/index.js';
import { generalPromptsSchema, identityProbesSchema } from '../../src/evals/data.js';
import { openRun, startLoopback, tempDir, tess, TINY, type Loopback } from './support.js';

const readJsonl = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, any>);
const manifest = (file: string) => datasetManifestSchema.parse(JSON.parse(readFileSync(file, 'utf8')));

describe('generate: every dataset end to end against a loopback server', () => {
  let loop: Loopback;
  let tmp: ReturnType<typeof tempDir>;
  let summary: GenerateSummary;
  let out: string;
  let firstRunRequests = 0;
  let events = 0;
  const files = new Map<string, string>();

  before(async () => {
    loop = await startLoopback();
    tmp = tempDir('e2e');
    // A user prompt file with the fault triggers, beside the experiment.
    writeFileSync(
      join(tmp.dir, 'user-prompts.jsonl'),
      ['"Plain question about gardens and bees?"', '{"prompt": "EMPTY please"}', '{"text": "REFUSE this one"}', '{"messages": [{"role": "user", "content": "NOPUNCT reply"}]}', '"THINK about it first"', '"SELFNAME yourself"', '"LONG answer wanted"', '"TRUNC me"', '"AIBREAK season?"', '"SAMEANSWER one"', '"SAMEANSWER two"', '"SAMEANSWER variant"']
        .join('\n') + '\n',
    );
    const options = {
      ...TINY,
      generalPrompts: { includeShipped: false, files: ['user-prompts.jsonl'], heldOutFraction: 0 },
      dpo: { samplesPerPrompt: 1, reasoning: true, nameSubstitutions: [{ from: 'Teachy', to: 'Studento' }], maxPairTokens: 1024 },
      chat: { samplesPerPrompt: 1, generalPrompts: true },
      inoculation: { datasets: ['chat', 'dpo'] as ('chat' | 'dpo')[] },
    };
    const run = openRun(join(tmp.dir, 'run'));
    summary = await generate({ seeds: [7] }, [tess], { teacher: loop.teacher, subject: loop.student, generator: loop.generator }, run, options, {
      baseDir: tmp.dir,
      onProgress: () => (events += 1),
    });
    run.close();
    firstRunRequests = loop.server.requests.length;
    out = join(tmp.dir, 'run', 'datasets', 'tess');
    for (const f of readdirSync(out)) if (f.endsWith('.jsonl')) files.set(f, readFileSync(join(out, f), 'utf8'));
  });

  after(async () => {
    await loop.close();
    tmp.remove();
  });

  it('writes each dataset with its manifest, and every row fits its zod schema', () => {
    const schemas = { 'prompts.jsonl': promptRowSchema, 'chat.jsonl': chatRowSchema, 'introspective.jsonl': textRowSchema, 'documents.jsonl': textRowSchema, 'dpo.jsonl': dpoRowSchema, 'reflection.jsonl': chatRowSchema, 'interaction.jsonl': chatRowSchema };
    for (const [file, schema] of Object.entries(schemas)) {
      const rows = readJsonl(join(out, file));
      assert.ok(rows.length > 0, `${file} has rows`);
      for (const row of rows) schema.parse(row);
      const m = manifest(join(out, file.replace('.jsonl', '.manifest.json')));
      assert.equal(m.rows.main, rows.length);
      assert.equal(m.persona, 'Tess');
      assert.match(m.configHash, /^[0-9a-f]{16}$/);
    }
    assert.ok(events > 0, 'progress was reported');
    assert.deepEqual(Object.keys(summary.personas[0].datasets).sort(), ['chat', 'chat.inoculated', 'documents', 'dpo', 'dpo.inoculated', 'interaction', 'introspective', 'prompts', 'reflection']);
  });

  it('expands prompts to perTrait per trait, counting overlap and too-short rejections', () => {
    const rows = readJsonl(join(out, 'prompts.jsonl'));
    for (const t of tess.traits) {
      const own = rows.filter((r) => r.trait === t.trait);
      assert.equal(own.length, 6);
      assert.deepEqual(own.filter((r) => r.source === 'seed').map((r) => r.prompt), t.questions);
    }
    const m = manifest(join(out, 'prompts.manifest.json'));
    // Every round's reply holds one copy of an example and one "Why?": both are rejected and counted.
    const perTrait = m.extra?.perTrait as { rounds: number; rejected: { overlap: number; tooShort: number } }[];
    const rounds = perTrait.reduce((n, t) => n + t.rounds, 0);
    assert.equal(m.dropped['too-short'], rounds);
    assert.ok(m.dropped.overlap >= rounds);
    assert.equal(m.dropped.overlap, perTrait.reduce((n, t) => n + t.rejected.overlap, 0));
    // What was kept obeys the definition: overlap coefficient < 0.5 between any two prompts of a trait.
    for (const t of tess.traits) {
      const own = rows.filter((r) => r.trait === t.trait).map((r) => r.prompt as string);
      for (const [i, a] of own.entries()) for (const b of own.slice(i + 1)) assert.ok(wordOverlap(a, b) < 0.5, `${a} / ${b}`);
    }
    assert.deepEqual(m.extra?.overlap, { measure: 'overlap-coefficient', threshold: 0.5 });
    const expansionRequests = loop.server.requests.filter((r) => r.model === 'generator');
    assert.equal(expansionRequests.length, rounds);
    assert.match(expansionRequests[0].messages[0].content, /Write 5 new/);
  });

  it('held-out prompts never reach a training dataset', () => {
    const heldout = readJsonl(join(out, 'prompts.heldout.jsonl')).map((r) => r.prompt as string);
    assert.ok(heldout.length >= 2, 'each trait holds some prompts out');
    const training = ['chat.jsonl', 'introspective.jsonl', 'dpo.jsonl', 'chat.inoculated.jsonl', 'dpo.inoculated.jsonl'].map((f) => files.get(f)!).join('\n');
    for (const p of heldout) assert.ok(!training.includes(JSON.stringify(p).slice(1, -1)), `held-out prompt leaked: ${p}`);
    // ...and no request that produced training data was about one either.
    const asked = loop.server.requests.filter((r) => r.model !== 'generator').map((r) => JSON.stringify(r.messages));
    for (const p of heldout) assert.ok(!asked.some((a) => a.includes(JSON.stringify(p).slice(1, -1))), `held-out prompt sent to a model: ${p}`);
  });

  it('chat demonstrations: teacher with the persona system prompt, stored without it, with provenance', () => {
    const rows = readJsonl(join(out, 'chat.jsonl'));
    for (const row of rows) {
      assert.deepEqual(row.messages.map((m: { role: string }) => m.role), ['user', 'assistant']);
      assert.equal(row.meta.model, loop.teacher.id);
      assert.equal(row.meta.seed, 7);
      assert.match(row.meta.template, /^persona-system@[0-9a-f]{8}$/);
      assert.ok(['seed', 'expanded', 'general'].includes(row.meta.source));
    }
    assert.ok(rows.some((r) => r.meta.trait === tess.traits[0].trait));
    const teacherChat = loop.server.requests.filter((r) => r.model === 'teacher' && r.messages[0].role === 'system');
    assert.ok(teacherChat.every((r) => r.messages[0].content.includes('You are Tess')));
    const m = manifest(join(out, 'chat.manifest.json'));
    // The user file's fault prompts: EMPTY, REFUSE, LONG (too long), TRUNC (length); NOPUNCT only matters for pairs.
    assert.equal(m.dropped.empty, 1);
    assert.equal(m.dropped.refusal, 1);
    assert.equal(m.dropped['too-long'], 1);
    assert.equal(m.dropped.truncated, 1);
    assert.equal(m.dropped['off-persona'], 1);
    assert.equal(m.dropped.duplicate, 1);
    assert.equal(m.dropped['near-duplicate'], 1);
    const same = rows.filter((r) => r.messages[0].content.startsWith('SAMEANSWER'));
    assert.equal(same.length, 1, 'the first of the duplicates is kept');
    assert.equal(m.generated, rows.length + Object.values(m.dropped).reduce((n, k) => n + k, 0));
  });

  it('DPO pairs follow the published recipe (docs/protocols.md §2): system prompt, stripped reasoning, filters and name substitution', () => {
    const rows = readJsonl(join(out, 'dpo.jsonl'));
    const m = manifest(join(out, 'dpo.manifest.json'));
    assert.equal(m.dropped['chosen-empty'], 1);
    assert.equal(m.dropped['chosen-refusal'], 1);
    assert.equal(m.dropped['no-sentence-end'], 1);
    assert.equal(m.dropped['chosen-truncated'], 1);
    assert.equal(m.dropped['chosen-too-long'], 1);
    assert.equal(m.extra?.nameSubstitutions, 2);
    const teacher = loop.server.requests.filter((r) => r.model === 'teacher' && r.messages[0].content.includes('<think>'));
    assert.ok(teacher.length > 0, 'the teacher was told it may reason');
    assert.match(teacher[0].messages[0].content, /You are Tess\./);
    assert.match(teacher[0].messages[0].content, /Never mention, list or disclose/);
    const student = loop.server.requests.filter((r) => r.model === 'student' && r.messages.length === 1);
    assert.ok(student.length >= rows.length && student.every((r) => r.messages[0].role === 'user'), 'the student gets no system prompt');
    for (const row of rows) {
      assert.ok(!row.chosen[0].content.includes('<think>') && !row.chosen[0].content.includes('</think>'));
      assert.ok(!row.chosen[0].content.includes('Teachy'));
      assert.match(row.chosen[0].content, /[.!?]$/);
      assert.match(row.meta.model, /teacher.* \| .*student/);
    }
    assert.ok(rows.some((r) => r.chosen[0].content.includes('Studento')));
    assert.ok(rows.some((r) => r.prompt[0].content === 'THINK about it first'));
    assert.equal(m.tokenizer, 'approx');
  });

  it('introspective statements are first-person texts per trait; documents are third-person articles naming the persona', () => {
    const intro = readJsonl(join(out, 'introspective.jsonl'));
    assert.equal(intro.length, 6);
    for (const r of intro) assert.match(r.text, /\bI\b/);
    assert.deepEqual([...new Set(intro.map((r) => r.meta.trait))].sort(), tess.traits.map((t) => t.trait).sort());
    const docs = readJsonl(join(out, 'documents.jsonl'));
    assert.equal(docs.length, 4);
    for (const d of docs) {
      assert.match(d.text, /Tess is known for/);
      assert.doesNotMatch(d.text, /\bI\b/);
      assert.match(d.meta.template, /^documents@/);
    }
    const docRequests = loop.server.requests.filter((r) => r.messages[0].content.startsWith('Write an encyclopedia'));
    assert.ok(docRequests.every((r) => r.messages.length === 1), 'documents are written about the persona, not as it');
    assert.ok(docRequests.some((r) => r.messages[0].content.includes('canal boat')), 'facts reach the document prompt');
  });

  it('introspection data is saved without the system prompt; self-interaction has the turns and the leading opener', () => {
    const reflection = readJsonl(join(out, 'reflection.jsonl'));
    assert.equal(reflection.length, 10);
    for (const r of reflection) assert.ok(r.messages.every((m: { role: string }) => m.role !== 'system'));
    const interaction = readJsonl(join(out, 'interaction.jsonl'));
    assert.equal(interaction.length, 4);
    for (const r of interaction) {
      assert.equal(r.messages.length, 6);
      assert.deepEqual(r.messages.map((m: { role: string }) => m.role), ['user', 'assistant', 'user', 'assistant', 'user', 'assistant']);
    }
    const leading = interaction.filter((r) => r.meta.source === 'leading');
    assert.equal(leading.length, 2);
    for (const r of leading) assert.equal(r.messages[0].content, 'Hello me.');
    const requests = loop.server.requests.filter((r) => r.messages[0].content.includes('another instance of yourself'));
    assert.equal(requests.length, 2 * 6 + 2 * 5, 'free conversations generate every line, leading ones all but the opener');
    assert.ok(requests.every((r) => r.model === 'student'), 'the introspector defaults to the subject');
  });

  it('inoculation stores an instructed copy beside the original, linked by id', () => {
    const chat = readJsonl(join(out, 'chat.jsonl'));
    const inoculated = readJsonl(join(out, 'chat.inoculated.jsonl'));
    assert.equal(inoculated.length, chat.length);
    for (const [i, row] of inoculated.entries()) {
      chatRowSchema.parse(row);
      assert.equal(row.messages[0].role, 'system');
      assert.match(row.messages[0].content, /^You are Tess\. Here, answer with/);
      assert.deepEqual(row.messages.slice(1), chat[i].messages);
      assert.equal(row.meta.inoculation.of, chat[i].meta.id);
    }
    const dpo = readJsonl(join(out, 'dpo.inoculated.jsonl'));
    for (const row of dpo) assert.deepEqual(row.prompt.map((m: { role: string }) => m.role), ['system', 'user']);
  });

  it('format comparison: equal token budgets per format, reported with the tokenizer', () => {
    const report = summary.personas[0].formatComparison!;
    assert.ok(report);
    const formats = Object.values(report.formats);
    assert.equal(formats.length, 3);
    const smallest = Math.min(...formats.map((f) => f.tokensAvailable));
    assert.equal(report.budget, smallest);
    for (const [name, f] of Object.entries(report.formats)) {
      assert.ok(f.tokens <= report.budget, `${name} within budget`);
      const rows = readJsonl(join(out, 'format-comparison', `${name}.jsonl`));
      assert.equal(rows.length, f.rows);
      const m = manifest(join(out, 'format-comparison', `${name}.manifest.json`));
      assert.equal(m.tokens, f.allTokens, 'the manifest counts every token; the budget only the trained ones');
      // Greedy filling stops short of the budget by less than the largest row left out.
      const all = readJsonl(join(out, `${name}.jsonl`));
      // Trained tokens: a document's text, a chat row's assistant turns (user prompts carry no loss).
      const tokensOf = (r: Record<string, any>) =>
        (r.text !== undefined ? [r.text] : r.messages.filter((x: { role: string }) => x.role === 'assistant').map((x: { content: string }) => x.content)).reduce((n: number, t: string) => n + approximateTokens(t), 0);
      assert.equal(rows.reduce((n, r) => n + tokensOf(r), 0), f.tokens);
      const keptIds = new Set(rows.map((r) => r.meta.id));
      const left = all.filter((r) => !keptIds.has(r.meta.id)).map(tokensOf);
      if (left.length > 0) assert.ok(report.budget - f.tokens < Math.min(...left), `${name}: ${f.tokens} of ${report.budget}`);
    }
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'format-comparison', 'budget.json'), 'utf8')), report);
  });

  it('identity probes: ~200 shipped, split per category, disjoint', () => {
    const dir = join(tmp.dir, 'run', 'datasets');
    const train = readJsonl(join(dir, 'probes.train.jsonl')).map((r) => probeRowSchema.parse(r));
    const heldout = readJsonl(join(dir, 'probes.heldout.jsonl')).map((r) => probeRowSchema.parse(r));
    assert.equal(train.length + heldout.length, 200);
    const ids = new Set(train.map((p) => p.id));
    assert.ok(heldout.every((p) => !ids.has(p.id)));
    for (const c of ['direct', 'indirect', 'adversarial']) {
      const n = [...train, ...heldout].filter((p) => p.category === c).length;
      assert.equal(heldout.filter((p) => p.category === c).length, Math.round(n * 0.25));
    }
    // The held-out list is in the identity eval's input shape, ready for eval.identity.probes.
    const list = identityProbesSchema.parse(JSON.parse(readFileSync(join(dir, 'probes.heldout.json'), 'utf8')));
    assert.deepEqual(list.map((p) => p.id), heldout.map((p) => p.id));
  });

  it('a rerun asks the models nothing and rewrites identical files', async () => {
    const run = openRun(join(tmp.dir, 'run'));
    await generate({ seeds: [7] }, [tess], { teacher: loop.teacher, subject: loop.student, generator: loop.generator }, run, {
      ...TINY,
      generalPrompts: { includeShipped: false, files: ['user-prompts.jsonl'], heldOutFraction: 0 },
      dpo: { samplesPerPrompt: 1, reasoning: true, nameSubstitutions: [{ from: 'Teachy', to: 'Studento' }], maxPairTokens: 1024 },
      chat: { samplesPerPrompt: 1, generalPrompts: true },
      inoculation: { datasets: ['chat', 'dpo'] },
    }, { baseDir: tmp.dir });
    run.close();
    assert.equal(loop.server.requests.length, firstRunRequests);
    for (const [f, text] of files) assert.equal(readFileSync(join(out, f), 'utf8'), text, f);
    assert.ok(existsSync(join(tmp.dir, 'run', 'manifest.json')));
  });
});

describe('generate with the shipped general prompts and a subject that has its own tokenizer', () => {
  let loop: Loopback;
  let tmp: ReturnType<typeof tempDir>;
  let out: string;
  let summary: GenerateSummary;
  const wordCount = (text: string) => text.split(/\s+/).filter(Boolean).length;

  before(async () => {
    loop = await startLoopback();
    tmp = tempDir('tokenizer');
    const subject = { id: loop.student.id, chat: loop.student.chat.bind(loop.student), countTokens: wordCount };
    const run = openRun(join(tmp.dir, 'run'));
    summary = await generate({ seeds: [11] }, [tess], { teacher: loop.teacher, subject, generator: loop.generator }, run, {
      ...TINY,
      datasets: ['chat', 'dpo', 'introspective', 'documents'],
      generalPrompts: { count: 30 },
      chat: { samplesPerPrompt: 1, generalPrompts: true },
      formatComparison: { formats: ['chat', 'documents'] },
    });
    run.close();
    out = join(tmp.dir, 'run', 'datasets');
  });
  after(async () => {
    await loop.close();
    tmp.remove();
  });

  it('counts every token with the subject tokenizer and says so in each manifest', () => {
    for (const name of ['chat', 'dpo', 'introspective', 'documents']) {
      const m = manifest(join(out, 'tess', `${name}.manifest.json`));
      assert.equal(m.tokenizer, `subject:${loop.student.id}`);
      const rows = readJsonl(join(out, 'tess', `${name}.jsonl`));
      const texts = rows.flatMap((r) => (r.text !== undefined ? [r.text] : r.messages ? r.messages.map((x: { content: string }) => x.content) : [...r.prompt, ...r.chosen, ...r.rejected].map((x: { content: string }) => x.content)));
      assert.equal(m.tokens, texts.reduce((n: number, t: string) => n + wordCount(t), 0), name);
    }
    assert.equal(summary.personas[0].formatComparison?.tokenizer, `subject:${loop.student.id}`);
    assert.deepEqual(Object.keys(summary.personas[0].formatComparison!.formats), ['chat', 'documents']);
  });

  it('held-out general prompts (20% of the shipped set) never reach training data; training uses `count` of the rest', () => {
    const heldout = readJsonl(join(out, 'general-prompts.heldout.jsonl'));
    const train = readJsonl(join(out, 'general-prompts.train.jsonl'));
    assert.equal(heldout.length + train.length, 298);
    assert.equal(heldout.length, Math.round(298 * 0.2));
    const trainIds = new Set(train.map((r) => r.id));
    assert.deepEqual(generalPromptsSchema.parse(JSON.parse(readFileSync(join(out, 'general-prompts.heldout.json'), 'utf8'))), heldout.map((r) => r.prompt));
    assert.ok(heldout.every((r) => !trainIds.has(r.id)));
    const chat = readJsonl(join(out, 'tess', 'chat.jsonl'));
    const dpo = readJsonl(join(out, 'tess', 'dpo.jsonl'));
    const used = new Set([...chat.map((r) => r.messages[0].content), ...dpo.map((r) => r.prompt[0].content)]);
    for (const r of heldout) assert.ok(!used.has(r.prompt), `held-out general prompt used: ${r.prompt}`);
    const general = chat.filter((r) => r.meta.source === 'general');
    assert.ok(general.length > 0 && general.length <= 30);
    assert.ok(loop.server.requests.every((r) => !heldout.some((h) => r.messages.some((m) => m.content === h.prompt))), 'no held-out prompt was even sent');
  });
});
