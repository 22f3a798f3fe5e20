import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { InputError } from '../../../src/core/errors.js';
import { f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../../src/engine/io/dtype.js';
import { SafetensorsFile, SafetensorsModel, writeSafetensors } from '../../../src/engine/io/safetensors.js';

const dir = mkdtempSync(join(tmpdir(), 'safetensors-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A safetensors file built byte by byte: u64 LE header length, header text, data. */
function rawFile(name: string, header: string | object, data: Uint8Array | number[] = []): string {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const json = Buffer.from(text);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([length, json, Buffer.from(data)]));
  return path;
}

const f32le = (...values: number[]) => new Uint8Array(new Float32Array(values).buffer);
const u16le = (...values: number[]) => new Uint8Array(new Uint16Array(values).buffer);

function expectInputError(fn: () => unknown, ...parts: (string | RegExp)[]): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof InputError, `expected InputError, got ${String(error)}`);
    for (const part of parts) {
      if (typeof part === 'string') assert.ok(error.message.includes(part), `"${error.message}" lacks "${part}"`);
      else assert.match(error.message, part);
    }
    return true;
  });
}

describe('safetensors reader', () => {
  test('reads f32, bf16, f16, f64, i64 and u8 tensors from a hand-built file with metadata', () => {
    const data = [
      ...f32le(1.5, -2, 0.25, 3), // a: F32 [2,2] at 0..16
      ...u16le(0x3f80, 0xc040, 0x3eab), // b: BF16 [3] = 1, -3, 0.333984375 at 16..22
      ...u16le(0x3c00, 0x0001, 0x7bff), // c: F16 [3] = 1, 2^-24, 65504 at 22..28
      ...new Uint8Array(new Float64Array([Math.PI]).buffer), // d: F64 [1] at 28..36
      ...new Uint8Array(new BigInt64Array([-7n, 1n << 40n]).buffer), // e: I64 [2] at 36..52
      7, 0, 255, // f: U8 [3] at 52..55
    ];
    const path = rawFile('mixed.safetensors', {
      __metadata__: { format: 'pt' },
      a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] },
      b: { dtype: 'BF16', shape: [3], data_offsets: [16, 22] },
      c: { dtype: 'F16', shape: [3], data_offsets: [22, 28] },
      d: { dtype: 'F64', shape: [1], data_offsets: [28, 36] },
      e: { dtype: 'I64', shape: [2], data_offsets: [36, 52] },
      f: { dtype: 'U8', shape: [3], data_offsets: [52, 55] },
    }, data);
    const file = SafetensorsFile.open(path);
    try {
      assert.deepEqual(file.metadata, { format: 'pt' });
      assert.deepEqual(file.names(), ['a', 'b', 'c', 'd', 'e', 'f']);
      assert.deepEqual(file.info('a').shape, [2, 2]);
      assert.deepEqual([...file.readFloat32('a')], [1.5, -2, 0.25, 3]);
      assert.deepEqual([...file.readFloat32('b')], [1, -3, 0.333984375]);
      assert.deepEqual([...file.readFloat32('c')], [1, 2 ** -24, 65504]);
      assert.deepEqual([...file.readFloat32('d')], [Math.fround(Math.PI)]);
      assert.deepEqual([...file.readFloat32('e')], [-7, 2 ** 40]);
      assert.deepEqual([...file.readFloat32('f')], [7, 0, 255]);
      expectInputError(() => file.readFloat32('zzz'), path, 'zzz');
    } finally {
      file.close();
    }
  });

  test('rejects a file shorter than the 8-byte length', () => {
    const path = join(dir, 'short.safetensors');
    writeFileSync(path, Buffer.from([1, 2, 3]));
    expectInputError(() => SafetensorsFile.open(path), path, 'truncated');
  });

  test('rejects a header length past the end of the file', () => {
    const path = join(dir, 'long-header.safetensors');
    const bytes = Buffer.alloc(20);
    bytes.writeBigUInt64LE(500n);
    writeFileSync(path, bytes);
    expectInputError(() => SafetensorsFile.open(path), path, '500-byte header', 'truncated');
  });

  test('rejects an absurd header length (not a safetensors file)', () => {
    const path = join(dir, 'absurd.safetensors');
    writeFileSync(path, Buffer.from('GGUF\x03\x00\x00\x00 and more bytes'));
    expectInputError(() => SafetensorsFile.open(path), path, 'under 100 MB');
  });

  test('rejects a header that is not JSON, or not an object', () => {
    expectInputError(() => SafetensorsFile.open(rawFile('badjson.safetensors', '{"a": {"dtype": ')), 'badjson.safetensors', 'JSON header');
    expectInputError(() => SafetensorsFile.open(rawFile('array.safetensors', '[1,2]')), 'array.safetensors', 'JSON object');
  });

  test('rejects an unknown dtype, naming the file and the tensor', () => {
    const path = rawFile('dtype.safetensors', { 'model.norm.weight': { dtype: 'F12', shape: [2], data_offsets: [0, 4] } }, [0, 0, 0, 0]);
    expectInputError(() => SafetensorsFile.open(path), path, 'model.norm.weight', '"F12"', 'BF16');
  });

  test('rejects a byte range that does not match shape x dtype size', () => {
    const path = rawFile('size.safetensors', { w: { dtype: 'BF16', shape: [2, 3], data_offsets: [0, 8] } }, new Array(8).fill(0));
    expectInputError(() => SafetensorsFile.open(path), path, 'w', '12 bytes for BF16 [2,3]', 'span 8');
  });

  test('rejects malformed shapes and offsets', () => {
    expectInputError(() => SafetensorsFile.open(rawFile('shape.safetensors', { w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, [0, 0, 0, 0])), 'w', 'shape');
    expectInputError(() => SafetensorsFile.open(rawFile('offs.safetensors', { w: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, [0, 0, 0, 0])), 'w', 'data_offsets');
  });

  test('rejects overlapping tensors', () => {
    const path = rawFile('overlap.safetensors', {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    }, new Array(12).fill(0));
    expectInputError(() => SafetensorsFile.open(path), path, 'b', 'overlap a');
  });

  test('reports a truncated file, naming the tensor that was cut off', () => {
    const header = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] },
    };
    const path = rawFile('cut.safetensors', header, f32le(1, 2, 3, 4, 5, 6).slice(0, 20));
    expectInputError(() => SafetensorsFile.open(path), path, 'b', 'file truncated', '20 bytes present');
  });

  test('reports an offset out of range when the layout has a gap past the end', () => {
    const path = rawFile('range.safetensors', {
      a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      b: { dtype: 'F32', shape: [1], data_offsets: [1000, 1004] },
    }, f32le(1, 2));
    expectInputError(() => SafetensorsFile.open(path), path, 'b', 'offset out of range', '[1000, 1004]');
  });

  test('a tensor read is exactly its own bytes (neighbours untouched)', () => {
    const path = rawFile('two.safetensors', {
      a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      b: { dtype: 'F16', shape: [3], data_offsets: [4, 10] },
      c: { dtype: 'F32', shape: [1], data_offsets: [10, 14] },
    }, [...f32le(9), ...u16le(0x3c00, 0x4000, 0xc200), ...f32le(-9)]);
    const file = SafetensorsFile.open(path);
    try {
      // c starts at an odd offset in the file: the reader copies into an aligned buffer.
      assert.deepEqual([...file.readFloat32('c')], [-9]);
      assert.deepEqual([...file.readFloat32('b')], [1, 2, -3]);
      assert.equal(file.readBytes('b').byteLength, 6);
    } finally {
      file.close();
    }
  });
});

describe('float conversions', () => {
  test('f32 -> f16 rounds to nearest even and handles subnormals, overflow, NaN, -0', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [65520, 0x7c00], // rounds up past the largest half: infinity
      [1e10, 0x7c00],
      [2 ** -24, 0x0001],
      [2 ** -25, 0x0000], // tie to even: zero
      [1.5 * 2 ** -24, 0x0002], // tie to even: 2
      [2 ** -14, 0x0400],
      [1 / 3, 0x3555],
      [1 + 2 ** -11, 0x3c00], // tie, even stays
      [1 + 3 * 2 ** -11, 0x3c02], // tie, odd rounds up
      [-0, 0x8000],
      [Infinity, 0x7c00],
    ];
    for (const [value, bits] of cases) assert.equal(f32ToF16Bits(value), bits, `f16(${value})`);
    assert.ok(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN))));
    for (let h = 0; h < 0x7c00; h += 37) assert.equal(f32ToF16Bits(f16BitsToF32(h)), h);
  });

  test('f32 -> bf16 rounds to nearest even and keeps NaN a NaN', () => {
    assert.equal(f32ToBf16Bits(1), 0x3f80);
    assert.equal(f32ToBf16Bits(1 / 3), 0x3eab);
    assert.equal(f32ToBf16Bits(1 + 2 ** -8), 0x3f80); // tie, even stays
    assert.equal(f32ToBf16Bits(1 + 3 * 2 ** -8), 0x3f82); // tie, odd rounds up
    assert.equal(f32ToBf16Bits(-Infinity), 0xff80);
    assert.equal(f32ToBf16Bits(NaN) & 0x7fc0, 0x7fc0);
  });
});

describe('safetensors writer', () => {
  test('writes F32/F16/BF16 with metadata; the bytes follow the format exactly', () => {
    const path = join(dir, 'written.safetensors');
    writeSafetensors(path, [
      { name: 'x', shape: [2], data: new Float32Array([1, -0.5]) },
      { name: 'y', shape: [1, 2], data: new Float32Array([1 / 3, 2]), dtype: 'F16' },
      { name: 'z', shape: [3], data: new Float32Array([1 / 3, 1, -3]), dtype: 'BF16' },
    ], { format: 'pt' });
    const bytes = readFileSync(path);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    assert.equal(headerLength % 8, 0);
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString());
    assert.deepEqual(header, {
      __metadata__: { format: 'pt' },
      x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      y: { dtype: 'F16', shape: [1, 2], data_offsets: [8, 12] },
      z: { dtype: 'BF16', shape: [3], data_offsets: [12, 18] },
    });
    assert.equal(bytes.length, 8 + headerLength + 18);
    const data = bytes.subarray(8 + headerLength);
    assert.deepEqual([...data.subarray(8, 12)], [0x55, 0x35, 0x00, 0x40]);
    assert.deepEqual([...data.subarray(12, 18)], [0xab, 0x3e, 0x80, 0x3f, 0x40, 0xc0]);

    const file = SafetensorsFile.open(path);
    try {
      assert.deepEqual([...file.readFloat32('x')], [1, -0.5]);
      assert.deepEqual([...file.readFloat32('y')], [f16BitsToF32(0x3555), 2]);
      assert.deepEqual([...file.readFloat32('z')], [0.333984375, 1, -3]);
    } finally {
      file.close();
    }
  });

  test('refuses data that does not fill the shape and leaves no file behind', () => {
    const path = join(dir, 'never.safetensors');
    assert.throws(() => writeSafetensors(path, [{ name: 'w', shape: [3], data: new Float32Array(2) }]), /w has 2 values for shape \[3\]/);
    assert.throws(() => readFileSync(path), /ENOENT/);
  });
});

describe('sharded models', () => {
  test('opens shards through model.safetensors.index.json and reads across them', () => {
    const model = join(dir, 'sharded');
    rmSync(model, { recursive: true, force: true });
    mkdirSync(model);
    writeSafetensors(join(model, 'model-00001-of-00002.safetensors'), [{ name: 'a', shape: [2], data: new Float32Array([1, 2]) }]);
    writeSafetensors(join(model, 'model-00002-of-00002.safetensors'), [{ name: 'b', shape: [1], data: new Float32Array([3]), dtype: 'BF16' }]);
    writeFileSync(join(model, 'model.safetensors.index.json'), JSON.stringify({
      metadata: { total_size: 10 },
      weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' },
    }));
    const weights = SafetensorsModel.open(model);
    try {
      assert.deepEqual(weights.names().sort(), ['a', 'b']);
      assert.deepEqual([...weights.readFloat32('b')], [3]);
      assert.deepEqual(weights.shapes(), new Map([['a', [2]], ['b', [1]]]));
      assert.match(weights.fileOf('b'), /model-00002-of-00002\.safetensors$/);
      expectInputError(() => weights.readFloat32('c'), 'c', 'not found');
    } finally {
      weights.close();
    }

    writeFileSync(join(model, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 'model-00002-of-00002.safetensors' } }));
    expectInputError(() => SafetensorsModel.open(model), 'model-00002-of-00002.safetensors', 'tensor a');
    writeFileSync(join(model, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 'model-00003.safetensors' } }));
    expectInputError(() => SafetensorsModel.open(model), 'model.safetensors.index.json', 'weight_map.a', 'model-00003.safetensors');
  });

  test('a directory without an index reads every *.safetensors file; none at all is an error', () => {
    const model = join(dir, 'single');
    mkdirSync(model, { recursive: true });
    expectInputError(() => SafetensorsModel.open(model), model, 'model.safetensors');
    writeSafetensors(join(model, 'model.safetensors'), [{ name: 'w', shape: [1], data: new Float32Array([5]) }]);
    const weights = SafetensorsModel.open(model);
    assert.deepEqual([...weights.readFloat32('w')], [5]);
    weights.close();
  });
});
