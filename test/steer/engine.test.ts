/**
 * The white-box stage on the tiny llama fixture through the real engine, with a judge on the real
 * loopback server: extraction (filter and mean difference), steering's exact shift, capping's floor,
 * fine-tuning shift, data screening, the sweep, projection monitoring and steered ChatModels.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assistantAxis,
  calibrateCapping,
  extractPersonaVector,
  finetuningShift,
  keepPairs,
  monitorConversations,
  norm,
  percentile,
  project,
  projectionVsExpression,
  runSweep,
  screenData,
  steerOptionsSchema,
  SteerEngine,
  vectorAt,
  type ExtractResult,
  type LayerVectors,
  type TraitPrompts,
} from '../../src/steer/index.js';
import { coherenceOf, expressionOf, LORA_DIR, maxAbsDiff, MODEL_DIR, startJudge, type ScriptedJudge } from './support.js';

const TOL = 1e-4;
const prompts: TraitPrompts = {
  trait: 'I explain everything with clockwork metaphors.',
  pairs: [
    { positive: 'Explain with clockwork.', negative: 'Never mention clocks.' },
    { positive: 'You love gears.', negative: 'You hate machines.' },
  ],
  questions: ['How do tides work?', 'What is a good breakfast?', 'Why is the sky blue?', 'How do I learn chess?', 'What is a cloud?'],
};
const options = steerOptionsSchema.parse({
  extract: { pairs: 2, questions: 5, extractQuestions: 3, rollouts: 2, maxTokens: 6, temperature: 1 },
  sweep: { layers: [0, 1], coefficients: [1, 4], maxTokens: 5 },
});

describe('white-box stage on the tiny llama', () => {
  const engine = SteerEngine.open(`local:${MODEL_DIR}`);
  let judge: ScriptedJudge;
  let extracted: ExtractResult;
  const rowOf = (system: string, question: string, reply: number[]) => ({
    prompt: engine.render([
      { role: 'system', content: system },
      { role: 'user', content: question },
    ]),
    reply,
  });

  before(async () => {
    judge = await startJudge();
    extracted = await extractPersonaVector({ engine, judge: judge.judge, prompts, options: options.extract, seed: 3, concurrency: 4 });
  });
  after(async () => {
    await judge.close();
    await engine.close();
  });

  test('extraction keeps exactly the pairs the judge scores let through, and v = mean(kept +) - mean(kept -)', async () => {
    const { rollouts, kept, vector } = extracted;
    assert.equal(rollouts.length, 2 * 3 * 2 * 2, 'pairs x extract questions x rollouts x signs');
    for (const r of rollouts) {
      assert.equal(r.expression, expressionOf(r.text));
      assert.equal(r.coherence, coherenceOf(r.text));
    }
    const expected = rollouts.filter(
      (p) =>
        p.sign === 'positive' &&
        rollouts.some(
          (n) =>
            n.sign === 'negative' &&
            n.pair === p.pair &&
            n.question === p.question &&
            n.rollout === p.rollout &&
            p.reply.length > 0 &&
            n.reply.length > 0 &&
            expressionOf(p.text) >= 50 &&
            expressionOf(n.text) < 50 &&
            coherenceOf(p.text) >= 50 &&
            coherenceOf(n.text) >= 50,
        ),
    );
    assert.ok(expected.length > 0, 'the fixture and seed should give at least one kept pair');
    assert.deepEqual(
      kept.map((k) => `${k.positive.pair}/${k.positive.question}/${k.positive.rollout}`).sort(),
      expected.map((p) => `${p.pair}/${p.question}/${p.rollout}`).sort(),
    );
    assert.equal(vector.nPositive, kept.length);
    assert.deepEqual(vector.layers, [0, 1]);
    assert.equal(vector.modelId, engine.modelId);
    // independent recomputation: the engine's per-token capture averaged over the reply by hand
    const mean = async (side: 'positive' | 'negative', layer: number) => {
      const rows = kept.map((k) => rowOf(prompts.pairs[k[side].pair][side], prompts.questions[k[side].question], k[side].reply));
      const acts = await engine.model.capture(rows.map((r) => [...r.prompt, ...r.reply]), rows.map((r) => r.prompt.length), { layers: [layer], mode: 'tokens' });
      const d = engine.hiddenSize;
      const acc = new Float64Array(d);
      acts.forEach((a, i) => {
        const t0 = rows[i].prompt.length;
        const all = a.get(layer)!;
        for (let t = t0; t < t0 + rows[i].reply.length; t++) for (let j = 0; j < d; j++) acc[j] += all[t * d + j] / rows[i].reply.length / rows.length;
      });
      return acc;
    };
    for (const layer of [0, 1]) {
      const [p, n] = [await mean('positive', layer), await mean('negative', layer)];
      assert.ok(maxAbsDiff(vectorAt(vector, layer), p.map((x, i) => x - n[i])) < TOL, `layer ${layer}`);
    }
    assert.deepEqual(extracted.evaluate, ['How do I learn chess?', 'What is a cloud?']);
    assert.deepEqual(keepPairs(rollouts, { positiveMin: 101, negativeBelow: 50, coherenceMin: 50 }).kept, []);
  });

  for (const positions of ['all', 'reply'] as const) {
    test(`steering with the extracted vector at layer l shifts the activation at l by exactly coef * v (${positions})`, async () => {
      const layer = 0;
      const coef = 2.5;
      const v = vectorAt(extracted.vector, layer);
      const steered = engine.withHooks({ steer: [{ layer, vector: v, coef, positions }] });
      const rows = extracted.kept.map((k) => rowOf(prompts.pairs[k.positive.pair].positive, prompts.questions[k.positive.question], k.positive.reply));
      const [base, moved] = [await engine.replyMeans(rows, [layer]), await steered.replyMeans(rows, [layer])];
      const [baseLast, movedLast] = [await engine.lastPromptToken(rows.map((r) => r.prompt), [layer]), await steered.lastPromptToken(rows.map((r) => r.prompt), [layer])];
      rows.forEach((_, i) => {
        const delta = moved[i].get(layer)!.map((x, j) => x - base[i].get(layer)![j]);
        assert.ok(maxAbsDiff(delta, v.map((x) => coef * x)) < TOL, `row ${i}: reply mean moved by coef * v`);
        const projected = project(moved[i].get(layer)!, v) - project(base[i].get(layer)!, v);
        assert.ok(Math.abs(projected - coef * norm(v)) < TOL && projected > 0, 'the projection on v rises by coef * |v|');
        const lastDelta = maxAbsDiff(movedLast[i].get(layer)!, baseLast[i].get(layer)!);
        if (positions === 'reply') assert.ok(lastDelta < 1e-6, 'reply-only steering leaves the prompt alone');
        else assert.ok(Math.abs(lastDelta - maxAbsDiff(v.map((x) => coef * x), new Float32Array(v.length))) < TOL, 'all-position steering moves the last prompt token by coef * v too');
      });
      // a negative coefficient moves the projection the other way
      const down = await engine.withHooks({ steer: [{ layer, vector: v, coef: -coef, positions }] }).replyMeans(rows.slice(0, 1), [layer]);
      assert.ok(project(down[0].get(layer)!, v) < project(base[0].get(layer)!, v), 'a negative coefficient lowers the projection');
    });
  }

  test('fine-tuning shift: a model moved by coef * v at layer l shifts by coef * |v| there; an adapter gives a finite shift', async () => {
    const conversations = prompts.questions.map((q) => [{ role: 'user' as const, content: q }]);
    const v0 = vectorAt(extracted.vector, 0);
    const moved = engine.withHooks({ steer: [{ layer: 0, vector: v0, coef: 1.5, positions: 'all' }] });
    const shift = await finetuningShift({ base: engine, trained: moved, vector: extracted.vector, conversations });
    assert.ok(Math.abs(shift[0].shift - 1.5 * norm(v0)) < TOL, `${shift[0].shift}`);
    assert.ok(Math.abs(shift[0].relative - 1.5) < TOL, 'the shift is 1.5 |v| in units of |v|');
    const same = await finetuningShift({ base: engine, trained: engine, vector: extracted.vector, conversations, position: 'reply', maxTokens: 4 });
    assert.ok(same.every((s) => Math.abs(s.shift) < 1e-6), 'the base against itself does not move');
    const adapted = SteerEngine.open(`local:${MODEL_DIR}+${LORA_DIR}`);
    try {
      const lora = await finetuningShift({ base: engine, trained: adapted, vector: extracted.vector, conversations });
      assert.ok(lora.every((s) => Number.isFinite(s.shift)) && lora.some((s) => Math.abs(s.shift) > 1e-6), 'the adapter moves the activations');
    } finally {
      await adapted.close();
    }
  });

  test('capping holds every reply token\'s projection at or above the 25th-percentile floor across the band', async () => {
    const questions = ['Tell me about rivers.', 'What is your name?', 'Give me a recipe.'];
    const assistant = (await engine.rollouts(questions.map((q) => [{ role: 'user' as const, content: q }]), { n: 2, maxTokens: 8, temperature: 1, seed: 5 })).flat().filter((r) => r.reply.length > 0);
    const axis: LayerVectors = { ...extracted.vector, kind: 'assistantAxis' };
    const calibration = await calibrateCapping({ engine, axis, assistant, options: { layers: [0, 1], band: [0, 1], percentile: 25, thresholdFrom: 'tokens', axisLayer: 1 } });
    assert.deepEqual(calibration.layers, [0, 1]);
    const a = vectorAt(axis, 1);
    const before = await engine.replyTokens(assistant, [0, 1]);
    const capped = await engine.withHooks({ cap: calibration.capping }).replyTokens(assistant, [0, 1]);
    [0, 1].forEach((layer, i) => {
      const observed = before.flatMap((r) => r.get(layer)!.map((x) => project(x, a)));
      assert.equal(calibration.observed, observed.length);
      assert.ok(Math.abs(calibration.floors[i] - percentile(observed, 25)) < 1e-9, 'the floor is the 25th-percentile order statistic');
      assert.ok(observed.some((p) => p < calibration.floors[i] - 1e-3), `uncapped, some tokens fall below the floor at layer ${layer}`);
      const after = capped.flatMap((r) => r.get(layer)!.map((x) => project(x, a)));
      const lowest = Math.min(...after);
      assert.ok(lowest >= calibration.floors[i] - TOL, `capped, layer ${layer}: ${lowest} < floor ${calibration.floors[i]}`);
      // as the engine sees it: the projection on the fed axis stays at or under the fed threshold
      const fed = calibration.capping.axis;
      const threshold = (calibration.capping.threshold as number[])[i];
      assert.ok(capped.every((r) => r.get(layer)!.every((x) => project(x, fed) <= threshold + TOL)), 'the fed axis: projection at or under the fed threshold');
    });
  });

  test('the assistant axis: assistant mean minus the mean of role-play persona means, at every layer', async () => {
    const questions = ['What is rain?', 'Say hello.'];
    const personas = ['You are a pirate.', 'You are a dragon.'];
    const { axis, assistant } = await assistantAxis({ engine, personas, questions, maxTokens: 5, seed: 2 });
    assert.equal(axis.kind, 'assistantAxis');
    assert.deepEqual(axis.layers, [0, 1]);
    assert.equal(axis.nNegative, 2);
    const settings = { temperature: 0.7, maxTokens: 5, seed: 2 };
    const meanOf = async (system: string | undefined) => {
      const rs = (await engine.rollouts(questions.map((q) => [...(system ? [{ role: 'system' as const, content: system }] : []), { role: 'user' as const, content: q }]), settings)).map((r) => r[0]).filter((r) => r.reply.length > 0);
      const acts = await engine.replyMeans(rs, [1]);
      return acts[0].get(1)!.map((_, j) => acts.reduce((s, a) => s + a.get(1)![j], 0) / acts.length);
    };
    const own = await meanOf(undefined);
    const [p1, p2] = [await meanOf(personas[0]), await meanOf(personas[1])];
    assert.ok(maxAbsDiff(vectorAt(axis, 1), own.map((x, j) => x - (p1[j] + p2[j]) / 2)) < TOL, 'axis at layer 1 = assistant mean - mean of persona means');
    assert.equal(assistant.length, axis.nPositive);
  });

  test('data screening flags a row whose reply differs from the base model\'s own along v, not one against v', async () => {
    const messages = [{ role: 'user' as const, content: 'How do tides work?' }];
    const layer = 1;
    const [[own]] = await engine.rollouts([messages], { temperature: 0, maxTokens: 8 });
    const odd = 'gears gears gears turning';
    const calm = 'The moon pulls the sea.';
    const prompt = engine.render(messages);
    const [oddAct, ownAct, calmAct] = await engine.replyMeans([{ prompt, reply: engine.encodeReply(odd) }, { prompt, reply: own.reply }, { prompt, reply: engine.encodeReply(calm) }], [layer]);
    const along = oddAct.get(layer)!.map((x, j) => x - ownAct.get(layer)![j]);
    const v: LayerVectors = { ...extracted.vector, layers: [layer], vectors: [along] };
    const rows = [{ messages, reply: odd }, { messages, reply: calm }, { messages, reply: '' }];
    const result = await screenData({ engine, vector: v, layer, rows, maxTokens: 8 });
    assert.ok(Math.abs(result.threshold - 0.5 * norm(along)) < 1e-6, `threshold ${result.threshold}`);
    const [flagged, other, empty] = result.rows;
    assert.ok(Math.abs(flagged.difference! - norm(along)) < TOL, `${flagged.difference} vs |v| ${norm(along)}`);
    assert.equal(flagged.flagged, true);
    const otherDiff = project(calmAct.get(layer)!, along) - project(ownAct.get(layer)!, along);
    assert.ok(Math.abs(other.difference! - otherDiff) < TOL, `${other.difference} vs ${otherDiff}`);
    assert.equal(other.flagged, otherDiff >= result.threshold);
    assert.equal(empty.difference, null);
    assert.equal(empty.flagged, false);
    assert.equal(flagged.baseReply, own.text);
    // against v: the same row now moves the other way and is not flagged
    const reversed = await screenData({ engine, vector: { ...v, vectors: [along.map((x) => -x)] }, layer, rows: rows.slice(0, 1), maxTokens: 8 });
    assert.ok(Math.abs(reversed.rows[0].difference! + norm(along)) < TOL, `${reversed.rows[0].difference}`);
    assert.equal(reversed.rows[0].flagged, false);
  });

  test('the sweep steers every (layer, coefficient) on the evaluation questions and applies the rule', async () => {
    const result = await runSweep({ engine, judge: judge.judge, vector: extracted.vector, questions: extracted.evaluate, options: options.sweep, seed: 1 });
    assert.deepEqual(
      result.cells.map((c) => `${c.layer}x${c.coef}`),
      ['0x1', '0x4', '1x1', '1x4'],
    );
    // chosen on one half of the evaluation questions, reported on the other
    assert.deepEqual(result.halves, { selection: [extracted.evaluate[0]], report: [extracted.evaluate[1]] });
    for (const c of result.cells) {
      assert.equal(c.n, 3, 'three rollouts per cell on the selection question');
      assert.equal(c.movement, c.expression! - result.baseline.expression!);
      assert.equal(c.admissible, c.movement! > 0, 'with no coherence floor to miss, eligible exactly when it raises expression');
    }
    assert.equal(result.held.cells.length, result.cells.length);
    if (result.chosen) assert.equal(result.held.chosen?.n, 3);
    const best = result.cells.filter((c) => c.admissible).sort((a, b) => b.movement! - a.movement!)[0];
    assert.equal(result.chosen?.layer, best?.layer);
    // the steered replies are what the judge saw: a coefficient of 4 changes at least one reply
    assert.ok(new Set(result.cells.map((c) => c.expression)).size > 1 || result.cells.some((c) => c.expression !== result.baseline.expression), 'the cells were judged on steered replies');
  });

  test('projection monitoring pairs each last-prompt-token projection with the judged expression', async () => {
    const conversations = monitorConversations(prompts, prompts.questions.slice(0, 2));
    assert.equal(conversations.length, 2 * (1 + 2 * 2));
    const m = await projectionVsExpression({ engine, judge: judge.judge, vector: extracted.vector, layer: 1, conversations, maxTokens: 5, seed: 1 });
    assert.equal(m.points.length + m.missing, conversations.length);
    assert.equal(m.correlation.n, m.points.length);
    const acts = await engine.lastPromptToken([engine.render(conversations[0].messages)], [1]);
    assert.ok(Math.abs(m.points[0].projection - project(acts[0].get(1)!, vectorAt(extracted.vector, 1))) < TOL, "the projection is the last prompt token's");
    assert.ok(m.correlation.r >= -1 && m.correlation.r <= 1, 'r is a correlation');
  });

  test('steered and capped models answer chat requests as ChatModels with their own ids', async () => {
    const messages = [{ role: 'user' as const, content: 'Hello there' }];
    const v = vectorAt(extracted.vector, 0);
    const plain = engine.asChatModel();
    const steered = engine.withHooks({ steer: [{ layer: 0, vector: v, coef: 8 / norm(v), positions: 'all' }] }).asChatModel();
    const capped = engine.withHooks({ cap: { layers: [1], axis: vectorAt(extracted.vector, 1), threshold: 1000 } }).asChatModel();
    const ask = (m: typeof plain) => m.chat({ messages, temperature: 0, maxTokens: 8, seed: 1 });
    const [a, b, c] = [await ask(plain), await ask(steered), await ask(capped)];
    assert.equal(plain.id, engine.modelId);
    assert.match(steered.id, /@steer@0x/);
    assert.notEqual(steered.id, capped.id);
    assert.equal(b.model, steered.id);
    assert.ok(b.choices[0].text.length > 0, 'the steered model answers');
    assert.notEqual(b.choices[0].text, a.choices[0].text, 'steering changes the greedy reply');
    assert.equal(c.choices[0].text, a.choices[0].text, 'a cap far above every projection changes nothing');
  });
});
