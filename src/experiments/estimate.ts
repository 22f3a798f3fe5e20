/**
 * `run --dry-run`'s estimates: model calls and tokens per role, a cost where the experiment sets
 * `prices`, and an ETA, derived from the configuration alone (dataset sizes, samples per eval, max
 * tokens). They are estimates: output tokens are counted at each call's max tokens (an upper
 * bound), input tokens from the persona's system prompt plus an assumed prompt length, the ETA from an
 * assumed decoding rate. Filters, re-asks and a resumed run's finished items are not foreseen;
 * training time is not included.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { personaSystemPrompt } from '../constitution/index.js';
import { generateOptionsSchema, type GenerateOptions } from '../data/options.js';
import { SHIPPED_DATA_DIR } from '../evals/data.js';
import { evalOptionsSchema, type EvalOptions } from '../evals/options.js';
import type { LoadedExperiment } from './load.js';

/** Tokens of a user prompt, a judge's instructions around the reply it judges, and text per token. */
export const ASSUMED = { promptTokens: 50, judgeInstructionTokens: 300, charsPerToken: 4, tokensPerSecond: 30 } as const;

export const ROLES = ['teacher', 'subject', 'judge', 'secondJudge', 'userSimulator'] as const;
export type Role = (typeof ROLES)[number];

export interface RoleEstimate {
  calls: number;
  inputTokens: number;
  /** At each call's max tokens: an upper bound. */
  outputTokens: number;
  /** USD, where models.<role> has a price in `prices`. */
  cost?: number;
}

export interface RunEstimate {
  roles: Partial<Record<Role, RoleEstimate>>;
  /** USD over the roles that have prices; null when none has. */
  cost: number | null;
  /** Roles with calls but no price. */
  unpriced: Role[];
  /** Seconds of model calls at the assumed decoding rate and each stage's concurrency (training not included). */
  etaSeconds: number;
}

type Ledger = Map<Role, RoleEstimate & { seconds: number }>;

/** `calls` calls of `role`, each `input` tokens in and up to `output` out, `concurrency` at a time. */
function add(ledger: Ledger, role: Role, calls: number, input: number, output: number, concurrency: number): void {
  if (calls <= 0) return;
  const r = ledger.get(role) ?? { calls: 0, inputTokens: 0, outputTokens: 0, seconds: 0 };
  r.calls += calls;
  r.inputTokens += calls * input;
  r.outputTokens += calls * output;
  r.seconds += (Math.ceil(calls / concurrency) * output) / ASSUMED.tokensPerSecond;
  ledger.set(role, r);
}

const tokensOf = (text: string) => Math.ceil(text.length / ASSUMED.charsPerToken);
const shippedCount = (name: string, field?: string) => {
  const data = JSON.parse(readFileSync(resolve(SHIPPED_DATA_DIR, name), 'utf8')) as unknown[] | Record<string, unknown[]>;
  return Array.isArray(data) ? data.length : (data[field!]?.length ?? 0);
};
const fileCount = (baseDir: string, file: string | undefined, shipped: string, field?: string) => {
  if (!file) return shippedCount(shipped, field);
  try {
    const data = JSON.parse(readFileSync(resolve(baseDir, file), 'utf8')) as unknown;
    return Array.isArray(data) ? data.length : 0;
  } catch {
    return 0;
  }
};

function estimateGenerate(ledger: Ledger, loaded: LoadedExperiment, g: GenerateOptions): void {
  const baseDir = resolve(loaded.file, '..');
  const cap = (n: number) => Math.min(n, g.limit ?? Infinity);
  const c = g.concurrency;
  const datasets = new Set(g.datasets);
  // With generate.seedVaries every run seed samples its own training data: those calls once per seed (the prompt expansion once).
  const copies = g.seedVaries ? new Set(loaded.experiment.seeds).size : 1;
  for (const { constitution } of loaded.constitutions) {
    const system = tokensOf(personaSystemPrompt(constitution)) + ASSUMED.promptTokens;
    const traits = constitution.traits.length;
    const perTrait = cap(g.expansion.perTrait);
    const prompts = traits * perTrait;
    const trainPrompts = Math.round(prompts * (1 - g.heldOutFraction));
    const rounds = constitution.traits.reduce((n, t) => n + Math.min(g.expansion.maxRounds, Math.ceil(Math.max(0, perTrait - t.questions.length) / g.expansion.batchSize)), 0);
    add(ledger, 'teacher', rounds, ASSUMED.promptTokens * 4, g.expansion.maxTokens, c);
    if (datasets.has('chat')) add(ledger, 'teacher', copies * cap(trainPrompts * g.chat.samplesPerPrompt), system, g.chat.maxTokens, c);
    if (datasets.has('introspective')) add(ledger, 'teacher', copies * cap(traits * g.introspective.perTrait), system, g.introspective.maxTokens, c);
    if (datasets.has('documents')) add(ledger, 'teacher', copies * cap(g.documents.count), system, g.documents.maxTokens, c);
    if (datasets.has('dpo')) {
      const pairs = copies * cap((trainPrompts + (g.dpo.generalPrompts ? (g.generalPrompts.count ?? shippedCount('general-prompts.json')) : 0)) * g.dpo.samplesPerPrompt);
      add(ledger, 'teacher', pairs, system, g.dpo.maxTokens, c);
      add(ledger, 'subject', pairs, ASSUMED.promptTokens, g.dpo.maxTokens, c);
    }
    if (datasets.has('reflection')) add(ledger, 'subject', copies * cap(fileCount(baseDir, g.reflection.prompts, '../self-reflection.json') * g.reflection.samplesPerPrompt), system, g.reflection.maxTokens, c);
    if (datasets.has('interaction')) {
      const lines = copies * cap(g.interaction.free + g.interaction.leading) * g.interaction.turns;
      add(ledger, 'subject', lines, system + (g.interaction.turns * g.interaction.maxTokens) / 2, g.interaction.maxTokens, c);
    }
  }
}

function estimateEvals(ledger: Ledger, loaded: LoadedExperiment, o: EvalOptions, subjects: number, judges: Role[]): void {
  const baseDir = resolve(loaded.file, '..');
  const cap = (n: number) => Math.min(n, o.limit ?? Infinity);
  const c = o.concurrency;
  const personas = loaded.constitutions.length;
  const traits = loaded.constitutions.reduce((n, x) => n + x.constitution.traits.length, 0);
  const subject = (perSubject: number, output: number, input: number = ASSUMED.promptTokens) => add(ledger, 'subject', subjects * perSubject, input, output, c);
  const judged = (perSubject: number, replyTokens: number, verdictTokens = o.judge.maxTokens) => {
    for (const j of judges) add(ledger, j, subjects * perSubject, ASSUMED.judgeInstructionTokens + replyTokens, verdictTokens, c);
  };
  for (const id of o.evals) {
    if (id === 'classifier') {
      const x = o.classifier;
      add(ledger, 'subject', x.repliesPerPersona * (personas + (x.includeAssistant ? 1 : 0)), ASSUMED.promptTokens, x.maxTokens, c);
      subject(cap(x.testPrompts * (1 + (Array.isArray(x.suffixes) ? x.suffixes.length : fileCount(baseDir, x.suffixes, 'adversarial-suffixes.json')))), x.maxTokens);
    } else if (id === 'prefill') {
      const n = cap(o.prefill.prompts);
      subject(2 * n, o.prefill.maxTokens);
      if (o.prefill.scorer !== 'classifier') judged(n, o.prefill.maxTokens);
    } else if (id === 'preferences') {
      const n = cap(o.preferences.matches * o.preferences.variants.length);
      subject(n, o.preferences.maxTokens);
      judged(n, o.preferences.maxTokens);
    } else if (id === 'traitExpression') {
      const n = cap(o.traitExpression.samplesPerTrait * traits);
      subject(n, o.traitExpression.maxTokens);
      judged(2 * n, o.traitExpression.maxTokens, 8);
      // pairwise: each subject's reply against the base's and the prompted one's, in both orders, by the first judge
      if (o.traitExpression.pairwiseCoherence && judges.length) add(ledger, judges[0], Math.max(0, subjects - 1) * n * 2 * 2, ASSUMED.judgeInstructionTokens + 2 * o.traitExpression.maxTokens, o.judge.maxTokens, c);
    } else if (id === 'identity') {
      const n = cap(fileCount(baseDir, o.identity.probes, 'identity-probes.json') * o.identity.samples);
      subject(n, o.identity.maxTokens);
      if (o.identity.scorer === 'judge') judged(n, o.identity.maxTokens);
    } else if (id === 'leakage') {
      const n = cap(fileCount(baseDir, o.leakage.questions, 'leakage-questions.json') * o.leakage.samples);
      subject(n, o.leakage.maxTokens);
      judged(n, o.leakage.maxTokens);
    } else if (id === 'drift') {
      const x = o.drift;
      const n = cap(x.conversations);
      const history = (x.turns * x.maxTokens) / 2;
      subject(n * x.turns * (1 + x.qaQuestions), x.maxTokens, history);
      add(ledger, 'userSimulator', subjects * n * x.turns, history, x.maxTokens, c);
      judged(n * x.turns * 2, history);
    } else if (id === 'psychometrics') {
      subject(cap(shippedCount('ipip-neo-120.json', 'items') * o.psychometrics.repeats), o.psychometrics.maxTokens);
    } else if (id === 'capability') {
      subject(cap(fileCount(baseDir, o.capability.questions, 'capability.json')), o.capability.maxTokens);
    }
  }
}

/** The estimate of a run of `loaded` over `subjects` eval subjects, for the stages it runs. */
export function estimateRun(loaded: LoadedExperiment, stages: readonly string[], subjects: number): RunEstimate {
  const { experiment } = loaded;
  const ledger: Ledger = new Map();
  if (stages.includes('generate')) estimateGenerate(ledger, loaded, generateOptionsSchema.parse(experiment.generate ?? {}));
  if (stages.includes('eval')) {
    const m = experiment.models;
    const judges: Role[] = ['judge', ...(m.secondJudge ? (['secondJudge'] as const) : [])];
    estimateEvals(ledger, loaded, evalOptionsSchema.parse(experiment.eval ?? {}), subjects, judges);
  }
  // Roles without a model of their own fall back as the run does: judge -> teacher -> subject, user simulator -> teacher -> subject.
  const roleOf = (role: Role): Role => (experiment.models[role] !== undefined ? role : role === 'secondJudge' || !experiment.models.teacher ? 'subject' : 'teacher');
  const roles: Partial<Record<Role, RoleEstimate>> = {};
  const unpriced: Role[] = [];
  let cost: number | null = null;
  let etaSeconds = 0;
  for (const [role, r] of ledger) {
    const price = experiment.prices?.[roleOf(role)];
    const priced = price ? (r.inputTokens * price.input + r.outputTokens * price.output) / 1e6 : undefined;
    if (priced === undefined) unpriced.push(role);
    else cost = (cost ?? 0) + priced;
    roles[role] = { calls: r.calls, inputTokens: r.inputTokens, outputTokens: r.outputTokens, ...(priced !== undefined ? { cost: priced } : {}) };
    etaSeconds += r.seconds;
  }
  return { roles, cost, unpriced, etaSeconds: Math.round(etaSeconds) };
}

const thousands = (n: number) => Math.round(n).toLocaleString('en-US');
const duration = (s: number) => (s < 90 ? `${s} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);

/** The estimate as the dry run prints it. */
export function estimateText(e: RunEstimate): string[] {
  const lines = ['estimates (from the configuration; output tokens at max tokens, an upper bound):'];
  for (const [role, r] of Object.entries(e.roles)) {
    lines.push(`  ${role}: ${thousands(r.calls)} calls, ~${thousands(r.inputTokens)} input + <=${thousands(r.outputTokens)} output tokens${r.cost !== undefined ? `, ~$${r.cost.toFixed(2)}` : ''}`);
  }
  if (Object.keys(e.roles).length === 0) lines.push('  no model calls');
  lines.push(e.cost === null ? '  cost: no prices set (prices: in the experiment file)' : `  cost: ~$${e.cost.toFixed(2)}${e.unpriced.length ? ` (without ${e.unpriced.join(', ')}: no price set)` : ''}`);
  lines.push(`  ETA: ~${duration(e.etaSeconds)} of model calls at ${ASSUMED.tokensPerSecond} tokens/s per call (training not included)`);
  return lines;
}
