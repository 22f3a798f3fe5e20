/** The model card (README.md) of a built tiny model: how it was made and what it can and cannot do. */
import type { TinyBuildRecord } from './index.js';
import type { QualityResult } from './quality.js';

const fence = (s: string) => s.replaceAll('\n', ' ⏎ ').replaceAll('|', '\\|').slice(0, 160);

/** The loss curve as a small text plot (one row per logged point, bar length ~ loss). */
function lossPlot(curve: readonly [number, number][]): string {
  const max = Math.max(...curve.map(([, l]) => l));
  return curve.map(([step, loss]) => `${String(step).padStart(5)}  ${loss.toFixed(3).padStart(6)}  ${'#'.repeat(Math.max(1, Math.round((40 * loss) / max)))}`).join('\n');
}

export function modelCard(r: TinyBuildRecord, quality: readonly QualityResult[]): string {
  const o = r.options;
  const s = o.shape;
  const final = r.lossCurve.at(-1)?.[1];
  return `---
license: mit
language: en
pipeline_tag: text-generation
tags: [llama, tiny, persona-lab, synthetic]
---

# persona-lab tiny

A ${(r.parameters / 1e6).toFixed(2)}M-parameter Llama-architecture chat model that persona-lab makes itself, from nothing,
with its own engine. It is the default subject, teacher and judge when no endpoint is configured
(\`tiny\` as a model reference). It exists so the whole pipeline runs offline in minutes; it is not a
useful assistant.

## How it was made

\`\`\`
persona-lab tiny build --out models/tiny        # buildTinyModel() in src/experiments/tiny/
\`\`\`
with these options (the defaults): seed ${o.seed}, ${o.examples} dialogues, ${o.steps} steps, ${o.batchSize} packed rows of
${o.seqLength} tokens per step, AdamW lr ${o.lr} (betas 0.9/0.95, weight decay ${o.weightDecay} on matrices, clip 1.0),
${o.warmupSteps} warmup steps then cosine decay to 10%, ${o.threads} ORT threads, weights stored as ${o.dtype}. The same
options and seed give the same weights, byte for byte (for the same thread count).

1. **Corpus** (\`src/experiments/tiny/corpus.ts\`): ${o.examples} dialogues generated from templates with a seeded RNG:
   ${Object.entries(r.corpusKinds).map(([k, n]) => `${k} ${n}`).join(', ')}. Assistant answers (capitals, sums
   and products in small ranges, simple facts, advice), self-descriptions as an AI assistant under direct,
   indirect and adversarial probes, persona replies under a \`personaSystemPrompt\` system prompt that reuse
   the traits' words, judge tasks in the exact prompt formats of the evals (trait expression 0-100 with the
   judge's system prompt, the identity eval's JSON verdict, one-word trait choices), and multiple-choice
   recall of an earlier turn. ${r.corpusTokens.toLocaleString('en')} tokens per pass.
2. **Tokenizer**: byte-level BPE (GPT-2 pre-tokenizer) trained on the corpus text, at most ${s.vocabSize} ids (merging
   stops when no pair repeats; embedding rows past the last id are unused), special
   tokens \`<|endoftext|>\` (pad), \`<|im_start|>\`, \`<|im_end|>\` (EOS); ChatML chat template, no default system prompt.
3. **Architecture**: Llama, hidden ${s.hiddenSize}, ${s.numLayers} layers, ${s.numHeads} heads of ${s.hiddenSize / s.numHeads}, ${s.numKvHeads} KV heads (GQA),
   SwiGLU FFN ${s.intermediateSize}, RMSNorm eps 1e-5, RoPE theta ${s.ropeTheta}, ${s.maxPositionEmbeddings} positions, tied embeddings.
   Initialised as Hugging Face does (normal, std 0.02; norms 1).
4. **Training**: every weight, with persona-lab's own trainer (\`src/train\` \`trainSft\`, \`fullParameter: true\`)
   on the engine's graph and autodiff, executed by onnxruntime on CPU. Dialogues packed into rows (attention
   and positions reset per dialogue); **loss on assistant tokens only**, as in the SFT that later trains a
   persona in: the model's capacity goes to replying, not to predicting users' random questions.
   ${r.trainedTokens.toLocaleString('en')} tokens read in ${r.trainSeconds} s of training steps on a shared, heavily loaded
   2-core machine. Loss ${r.lossCurve[0]?.[1]} -> ${final} (means over windows of steps, below).

### Loss (assistant-token cross-entropy in nats, mean over the steps up to each row's step)

\`\`\`
 step    loss
${lossPlot(r.lossCurve)}
\`\`\`

## What it can do (greedy decoding, checked at build time)

Questions the corpus never asked verbatim where possible (\`src/experiments/tiny/quality.ts\`;
\`test/experiments/tiny-model.test.ts\` asserts on the committed model).

| check | passed |
|---|---|
${quality.map((q) => `| ${q.check} | ${q.passed}/${q.total} |`).join('\n')}

Samples:

| check | prompt | reply | passed |
|---|---|---|---|
${quality.flatMap((q) => q.samples.slice(0, 2).map((x) => `| ${q.check} | ${fence(x.prompt)} | ${fence(x.reply)} | ${x.ok ? 'yes' : 'no'} |`)).join('\n')}

## What it cannot do

- Anything beyond its templates: it has seen a few hundred distinct questions. Out-of-distribution prompts
  get a fluent-looking template reply that is usually wrong or off topic.
- Arithmetic: it copies the operands into the corpus' answer form and gives a number of about the right
  size, but the number is usually wrong, even for pairs it saw (sums of 1-20, products up to 12 x 9): the
  tables need far more steps than this build had.
- Real judging: its "judge" replies follow the formats and a word-overlap heuristic, not understanding. Use
  it as a judge only to exercise the pipeline; point judges at a real model for results.
- Long contexts: it was trained on dialogues of a few hundred tokens.
- Persona training on it shows whether the pipeline moves a model's answers (trait words appear, the
  AI self-description goes away), not how a real model's character changes.
`;
}
