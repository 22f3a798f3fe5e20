/**
 * GRPO (docs/protocols.md §3): for each prompt the engine's own generator samples a group of G completions with
 * the current policy (the base model plus the adapter being trained); a reward function scores them
 * (weighted signals: judge rubrics at a configurable granularity, regular expressions, classifiers);
 * advantages are normalised within the group, and the clipped-ratio objective (optionally with a k3
 * KL term to the frozen base) is minimised. Reward components are journaled per step and every
 * sample is kept in grpo-samples.jsonl.
 */
import { join } from 'node:path';
import { Journal } from '../core/journal.js';
import { Model } from '../engine/generate/model.js';
import type { ChatModel } from '../providers/types.js';
import type { TrainState } from './checkpoint.js';
import { type ChatTurn, type PromptRow, type Sequence, makeBatch, promptMessages } from './data.js';
import type { GrpoOptions } from './options.js';
import { type Classifier, type RewardFunction, groupAdvantages, makeRewardFunction } from './rewards.js';
import type { Rng } from './rng.js';
import { type ReferenceScorer, type Setup, referenceScorer, setup } from './setup.js';
import { EpochSource, type TrainOutput, type TrainRunInput, runLoop, tokenBatch } from './sft.js';
import type { MicroBatch } from './trainer.js';

interface Prompt {
  index: number;
  messages: ChatTurn[];
  ids: number[];
}

interface Sample {
  prompt: number;
  reply: string;
  reward: number;
  components: Record<string, number>;
  advantage: number;
  tokens: number;
}

class GrpoSource extends EpochSource<Prompt> {
  private stats: { rewards: number[]; components: Record<string, number[]>; lengths: number[]; kl: number[]; clipped: number } = GrpoSource.empty();
  readonly extraOutputs: string[];
  private state: TrainState | null = null;
  private policyModel: Model | null = null;

  constructor(
    private readonly s: Setup,
    prompts: readonly Prompt[],
    private readonly o: GrpoOptions,
    seed: number,
    private readonly reward: RewardFunction,
    private readonly runDir: string,
    private readonly samples: Journal<Sample>,
    private readonly reference: ReferenceScorer | null,
    private readonly threads?: number,
  ) {
    super(prompts, o.batchSize, seed);
    this.extraOutputs = o.klCoef > 0 ? ['kl'] : [];
  }

  private static empty() {
    return { rewards: [] as number[], components: {} as Record<string, number[]>, lengths: [] as number[], kl: [] as number[], clipped: 0 };
  }

  override async next(state: TrainState, rng: Rng): Promise<MicroBatch> {
    this.state = state;
    return super.next(state, rng);
  }

  /**
   * The current policy as an engine Model: base + the adapter as trained so far (or the trained
   * weights). Loaded once; later steps put the new parameters into its sessions in place.
   */
  private async policy(): Promise<Model> {
    if (this.policyModel) {
      await this.s.updatePolicy(this.policyModel);
      return this.policyModel;
    }
    const dir = join(this.runDir, 'policy');
    this.s.writeOutput(dir);
    this.policyModel = this.s.lora
      ? Model.load(this.s.dir, { adapters: [{ path: dir }], weightsAs: 'feed', threads: this.threads })
      : Model.load(dir, { weightsAs: 'feed', threads: this.threads });
    return this.policyModel;
  }

  async close(): Promise<void> {
    await this.policyModel?.close();
    this.policyModel = null;
  }

  protected async build(prompts: Prompt[], rng: Rng): Promise<MicroBatch> {
    const G = this.o.groupSize;
    const eos = this.s.tokenizer.eos?.id;
    const model = await this.policy();
    const rows = prompts.flatMap((p) => Array.from({ length: G }, () => p.ids));
    const seed = rng.seed();
    const generations = await model.generate(rows, {
      temperature: this.o.temperature,
      topP: this.o.topP,
      maxTokens: this.o.maxNewTokens,
      // one random stream per completion, or a group would be G copies of one sample
      rows: rows.map((_, i) => ({ seed: (seed + i) | 0 })),
      // the policy samples as it trains: under preventative steering, steered
      hooks: this.s.steering ? { steer: [{ layer: this.s.steering.layer, vector: this.s.steering.vector, coef: 1, positions: this.s.steering.positions }] } : undefined,
    });
    const replies = generations.map((g) => this.s.tokenizer.decode(g.tokens, { skipSpecialTokens: true }));
    const rewards = await Promise.all(replies.map((r, i) => this.reward(prompts[Math.floor(i / G)].messages, r)));
    const advantages = prompts.flatMap((_, k) => groupAdvantages(rewards.slice(k * G, (k + 1) * G).map((r) => r.total), this.o.advantageEps));

    const seqs: Sequence[] = generations.map((g, i) => {
      const prompt = prompts[Math.floor(i / G)].ids;
      // the stop token the generator consumed is part of what the policy chose: train on it too
      const reply = g.finishReason === 'stop' && eos !== undefined ? [...g.tokens, eos] : g.tokens;
      const ids = [...prompt, ...reply].slice(0, this.o.maxLength);
      const lossMask = new Uint8Array(ids.length);
      lossMask.fill(1, Math.min(prompt.length, ids.length));
      return { ids, lossMask };
    });
    const batch = makeBatch(seqs.map((q) => [q]), this.s.config.padTokenId ?? eos ?? 0);
    if (this.o.lossAggregation === 'sequence') {
      // each completion's tokens weigh 1/length, so a completion counts once whatever its length
      batch.rowTargets.forEach((n, b) => {
        for (let t = 0; t < batch.length; t++) batch.weights[b * batch.length + t] /= Math.max(1, n);
      });
    }
    const mb = tokenBatch(this.s, batch, rng);
    mb.normaliser = this.o.lossAggregation === 'sequence' ? seqs.length : batch.targetTokens;
    mb.feeds.advantages = { data: Float32Array.from(advantages), dims: [seqs.length] };
    if (this.reference) mb.feeds.ref_logp = { data: (await this.reference.score(mb.feeds)).tokenLogp, dims: [batch.rows, batch.length] };

    const where = `e${this.state?.epoch ?? 0}-c${this.state?.cursor ?? 0}`;
    replies.forEach((reply, i) => {
      this.samples.append(`${where}-${i}`, {
        prompt: prompts[Math.floor(i / G)].index,
        reply,
        reward: rewards[i].total,
        components: rewards[i].components,
        advantage: advantages[i],
        tokens: generations[i].tokens.length,
      });
      this.stats.rewards.push(rewards[i].total);
      this.stats.lengths.push(generations[i].tokens.length);
      for (const [name, v] of Object.entries(rewards[i].components)) (this.stats.components[name] ??= []).push(v);
    });
    return mb;
  }

  observe(outputs: Record<string, Float32Array>, batch: MicroBatch): void {
    if (outputs.kl) this.stats.kl.push(outputs.kl[0] / Math.max(1, batch.normaliser));
  }

  stepMetrics(): Record<string, number> {
    const mean = (xs: number[]) => {
      const ok = xs.filter((x) => !Number.isNaN(x));
      return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : Number.NaN;
    };
    const r = this.stats.rewards;
    const m = mean(r);
    const out: Record<string, number> = {
      reward: m,
      rewardStd: Math.sqrt(mean(r.map((x) => (x - m) ** 2))),
      completionTokens: mean(this.stats.lengths),
      // Rollouts no signal could score: no advantage, not a penalty.
      unscored: r.filter((x) => Number.isNaN(x)).length,
    };
    for (const [name, xs] of Object.entries(this.stats.components)) {
      out[`reward.${name}`] = mean(xs);
      out[`missing.${name}`] = xs.filter((x) => Number.isNaN(x)).length;
    }
    if (this.stats.kl.length) out.kl = mean(this.stats.kl);
    this.stats = GrpoSource.empty();
    return out;
  }
}

export interface GrpoInput extends TrainRunInput<GrpoOptions> {
  /** Prompt rows: {prompt} as a string or messages (the identity probes, docs/protocols.md §3). */
  rows: readonly PromptRow[];
  /** The judge of `judge` reward signals: any ChatModel (an endpoint or the local engine). */
  judge?: ChatModel;
  /** Code rewards and classifiers, by the name `classifier` signals use. */
  classifiers?: Record<string, Classifier>;
}

/** GRPO with the engine's own sampler and a pluggable, weighted reward. */
export async function trainGrpo(input: GrpoInput): Promise<TrainOutput> {
  const o = input.options;
  if (typeof input.model !== 'string') throw new Error('trainGrpo needs a model directory: it loads the policy (base + current adapter) to sample with');
  const seed = input.seed ?? o.seed ?? 1;
  const reward = makeRewardFunction(o.rewards, { judge: input.judge, classifiers: input.classifiers, granularity: o.granularity });
  const s = await setup({ model: input.model, options: o, seed, objective: 'grpo', grpoClip: o.clip, grpoKl: o.klCoef, steeringVector: input.steeringVector, threads: input.threads });
  const samples = Journal.open<Sample>(join(input.runDir, 'grpo-samples.jsonl'));
  const reference = o.klCoef > 0 ? await referenceScorer(s, input.threads) : null;
  let source: GrpoSource | undefined;
  try {
    const prompts: Prompt[] = input.rows.map((row, index) => {
      const messages = promptMessages(row.prompt);
      return { index, messages, ids: s.tokenizer.encode(s.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }), { addSpecialTokens: false }) };
    });
    source = new GrpoSource(s, prompts, o, seed, reward, input.runDir, samples, reference, input.threads);
    return await runLoop(s, input, source, seed);
  } finally {
    await source?.close();
    samples.close();
    await reference?.release();
    await s.session.release();
  }
}
