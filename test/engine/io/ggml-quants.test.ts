/**
 * ggml dequantization against llama.cpp's Python reference (gguf-py; scripts/fixtures/make_quant_reference.py):
 * the same bytes give the same floats, and quantize -> dequantize round trips stay within half a step.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { GGML_BLOCKS, type GgmlTypeName, dequantize, ggmlBytes } from '../../../src/engine/io/ggml-quants.js';

const reference = JSON.parse(readFileSync('test/fixtures/quants/reference.json', 'utf8')) as Record<string, { input?: number[]; bytes: string; values: number[] }>;

describe('ggml dequantization', () => {
  for (const [name, ref] of Object.entries(reference)) {
    const type = name as GgmlTypeName;
    test(`${type}: equals llama.cpp's reference dequantization`, () => {
      const bytes = new Uint8Array(Buffer.from(ref.bytes, 'base64'));
      assert.equal(bytes.length, ggmlBytes(type, ref.values.length));
      const ours = dequantize(type, bytes, ref.values.length);
      let worst = 0;
      ours.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - ref.values[i]) / Math.max(1e-6, Math.abs(ref.values[i])))));
      // gguf-py computes some products in float64 before rounding; ggml and this code in float32 (one ulp apart at most)
      assert.ok(worst < 1e-6, `${type}: worst relative difference ${worst}`);
    });
    if (ref.input) {
      test(`${type}: quantize -> dequantize stays within half a quantization step`, () => {
        const x = ref.input!;
        const y = dequantize(type, new Uint8Array(Buffer.from(ref.bytes, 'base64')), x.length);
        const QK = GGML_BLOCKS[type].values;
        for (let b = 0; b < x.length; b += QK) {
          const block = x.slice(b, b + QK);
          const amax = Math.max(...block.map(Math.abs));
          const range = Math.max(...block) - Math.min(...block);
          // Q4_0 spans [-8d, 7d] with d = amax/8; Q4_1 spans [min, max] in 15 steps; Q8_0 d = amax/127
          const step = type === 'Q4_0' ? amax / 8 : type === 'Q4_1' ? range / 15 : type === 'Q8_0' ? amax / 127 : Math.abs(amax) * 2 ** -7;
          for (let i = 0; i < QK; i++) assert.ok(Math.abs(y[b + i] - block[i]) <= step / 2 + 1e-3 * step + 1e-7, `${type}[${b + i}]: ${block[i]} -> ${y[b + i]} (step ${step})`);
        }
      });
    }
  }

  test('rejects a byte count that is not whole blocks', () => {
    assert.throws(() => ggmlBytes('Q4_K', 100), /not whole Q4_K blocks/);
    assert.throws(() => dequantize('Q8_0', new Uint8Array(10), 32), /need 34 bytes/);
  });
});
