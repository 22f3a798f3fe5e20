/**
 * Prompt expansion (docs/protocols.md §1): each trait's seed questions grow to `perTrait` prompts through a
 * generator model. A candidate is rejected when its word overlap (./text.ts wordOverlap, measure and
 * threshold from the options) with any prompt already kept for its trait reaches the threshold, or
 * when it has fewer than `minWords` words. Requests are bounded (`maxRounds` per trait); each raw
 * reply is journaled, and acceptance is replayed from the journal, so a resumed run keeps exactly the
 * prompts it had. Then every trait's prompts are split into train and held-out.
 */
import pLimit from 'p-limit';
import { configHash, DropCounts, sampleSchema, writeDataset, complete, type PersonaContext, type Sample } from '../context.js';
import { splitHeldOut } from '../prompts.js';
import { promptRowSchema, type PromptRow } from '../rows.js';
import { render, templateRef } from '../templates.js';
import { derivedSeed, normalizeForDedup, parseList, stripReasoning, textId, wordOverlap, words } from '../text.js';

export interface TraitExpansion {
  prompts: { text: string; source: 'seed' | 'expanded' }[];
  rounds: number;
  rejected: { overlap: number; tooShort: number };
}

async function expandTrait(ctx: PersonaContext, traitIndex: number): Promise<TraitExpansion> {
  const options = ctx.options.expansion;
  const trait = ctx.constitution.traits[traitIndex];
  const hash = configHash({ options, seed: ctx.seed, generator: ctx.models.generator.id }).slice(0, 8);
  const journal = ctx.run.journal<Sample>(`generate/${ctx.slug}/expansion-${hash}`, sampleSchema);
  const kept: TraitExpansion['prompts'] = [];
  const keptWords: Set<string>[] = [];
  const seen = new Set<string>();
  const keep = (text: string, source: 'seed' | 'expanded') => {
    kept.push({ text, source });
    keptWords.push(new Set(words(text)));
    seen.add(normalizeForDedup(text));
  };
  const perTrait = Math.min(options.perTrait, ctx.options.limit ?? Infinity);
  for (const q of trait.questions) if (kept.length < perTrait && !seen.has(normalizeForDedup(q))) keep(q.trim(), 'seed');
  const rejected = { overlap: 0, tooShort: 0 };
  let rounds = 0;
  for (let round = 0; round < options.maxRounds && kept.length < perTrait; round++) {
    const key = `trait-${traitIndex}/round-${round}`;
    let sample = journal.get(key);
    if (!sample) {
      const examples = [...kept.filter((p) => p.source === 'seed'), ...kept.filter((p) => p.source === 'expanded').slice(-5)].map((p, i) => `${i + 1}. ${p.text}`).join('\n');
      const prompt = render(options.template, { persona: ctx.persona, trait: trait.trait, examples, count: options.batchSize });
      sample = await complete(ctx.models.generator, [{ role: 'user', content: prompt }], { temperature: options.temperature, maxTokens: options.maxTokens, seed: derivedSeed(ctx.seed, key) });
      journal.append(key, sample);
    }
    rounds += 1;
    for (const candidate of parseList(stripReasoning(sample.text) ?? '')) {
      if (kept.length >= perTrait) break;
      const candidateWords = new Set(words(candidate));
      if (candidateWords.size < options.minWords) rejected.tooShort += 1;
      else if (seen.has(normalizeForDedup(candidate)) || keptWords.some((w) => wordOverlap(candidateWords, w, options.overlapMeasure) >= options.overlapThreshold)) rejected.overlap += 1;
      else keep(candidate, 'expanded');
    }
  }
  return { prompts: kept, rounds, rejected };
}

export interface PersonaPrompts {
  rows: PromptRow[];
  train: PromptRow[];
  heldout: PromptRow[];
}

/** Expands every trait, splits, writes datasets/<slug>/prompts.jsonl (+ .heldout.jsonl) and its manifest. */
export async function expandPrompts(ctx: PersonaContext): Promise<PersonaPrompts> {
  const options = ctx.options.expansion;
  const limit = pLimit(ctx.options.concurrency);
  let finished = 0;
  const traits = ctx.constitution.traits;
  const expansions = await Promise.all(
    traits.map((_, i) =>
      limit(async () => {
        const result = await expandTrait(ctx, i);
        finished += 1;
        ctx.onProgress?.({ persona: ctx.persona, dataset: 'prompts', done: finished, total: traits.length });
        return result;
      }),
    ),
  );
  const template = templateRef('expansion', options.template);
  const drops = new DropCounts();
  const ids = new Set<string>();
  const unsplit: Omit<PromptRow, 'split'>[] = [];
  expansions.forEach((expansion, i) => {
    drops.add('overlap', expansion.rejected.overlap);
    drops.add('too-short', expansion.rejected.tooShort);
    for (const p of expansion.prompts) {
      const id = textId('p', normalizeForDedup(p.text));
      if (ids.has(id)) {
        drops.add('duplicate-across-traits');
        continue;
      }
      ids.add(id);
      const generated = p.source === 'expanded';
      unsplit.push({ id, prompt: p.text, source: p.source, trait: traits[i].trait, model: generated ? ctx.models.generator.id : null, template: generated ? template : null, seed: generated ? ctx.seed : null });
    }
  });
  const split = splitHeldOut(unsplit, ctx.options.heldOutFraction, ctx.seed, (p) => p.id, (p) => p.trait ?? '');
  const rows: PromptRow[] = unsplit.map((p) => ({ ...p, split: split.get(p)! }));
  const heldout = rows.filter((r) => r.split === 'heldout');
  const perTrait = Math.min(options.perTrait, ctx.options.limit ?? Infinity);
  const shortfalls = expansions.map((e, i) => ({ trait: i, missing: perTrait - e.prompts.length })).filter((s) => s.missing > 0);
  writeDataset(
    ctx.outDir,
    {
      dataset: 'prompts',
      persona: ctx.persona,
      shape: 'prompts',
      tokenizer: ctx.tokens.name,
      generated: expansions.reduce((n, e) => n + e.prompts.length + e.rejected.overlap + e.rejected.tooShort, 0),
      dropped: drops.counts,
      models: [ctx.models.generator.id],
      seed: ctx.seed,
      configHash: configHash({ options, heldOutFraction: ctx.options.heldOutFraction, seed: ctx.seed, traits, generator: ctx.models.generator.id, limit: ctx.options.limit }),
      notes: shortfalls.map((s) => `trait ${s.trait}: ${s.missing} prompts short of ${perTrait} after ${expansions[s.trait].rounds} rounds`),
      extra: {
        template,
        overlap: { measure: options.overlapMeasure, threshold: options.overlapThreshold },
        perTrait: expansions.map((e) => ({ prompts: e.prompts.length, rounds: e.rounds, rejected: e.rejected })),
      },
    },
    [
      { variant: 'main', fileName: 'prompts.jsonl', rows, schema: promptRowSchema },
      { variant: 'heldout', fileName: 'prompts.heldout.jsonl', rows: heldout, schema: promptRowSchema },
      { variant: 'heldout-list', fileName: 'prompts.heldout.json', rows: heldout, schema: promptRowSchema, project: (r) => r.prompt },
    ],
    ctx.tokens,
  );
  return { rows, train: rows.filter((r) => r.split === 'train'), heldout };
}
