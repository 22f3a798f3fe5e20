/**
 * ggml tensor types and their dequantization to float32, bit for bit as ggml's reference
 * `dequantize_row_*` (ggml-quants.c): the block layouts below are llama.cpp's. The engine computes in
 * float32, so a quantized GGUF is expanded once at load time.
 */
import { f16BitsToF32 } from './dtype.js';

/** ggml type ids (ggml.h) the engine reads. */
export const GGML_TYPES = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 8, Q4_K: 12, Q5_K: 13, Q6_K: 14, BF16: 30 } as const;
export type GgmlTypeName = keyof typeof GGML_TYPES;

/** Values per block and bytes per block of each type. */
export const GGML_BLOCKS: Record<GgmlTypeName, { values: number; bytes: number }> = {
  F32: { values: 1, bytes: 4 },
  F16: { values: 1, bytes: 2 },
  BF16: { values: 1, bytes: 2 },
  Q4_0: { values: 32, bytes: 18 }, // f16 d, 16 bytes of nibbles
  Q4_1: { values: 32, bytes: 20 }, // f16 d, f16 m, 16 bytes of nibbles
  Q8_0: { values: 32, bytes: 34 }, // f16 d, 32 int8
  Q4_K: { values: 256, bytes: 144 }, // f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
  Q5_K: { values: 256, bytes: 176 }, // as Q4_K plus 32 bytes of fifth bits
  Q6_K: { values: 256, bytes: 210 }, // 128 bytes low nibbles, 64 bytes high 2 bits, 16 int8 scales, f16 d
};

const NAMES = new Map<number, GgmlTypeName>(Object.entries(GGML_TYPES).map(([name, id]) => [id, name as GgmlTypeName]));

/** The type's name for a ggml type id, or null when the engine cannot read it. */
export function ggmlTypeName(id: number): GgmlTypeName | null {
  return NAMES.get(id) ?? null;
}

/** Bytes `n` values of a type take (n must be a whole number of blocks). */
export function ggmlBytes(type: GgmlTypeName, n: number): number {
  const b = GGML_BLOCKS[type];
  if (n % b.values !== 0) throw new Error(`${n} values are not whole ${type} blocks of ${b.values}`);
  return (n / b.values) * b.bytes;
}

/** The 6-bit scale and min of sub-block j from Q4_K/Q5_K's packed 12 scale bytes (get_scale_min_k4). */
function scaleMinK4(j: number, q: Uint8Array, at: number): [number, number] {
  if (j < 4) return [q[at + j] & 63, q[at + j + 4] & 63];
  return [(q[at + j + 4] & 0xf) | ((q[at + j - 4] >> 6) << 4), (q[at + j + 4] >> 4) | ((q[at + j] >> 6) << 4)];
}

/** Dequantizes `n` values of `type` stored in `bytes` (little-endian) into float32. */
export function dequantize(type: GgmlTypeName, bytes: Uint8Array, n: number): Float32Array {
  const need = ggmlBytes(type, n);
  if (bytes.length < need) throw new Error(`${type}: ${n} values need ${need} bytes, got ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const f16 = (at: number) => f16BitsToF32(view.getUint16(at, true));
  const y = new Float32Array(n);
  const { values: QK, bytes: size } = GGML_BLOCKS[type];
  switch (type) {
    case 'F32':
      for (let i = 0; i < n; i++) y[i] = view.getFloat32(4 * i, true);
      return y;
    case 'F16':
      for (let i = 0; i < n; i++) y[i] = f16(2 * i);
      return y;
    case 'BF16': {
      const u32 = new Uint32Array(y.buffer);
      for (let i = 0; i < n; i++) u32[i] = view.getUint16(2 * i, true) << 16;
      return y;
    }
  }
  for (let b = 0, o = 0; o < n; b += size, o += QK) {
    switch (type) {
      case 'Q4_0': {
        const d = f16(b);
        for (let j = 0; j < 16; j++) {
          const q = bytes[b + 2 + j];
          y[o + j] = ((q & 0xf) - 8) * d;
          y[o + j + 16] = ((q >> 4) - 8) * d;
        }
        break;
      }
      case 'Q4_1': {
        const d = f16(b);
        const m = f16(b + 2);
        for (let j = 0; j < 16; j++) {
          const q = bytes[b + 4 + j];
          y[o + j] = (q & 0xf) * d + m;
          y[o + j + 16] = (q >> 4) * d + m;
        }
        break;
      }
      case 'Q8_0': {
        const d = f16(b);
        for (let j = 0; j < 32; j++) y[o + j] = view.getInt8(b + 2 + j) * d;
        break;
      }
      case 'Q4_K':
      case 'Q5_K': {
        const d = f16(b);
        const dmin = f16(b + 2);
        const scales = b + 4;
        const qh = b + 16; // Q5_K only
        let ql = type === 'Q4_K' ? b + 16 : b + 48;
        let out = o;
        for (let j = 0, is = 0, u1 = 1, u2 = 2; j < 256; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
          const [sc1, m1] = scaleMinK4(is, bytes, scales);
          const [sc2, m2] = scaleMinK4(is + 1, bytes, scales);
          const d1 = d * sc1;
          const d2 = d * sc2;
          const min1 = dmin * m1;
          const min2 = dmin * m2;
          for (let l = 0; l < 32; l++) {
            const hi1 = type === 'Q5_K' && bytes[qh + l] & u1 ? 16 : 0;
            y[out + l] = d1 * ((bytes[ql + l] & 0xf) + hi1) - min1;
          }
          for (let l = 0; l < 32; l++) {
            const hi2 = type === 'Q5_K' && bytes[qh + l] & u2 ? 16 : 0;
            y[out + 32 + l] = d2 * ((bytes[ql + l] >> 4) + hi2) - min2;
          }
          out += 64;
        }
        break;
      }
      case 'Q6_K': {
        const d = f16(b + 208);
        let ql = b;
        let qh = b + 128;
        let sc = b + 192;
        for (let half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8) {
          const out = o + half * 128;
          for (let l = 0; l < 32; l++) {
            const is = l >> 4;
            const h = bytes[qh + l];
            const q1 = ((bytes[ql + l] & 0xf) | ((h & 3) << 4)) - 32;
            const q2 = ((bytes[ql + l + 32] & 0xf) | (((h >> 2) & 3) << 4)) - 32;
            const q3 = ((bytes[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
            const q4 = ((bytes[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
            y[out + l] = d * view.getInt8(sc + is) * q1;
            y[out + l + 32] = d * view.getInt8(sc + is + 2) * q2;
            y[out + l + 64] = d * view.getInt8(sc + is + 4) * q3;
            y[out + l + 96] = d * view.getInt8(sc + is + 6) * q4;
          }
        }
        break;
      }
    }
  }
  return y;
}
