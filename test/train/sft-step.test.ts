/**
 * One LoRA SFT step against PyTorch (scripts/fixtures/train_sft_reference.py): the loss and every
 * LoRA gradient of a tiny random Llama, plain and with preventative steering; and packing: two
 * sequences packed in one row give the same loss and gradients as the two in separate rows.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Graph } from '../../src/engine/graph/index.js';
import { hookNames } from '../../src/engine/hooks/index.js';
import { loadModelConfig } from '../../src/engine/io/index.js';
import { SafetensorsFile } from '../../src/engine/io/safetensors.js';
import { type Feed, Session, floats } from '../../src/engine/runtime/index.js';
import { makeBatch } from '../../src/train/data.js';
import { type CheckpointMode, type TrainGraph, batchFeeds, buildTrainGraph, dropoutMaskName, int8Names, int8Weights, segmentAttentionBias } from '../../src/train/graph.js';

const dir = new URL('../fixtures/train/sft-step/', import.meta.url).pathname;
const ref = JSON.parse(readFileSync(`${dir}reference.json`, 'utf8')) as {
  rank: number;
  alpha: number;
  ids: number[][];
  positions: number[][];
  segments: number[][];
  targets: number[][];
  weights: number[][];
  steer: { layer: number; coef: number; vector: number[] };
  cases: { name: string; loss: number; grads: Record<string, number[]> }[];
};
const config = loadModelConfig(dir);
const rep = config.numHeads / config.numKvHeads;

function readAll(file: string): Map<string, Float32Array> {
  const f = SafetensorsFile.open(file);
  try {
    return new Map(f.names().map((n) => [n, f.readFloat32(n)]));
  } finally {
    f.close();
  }
}
const weights = readAll(`${dir}model.safetensors`);
const adapter = readAll(`${dir}adapter_model.safetensors`);
const lora = { rank: ref.rank, alpha: ref.alpha, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const };

async function open(steered: boolean, checkpointing: CheckpointMode): Promise<{ tg: TrainGraph; session: Session; params: Record<string, Feed> }> {
  const g = new Graph(steered ? 'sft-steered' : 'sft');
  const tg = buildTrainGraph(g, { config, lora, objective: 'sft', checkpointing, steering: steered ? { layer: ref.steer.layer, positions: 'all' } : undefined });
  const session = await Session.create(g, { weights, threads: 1 });
  const params: Record<string, Feed> = { lora_scale_0: { data: new Float32Array([ref.alpha / ref.rank]), dims: [] } };
  for (const t of tg.trainables) params[t.name] = { data: adapter.get(`base_model.model.${t.module}.lora_${t.factor}.weight`)!, dims: t.shape };
  return { tg, session, params };
}

function close(actual: Float32Array, expected: number[], what: string): void {
  let scale = 0;
  for (const x of expected) scale = Math.max(scale, Math.abs(x));
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= 1e-5 + 1e-4 * scale, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

describe('one LoRA SFT step matches PyTorch', () => {
  const B = ref.ids.length;
  const T = ref.ids[0].length;
  const batchInputs = (): Record<string, Feed> => {
    const segments = BigInt64Array.from(ref.segments.flat(), BigInt);
    return {
      input_ids: { data: BigInt64Array.from(ref.ids.flat(), BigInt), dims: [B, T] },
      position_ids: { data: BigInt64Array.from(ref.positions.flat(), BigInt), dims: [B, T] },
      attention_bias: { data: segmentAttentionBias(segments, B, T, rep), dims: [B, 1, rep * T, T] },
      targets: { data: BigInt64Array.from(ref.targets.flat(), BigInt), dims: [B, T] },
      weights: { data: Float32Array.from(ref.weights.flat()), dims: [B, T] },
    };
  };
  const count = ref.weights.flat().reduce((a, b) => a + b, 0);

  for (const c of ref.cases) {
    for (const checkpointing of ['attention', 'layers', 'off'] as const) {
    it(`${c.name}: loss and all ${Object.keys(c.grads).length} LoRA gradients (checkpointing ${checkpointing})`, async () => {
      const steered = c.name === 'steered';
      const { tg, session, params } = await open(steered, checkpointing);
      try {
        const feeds: Record<string, Feed> = { ...params, ...batchInputs() };
        if (steered) {
          feeds[hookNames.steerVector(ref.steer.layer)] = { data: Float32Array.from(ref.steer.vector, (x) => x * ref.steer.coef), dims: [config.hiddenSize] };
          feeds[hookNames.steerMask(ref.steer.layer)] = { data: new Float32Array(B * T).fill(1), dims: [B, T] };
        }
        const out = await session.run(feeds);
        const headPasses = session.compiled.model.graph!.node!.filter((n) => n.opType === 'LogSoftmax').length;
        assert.equal(headPasses, 8, 'the loss head (8 row chunks) runs once: checkpointing must not recompute it');
        assert.ok(Math.abs(floats(out.loss)[0] / count - c.loss) < 1e-5, `loss ${floats(out.loss)[0] / count} vs ${c.loss}`);
        for (const t of tg.trainables) {
          const g = floats(out[`grad.${t.name}`]).map((x) => x / count);
          close(g, c.grads[`${t.module}.lora_${t.factor}`], `${t.module}.lora_${t.factor}`);
        }
      } finally {
        await session.release();
      }
    });
    }
  }
});

describe('int8 base weights', () => {
  it('int8Weights: each copy dequantizes to within half a step of the weight, per its own channel', () => {
    const q = int8Weights(weights, config);
    const module = 'model.layers.1.mlp.down_proj';
    const w = weights.get(`${module}.weight`)!;
    const [N, K] = [config.hiddenSize, config.intermediateSize];
    const n = int8Names(module);
    const [wT, scaleOut, wq, scaleIn] = [q.get(n.wT)!, q.get(n.scaleOut)!, q.get(n.w)!, q.get(n.scaleIn)!];
    assert.ok(!q.has(`${module}.weight`) && wT instanceof Int8Array && wq instanceof Int8Array);
    for (let o = 0; o < N; o++) {
      for (let i = 0; i < K; i++) {
        assert.ok(Math.abs(wT[i * N + o] * scaleOut[o] - w[o * K + i]) <= scaleOut[o] / 2 + 1e-9);
        assert.ok(Math.abs(wq[o * K + i] * scaleIn[i] - w[o * K + i]) <= scaleIn[i] / 2 + 1e-9);
      }
    }
  });

  it('an SFT step on an int8 base: loss within 0.5% and every LoRA gradient within cosine 0.99 of the float32 PyTorch step', async () => {
    const g = new Graph('sft-int8');
    const tg = buildTrainGraph(g, { config, lora, objective: 'sft', baseWeights: 'int8' });
    const session = await Session.create(g, { weights: int8Weights(weights, config), threads: 1 });
    const B = ref.ids.length;
    const T = ref.ids[0].length;
    try {
      const feeds: Record<string, Feed> = { lora_scale_0: { data: new Float32Array([ref.alpha / ref.rank]), dims: [] } };
      for (const t of tg.trainables) feeds[t.name] = { data: adapter.get(`base_model.model.${t.module}.lora_${t.factor}.weight`)!, dims: t.shape };
      Object.assign(feeds, {
        input_ids: { data: BigInt64Array.from(ref.ids.flat(), BigInt), dims: [B, T] },
        position_ids: { data: BigInt64Array.from(ref.positions.flat(), BigInt), dims: [B, T] },
        attention_bias: { data: segmentAttentionBias(BigInt64Array.from(ref.segments.flat(), BigInt), B, T, rep), dims: [B, 1, rep * T, T] },
        targets: { data: BigInt64Array.from(ref.targets.flat(), BigInt), dims: [B, T] },
        weights: { data: Float32Array.from(ref.weights.flat()), dims: [B, T] },
      });
      const out = await session.run(feeds);
      const count = ref.weights.flat().reduce((a, b) => a + b, 0);
      const expected = ref.cases[0];
      const loss = floats(out.loss)[0] / count;
      assert.ok(Math.abs(loss - expected.loss) < 0.005 * expected.loss, `loss ${loss} vs ${expected.loss}`);
      let largestError = 0;
      for (const t of tg.trainables) {
        const got = floats(out[`grad.${t.name}`]).map((x) => x / count);
        const want = expected.grads[`${t.module}.lora_${t.factor}`];
        let [dot, gg, ww, err] = [0, 0, 0, 0];
        want.forEach((w, i) => {
          dot += w * got[i];
          gg += got[i] ** 2;
          ww += w * w;
          err += (w - got[i]) ** 2;
        });
        assert.ok(dot / Math.sqrt(gg * ww) >= 0.99, `${t.name}: cosine ${dot / Math.sqrt(gg * ww)}`);
        largestError = Math.max(largestError, Math.sqrt(err / ww));
      }
      // the float32 step matches to ~1e-6: a visibly larger error shows int8 really ran
      assert.ok(largestError > 1e-3, `largest relative error ${largestError}`);
    } finally {
      await session.release();
    }
  });
});

describe('LoRA dropout', () => {
  it('masks of ones reproduce the PyTorch step; masks of zeros switch the adapter branch off', async () => {
    const g = new Graph('sft-dropout');
    const tg = buildTrainGraph(g, { config, lora: { ...lora, dropout: 0.5 }, objective: 'sft' });
    const session = await Session.create(g, { weights, threads: 1 });
    try {
      const params: Record<string, Feed> = { lora_scale_0: { data: new Float32Array([ref.alpha / ref.rank]), dims: [] } };
      for (const t of tg.trainables) params[t.name] = { data: adapter.get(`base_model.model.${t.module}.lora_${t.factor}.weight`)!, dims: t.shape };
      const B = ref.ids.length;
      const T = ref.ids[0].length;
      const batch = makeBatch(
        ref.ids.map((ids, b) => [{ ids: ids.slice(0, ref.segments[b].filter((x) => x > 0).length), lossMask: Uint8Array.from([0, ...ref.weights[b].slice(0, -1)]) }]),
        0,
        T,
      );
      const masks = (value: number) =>
        Object.fromEntries(tg.trainables.filter((t) => t.factor === 'A').map((t) => [dropoutMaskName(t.module!), { data: new Float32Array(B * T * t.shape[1]).fill(value), dims: [B, T, t.shape[1]] }]));
      const count = ref.weights.flat().reduce((a, b) => a + b, 0);
      const ones = await session.run({ ...params, ...batchFeeds(batch, rep, null), ...masks(1) });
      assert.ok(Math.abs(floats(ones.loss)[0] / count - ref.cases[0].loss) < 1e-5);
      const zeros = await session.run({ ...params, ...batchFeeds(batch, rep, null), ...masks(0) });
      for (const t of tg.trainables) assert.ok(floats(zeros[`grad.${t.name}`]).every((x) => x === 0), `${t.name} gets no gradient`);
    } finally {
      await session.release();
    }
  });
});

describe('sequence packing', () => {
  let s: Awaited<ReturnType<typeof open>>;
  before(async () => {
    s = await open(false, 'attention');
  });
  after(async () => {
    await s.session.release();
  });

  it('a packed row gives the same loss and gradients as its sequences in separate rows', async () => {
    const a = { ids: [1, 5, 9, 14, 3, 22, 40], lossMask: Uint8Array.from([0, 0, 0, 1, 1, 1, 1]) };
    const b = { ids: [1, 7, 33, 12, 50], lossMask: Uint8Array.from([0, 0, 1, 1, 1]) };
    const run = async (rows: (typeof a)[][]) => {
      const batch = makeBatch(rows, 0);
      const out = await s.session.run({ ...s.params, ...batchFeeds(batch, rep, null) });
      return { loss: floats(out.loss)[0], grads: s.tg.trainables.map((t) => floats(out[`grad.${t.name}`])), batch };
    };
    const packed = await run([[a, b]]);
    const separate = await run([[a], [b]]);
    assert.deepEqual([...packed.batch.positions].map(Number), [0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4]);
    assert.equal(packed.batch.targetTokens, 7);
    assert.ok(Math.abs(packed.loss - separate.loss) < 1e-4 * Math.abs(separate.loss), `${packed.loss} vs ${separate.loss}`);
    packed.grads.forEach((g, i) => close(g, [...separate.grads[i]], s.tg.trainables[i].name));
  });
});
