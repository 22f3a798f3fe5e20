/**
 * The evaluation suite (docs/protocols.md §4): runEvals runs the chosen evals on a set of subjects, journals every
 * scored sample as soon as it is done (resumable, SIGKILL-safe) and writes evals/summary.json.
 */
import { judgedOutcome } from './outcome.js';
import { personaSystemPrompt, type Constitution } from '../constitution/index.js';
import { personaSlug } from '../core/slug.js';
import { InputError } from '../core/errors.js';
import { journalLineOf, writeFileAtomic, type RunDir } from '../core/journal.js';
import type { ChatModel } from '../providers/types.js';
import { aiRepresentationEval } from './ai-representation.js';
import { capabilityEval } from './capability.js';
import { driftEval } from './drift.js';
import { identityEval } from './identity.js';
import { addJournaledTallies, createJudge, probeJudge, withJudgeTallies, type EvalJudge, type JudgeProbe } from './judging.js';
import { interferenceEval } from './interference.js';
import { leakageEval } from './leakage.js';
import { evalOptionsSchema, type EvalId, type EvalOptionsInput } from './options.js';
import { trainPersonaClassifier, type PersonaClassifierHandle } from './persona-classifier-training.js';
import { personaClassifierEval } from './persona-classifier.js';
import { personaKnowledgeEval } from './persona-knowledge.js';
import { preferencesEval } from './preferences.js';
import { prefillEval } from './prefill.js';
import { psychometricsEval } from './psychometrics.js';
import { reverseTuringEval } from './reverse-turing.js';
import { cellOf, fileSafe, kindOf, promptedByPersona } from './subjects.js';
import { evalRecordSchemaOf, journaledSubjectOf, sameSubject } from './records.js';
import { evalSummarySchema, type EvalResult, type EvalSummary } from './summary.js';
import { traitExpressionEval } from './trait-expression.js';
import type { Eval, EvalContext, EvalProgress, ScoredRecord, Subject, SubjectRecords } from './types.js';

export * from './summary.js';
export * from './options.js';
export { evalJournalLineSchema, evalRecordSchemaOf, journaledSubjectSchema, type JournaledSubject } from './records.js';
export type { Subject, EvalProgress, Eval, EvalTask, EvalContext, ScoredRecord } from './types.js';
export type { EvalJudge } from './judging.js';
export { createJudge } from './judging.js';

export const EVALS: Record<EvalId, Eval> = {
  classifier: personaClassifierEval,
  prefill: prefillEval,
  preferences: preferencesEval,
  traitExpression: traitExpressionEval,
  identity: identityEval,
  leakage: leakageEval,
  drift: driftEval,
  psychometrics: psychometricsEval,
  capability: capabilityEval,
  aiRepresentation: aiRepresentationEval,
  reverseTuring: reverseTuringEval,
  interference: interferenceEval,
  personaKnowledge: personaKnowledgeEval,
};

/**
 * Reads one line of journals/evals/<eval>/<subject>.jsonl with the schema its writer used (the eval's
 * record schemas); undefined for a line that does not parse (a torn tail) or an unknown eval.
 */
export function readEvalLine(evaluation: string, line: unknown): { key: string; value: ScoredRecord<unknown, unknown, unknown> } | undefined {
  if (!Object.hasOwn(EVALS, evaluation)) return undefined;
  const parsed = journalLineOf(evalRecordSchemaOf(EVALS[evaluation as EvalId].records)).safeParse(line);
  return parsed.success ? (parsed.data as { key: string; value: ScoredRecord<unknown, unknown, unknown> }) : undefined;
}

export interface EvalExperiment {
  name: string;
  seeds?: number[];
  /** The experiment's constitutions, loaded. The first is the target of subjects without a persona. */
  constitutions: Constitution[];
  /** Directory that data files named in the options are relative to (the experiment file's). */
  baseDir: string;
  /** Plays the user in multi-turn evals (models.userSimulator); default: the base subject's model. */
  userSimulator?: ChatModel;
  /** The experiment file, named in errors about its `eval:` section. */
  file?: string;
}

export interface JudgeModel {
  name: string;
  model: ChatModel;
}


/**
 * Runs the evals of `options.evals` on every subject. Judges: the first decides, a second is compared
 * with it. The subject named options.baseline and each persona's prompted subject (see promptedByPersona)
 * are the baselines of comparisons.
 */
export async function runEvals(
  experiment: EvalExperiment,
  subjects: Subject[],
  judges: JudgeModel[],
  runDir: RunDir,
  options: EvalOptionsInput = {},
  hooks: { onProgress?: (p: EvalProgress) => void } = {},
): Promise<EvalSummary> {
  const file = experiment.file ?? 'experiment';
  const parsed = evalOptionsSchema.safeParse(options);
  if (!parsed.success) {
    const e = InputError.fromZod(file, parsed.error);
    throw new InputError(file, `eval.${e.field}`, e.expected);
  }
  const o = parsed.data;
  if (subjects.length === 0) throw new InputError(file, 'subjects', 'expected at least one subject');
  if (new Set(subjects.map((s) => fileSafe(s.name))).size !== subjects.length) throw new InputError(file, 'subjects', 'expected distinct subject names (also after replacing characters other than letters, digits, ".", "_", "-")');
  if (experiment.constitutions.length === 0) throw new InputError(file, 'constitutions', 'expected at least one constitution');
  const personas = experiment.constitutions.map((c) => c.name);
  subjects.forEach((s, i) => {
    if (s.persona !== undefined && !personas.includes(s.persona)) throw new InputError(file, `subjects[${i}].persona`, `one of the constitutions' names (${personas.join(', ')}), found "${s.persona}"`);
  });
  if (new Set(judges.map((j) => j.name)).size !== judges.length) throw new InputError(file, 'judges', 'expected distinct judge names');
  const generator = o.classifier.generator;
  if (generator !== undefined && !subjects.some((s) => s.name === generator)) {
    throw new InputError(file, 'eval.classifier.generator', `the name of a subject (${subjects.map((s) => s.name).join(', ')}), found "${generator}"`);
  }
  const evalJudges: EvalJudge[] = judges.map((j) => createJudge(j.name, j.model, { ...o.judge, minNumericMass: o.traitExpression.minNumericMass }));
  let classifier: Promise<PersonaClassifierHandle> | undefined;
  const base = subjects.find((s) => s.name === o.baseline);
  const prompted = promptedByPersona(subjects, personas, o.prompted);
  const ctx: EvalContext = {
    experimentName: experiment.name,
    file,
    constitutions: experiment.constitutions,
    subjects,
    judges: evalJudges,
    userSimulator: experiment.userSimulator,
    options: o,
    seed: o.seed ?? experiment.seeds?.[0] ?? 0,
    runDir,
    baseDir: experiment.baseDir,
    base,
    prompted: prompted.get(personas[0]),
    promptedByPersona: prompted,
    onProgress: hooks.onProgress,
    personaClassifier: () => (classifier ??= trainPersonaClassifier(ctx)),
  };

  // Every data file is read and validated before anything runs: bad input stops the run with nothing written.
  for (const id of o.evals) EVALS[id].loadData?.(ctx);

  // Judges whose scores cannot be read are found before they score anything.
  const probes: Record<string, JudgeProbe> = {};
  if (o.judge.probe !== 'off' && o.evals.includes('traitExpression')) {
    for (const j of evalJudges) {
      probes[j.name] = await probeJudge(j, runDir);
      if (probes[j.name].readable) continue;
      const message = `judge "${j.name}" scored questions with known answers 85, 12, 3 as ${probes[j.name].scores.map((v) => v ?? 'missing').join(', ')}: its 0-100 scores cannot be read (a thinking model, or a tokenizer the score reader does not handle)`;
      if (o.judge.probe === 'refuse') throw new InputError(file, 'eval.judge.probe', `${message}; use another judge, or set eval.judge.probe: warn`);
      process.emitWarning(message);
    }
  }

  const results: EvalResult[] = [];
  for (const id of o.evals) results.push(await runOne(ctx, EVALS[id]));

  const summary: EvalSummary = evalSummarySchema.parse({
    version: 1,
    experiment: experiment.name,
    createdAt: new Date().toISOString(),
    seed: ctx.seed,
    confidence: o.confidence,
    baseline: ctx.base?.name ?? null,
    prompted: ctx.prompted?.name ?? null,
    promptedByPersona: Object.fromEntries([...prompted].map(([persona, s]) => [persona, s.name])),
    subjects: subjects.map((s) => {
      const kind = kindOf(s, base, prompted);
      const cell = kind === 'trained' ? cellOf(s) : undefined;
      return { name: s.name, model: s.model.id, persona: s.persona ?? null, hasSystemPrompt: !!s.systemPrompt, kind, ...(cell ? { cell } : {}), ...(s.steering ? { steering: s.steering } : {}) };
    }),
    judges: evalJudges.map((j) => j.name),
    judgeTallies: Object.fromEntries(evalJudges.map((j) => [j.name, j.tally.snapshot()])),
    judgeProbes: probes,
    evals: results,
  });
  writeFileAtomic(runDir.path('evals', 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  return summary;
}

async function runOne(ctx: EvalContext, ev: Eval): Promise<EvalResult> {
  const empty = { subjects: {}, overall: {}, unparsed: 0, judgeAgreement: [], plots: {}, pooled: [], contrasts: [], notes: {} };
  try {
    const task = await ev.prepare(ctx);
    if ('skip' in task) return { eval: ev.id, status: 'skipped', reason: task.skip, ...empty };
    // Subjects run side by side (each with its own concurrency limit): they are usually different models.
    // allSettled: when one subject fails, the others still finish (and journal) before the eval is marked failed.
    const identities = ctx.subjects.map((subject) => journaledSubjectOf(ctx, subject));
    const journals = ctx.subjects.map((subject, i) => ctx.runDir.journal<ScoredRecord<unknown, unknown, unknown>>(`evals/${ev.id}/${fileSafe(subject.name)}`, evalRecordSchemaOf(ev.records, identities[i])));
    const settled = await Promise.allSettled(
      ctx.subjects.map(async (subject, i) => {
        const identity = identities[i];
        const journal = journals[i];
        const other = journal.values().find((r) => r.subject && !sameSubject(r.subject, identity));
        if (other) throw new Error(`${journal.path} holds records of ${JSON.stringify(other.subject)}, not of this run's subject ${JSON.stringify(identity)}: move the file away to score it anew, or evaluate into another output: directory`);
        const records = await journal.runAll(
          task.samples(subject).slice(0, ctx.options.limit),
          (s) => task.key(s),
          (sample) =>
            withJudgeTallies(async () => {
              const solved = await task.solve(subject, sample);
              return { subject: identity, sample, solved, score: await task.score(subject, sample, solved) };
            }),
          { concurrency: ctx.options.concurrency, onProgress: (done, total) => ctx.onProgress?.({ eval: ev.id, subject: subject.name, done, total }) },
        );
        return { subject, records: new Map(records.map((r) => [task.key(r.sample), r])) };
      }),
    );
    for (const journal of journals) addJournaledTallies(ctx.judges, journal.values());
    const failure = settled.find((r) => r.status === 'rejected');
    if (failure) throw failure.reason;
    const results = settled.map((r) => (r as PromiseFulfilledResult<SubjectRecords<unknown, unknown, unknown>>).value);
    return judgedOutcome({ eval: ev.id, status: 'ok', pooled: [], contrasts: [], ...(await task.aggregate(results)) });
  } catch (error) {
    if (error instanceof InputError) throw error;
    return { eval: ev.id, status: 'failed', reason: (error as Error).message, ...empty };
  }
}

/**
 * The two baselines every comparison needs: the base model as it is, and the same model with each
 * constitution's persona system prompt (the first is named `prompted`, others `prompted-<persona>`).
 */
export function baselineSubjects(base: ChatModel, constitutions: Constitution[], names: { base?: string; prompted?: string } = {}): Subject[] {
  const promptedName = names.prompted ?? 'prompted';
  return [
    { name: names.base ?? 'base', model: base, kind: 'base' },
    ...constitutions.map((c, i): Subject => ({ name: i === 0 ? promptedName : `${promptedName}-${personaSlug(c.name)}`, model: base, systemPrompt: personaSystemPrompt(c), persona: c.name, kind: 'prompted' })),
  ];
}
