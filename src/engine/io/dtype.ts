/** Element types of checkpoint files and their conversion to and from float32 (host is little-endian). */

/** safetensors dtype names and their sizes in bytes. */
export const DTYPE_SIZES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
} as const;
export type Dtype = keyof typeof DTYPE_SIZES;
/** The float dtypes the writers produce. */
export type FloatDtype = 'F32' | 'F16' | 'BF16';

export function isDtype(name: string): name is Dtype {
  return Object.hasOwn(DTYPE_SIZES, name);
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** IEEE half bits of a float32, rounding to nearest even; overflow goes to infinity. */
export function f32ToF16Bits(value: number): number {
  scratchF32[0] = value;
  const x = scratchU32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return sign | half;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

let f16Table: Float32Array | undefined;
function f16ToF32Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
  }
  return f16Table;
}

/** bfloat16 bits of a float32, rounding to nearest even; NaN stays a (quiet) NaN. */
export function f32ToBf16Bits(value: number): number {
  scratchF32[0] = value;
  const x = scratchU32[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * Converts raw little-endian bytes of `dtype` to float32. `bytes` must own an aligned buffer region
 * (offset a multiple of the element size), as the readers guarantee; F32 input is returned as a view.
 */
export function toFloat32(bytes: Uint8Array, dtype: Dtype): Float32Array {
  const n = bytes.byteLength / DTYPE_SIZES[dtype];
  const { buffer, byteOffset } = bytes;
  switch (dtype) {
    case 'F32':
      return new Float32Array(buffer, byteOffset, n);
    case 'BF16': {
      const src = new Uint16Array(buffer, byteOffset, n);
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = src[i] << 16;
      return out;
    }
    case 'F16': {
      const src = new Uint16Array(buffer, byteOffset, n);
      const table = f16ToF32Table();
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[src[i]];
      return out;
    }
    case 'F64':
      return Float32Array.from(new Float64Array(buffer, byteOffset, n));
    case 'I64':
      return Float32Array.from(new BigInt64Array(buffer, byteOffset, n), Number);
    case 'U64':
      return Float32Array.from(new BigUint64Array(buffer, byteOffset, n), Number);
    case 'I32':
      return Float32Array.from(new Int32Array(buffer, byteOffset, n));
    case 'U32':
      return Float32Array.from(new Uint32Array(buffer, byteOffset, n));
    case 'I16':
      return Float32Array.from(new Int16Array(buffer, byteOffset, n));
    case 'U16':
      return Float32Array.from(new Uint16Array(buffer, byteOffset, n));
    case 'I8':
      return Float32Array.from(new Int8Array(buffer, byteOffset, n));
    case 'U8':
    case 'BOOL':
      return Float32Array.from(new Uint8Array(buffer, byteOffset, n));
    case 'F8_E4M3':
    case 'F8_E5M2':
      throw new Error(`conversion of ${dtype} to float32 is not supported`);
  }
}

/** Encodes float32 values as little-endian bytes of a float dtype. */
export function fromFloat32(values: Float32Array, dtype: FloatDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint16Array(values.length);
  const encode = dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < values.length; i++) out[i] = encode(values[i]);
  return new Uint8Array(out.buffer);
}
