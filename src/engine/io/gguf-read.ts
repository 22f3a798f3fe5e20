/**
 * GGUF reader: the header (metadata key/values and tensor infos) parsed once, tensor data read lazily
 * from the file by offset and dequantized to float32 (./ggml-quants.ts). Layout as the writer
 * (./gguf.ts) documents it; versions 2 and 3 (64-bit counts) are read.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { InputError } from '../../core/errors.js';
import { type GgmlTypeName, dequantize, ggmlBytes, ggmlTypeName } from './ggml-quants.js';

/** GGUF metadata value types (gguf.h). */
export const GGUF_VALUE_TYPE = { UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12 } as const;

export type GgufMetaValue = number | bigint | boolean | string | GgufMetaValue[];

export interface GgufTensorInfo {
  name: string;
  /** Shape outermost first (as PyTorch writes it; GGUF stores it innermost first). */
  shape: number[];
  type: GgmlTypeName;
  /** Absolute byte offset of the data in the file. */
  offset: number;
  bytes: number;
}

const DEFAULT_ALIGNMENT = 32;

/** The shortest decimal that is the same float32 (1e-6, not 9.999999974752427e-7): what the converter was given. */
function shortestDecimal(v: number): number {
  if (!Number.isFinite(v) || v === 0) return v;
  for (let digits = 1; digits < 9; digits++) {
    const d = Number(v.toPrecision(digits));
    if (Math.fround(d) === v) return d;
  }
  return v;
}

/** Sequential little-endian reads over a growing window of the file. */
class Cursor {
  private buf = Buffer.alloc(0);
  private start = 0; // file offset of buf[0]
  pos = 0; // file offset

  constructor(
    private readonly fd: number,
    private readonly size: number,
    private readonly path: string,
  ) {}

  private need(n: number): number {
    if (this.pos + n > this.size) throw new InputError(this.path, '', `a complete GGUF file (header ends early at byte ${this.pos})`);
    if (this.pos + n > this.start + this.buf.length) {
      const chunk = Buffer.alloc(Math.max(n, 1 << 20));
      const got = readSync(this.fd, chunk, 0, chunk.length, this.pos);
      this.buf = chunk.subarray(0, got);
      this.start = this.pos;
    }
    const at = this.pos - this.start;
    this.pos += n;
    return at;
  }
  private read<T>(n: number, f: (b: Buffer, at: number) => T): T {
    const at = this.need(n);
    return f(this.buf, at);
  }
  u8 = () => this.read(1, (b, at) => b.readUInt8(at));
  i8 = () => this.read(1, (b, at) => b.readInt8(at));
  u16 = () => this.read(2, (b, at) => b.readUInt16LE(at));
  i16 = () => this.read(2, (b, at) => b.readInt16LE(at));
  u32 = () => this.read(4, (b, at) => b.readUInt32LE(at));
  i32 = () => this.read(4, (b, at) => b.readInt32LE(at));
  f32 = () => this.read(4, (b, at) => b.readFloatLE(at));
  f64 = () => this.read(8, (b, at) => b.readDoubleLE(at));
  u64 = () => this.read(8, (b, at) => b.readBigUInt64LE(at));
  i64 = () => this.read(8, (b, at) => b.readBigInt64LE(at));
  /** A u64 count or offset that must fit a JS number. */
  count(): number {
    const v = this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new InputError(this.path, '', `a GGUF file (count ${v} at byte ${this.pos - 8} is implausible)`);
    return Number(v);
  }
  str(): string {
    const n = this.count();
    return this.read(n, (b, at) => b.toString('utf8', at, at + n));
  }
}

export class GgufFile {
  private constructor(
    readonly path: string,
    private fd: number | null,
    readonly version: number,
    readonly metadata: ReadonlyMap<string, GgufMetaValue>,
    readonly tensors: ReadonlyMap<string, GgufTensorInfo>,
  ) {}

  static open(path: string): GgufFile {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      throw new InputError(path, '', `a readable GGUF file (${(error as Error).message})`);
    }
    try {
      const size = fstatSync(fd).size;
      const c = new Cursor(fd, size, path);
      if (size < 4 || c.u32() !== 0x46554747) throw new InputError(path, '', 'a GGUF file (no "GGUF" magic at its start)');
      const version = c.u32();
      if (version !== 2 && version !== 3) throw new InputError(path, 'version', `GGUF version 2 or 3 (found ${version})`);
      const tensorCount = c.count();
      const kvCount = c.count();
      const metadata = new Map<string, GgufMetaValue>();
      const value = (type: number): GgufMetaValue => {
        switch (type) {
          case GGUF_VALUE_TYPE.UINT8: return c.u8();
          case GGUF_VALUE_TYPE.INT8: return c.i8();
          case GGUF_VALUE_TYPE.UINT16: return c.u16();
          case GGUF_VALUE_TYPE.INT16: return c.i16();
          case GGUF_VALUE_TYPE.UINT32: return c.u32();
          case GGUF_VALUE_TYPE.INT32: return c.i32();
          case GGUF_VALUE_TYPE.FLOAT32: return shortestDecimal(c.f32());
          case GGUF_VALUE_TYPE.BOOL: return c.u8() !== 0;
          case GGUF_VALUE_TYPE.STRING: return c.str();
          case GGUF_VALUE_TYPE.UINT64: return c.u64();
          case GGUF_VALUE_TYPE.INT64: return c.i64();
          case GGUF_VALUE_TYPE.FLOAT64: return c.f64();
          case GGUF_VALUE_TYPE.ARRAY: {
            const itemType = c.u32();
            const n = c.count();
            const items: GgufMetaValue[] = new Array(n);
            for (let i = 0; i < n; i++) items[i] = value(itemType);
            return items;
          }
          default:
            throw new InputError(path, '', `a GGUF metadata value type 0..12 (found ${type} at byte ${c.pos - 4})`);
        }
      };
      for (let i = 0; i < kvCount; i++) {
        const key = c.str();
        metadata.set(key, value(c.u32()));
      }
      const infos: Omit<GgufTensorInfo, 'offset' | 'bytes'>[] = [];
      const offsets: number[] = [];
      for (let i = 0; i < tensorCount; i++) {
        const name = c.str();
        const dims = c.u32();
        const shape = Array.from({ length: dims }, () => c.count()).reverse();
        const typeId = c.u32();
        const type = ggmlTypeName(typeId);
        if (!type) throw new InputError(path, `tensor ${name}`, `a tensor type the engine reads (F32, F16, BF16, Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K; found ggml type ${typeId})`);
        infos.push({ name, shape, type });
        offsets.push(c.count());
      }
      const alignment = Number(metadata.get('general.alignment') ?? DEFAULT_ALIGNMENT);
      const dataStart = Math.ceil(c.pos / alignment) * alignment;
      const tensors = new Map<string, GgufTensorInfo>();
      infos.forEach((info, i) => {
        const n = info.shape.reduce((a, b) => a * b, 1);
        const bytes = ggmlBytes(info.type, n);
        const offset = dataStart + offsets[i];
        if (offset + bytes > size) throw new InputError(path, `tensor ${info.name}`, `data inside the file (ends at byte ${offset + bytes} of ${size})`);
        tensors.set(info.name, { ...info, offset, bytes });
      });
      return new GgufFile(path, fd, version, metadata, tensors);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /** A metadata value, or undefined. */
  get(key: string): GgufMetaValue | undefined {
    return this.metadata.get(key);
  }

  /** The raw bytes of a tensor as stored. */
  readBytes(name: string): Uint8Array {
    const info = this.tensors.get(name);
    if (!info) throw new Error(`${this.path}: no tensor ${name}`);
    if (this.fd === null) throw new Error(`${this.path}: read after close`);
    const out = new Uint8Array(info.bytes);
    let done = 0;
    while (done < info.bytes) done += readSync(this.fd, out, done, info.bytes - done, info.offset + done);
    return out;
  }

  /** A tensor dequantized to float32, row-major in `info.shape`. */
  readFloat32(name: string): Float32Array {
    const info = this.tensors.get(name)!;
    const bytes = this.readBytes(name);
    return dequantize(info.type, bytes, info.shape.reduce((a, b) => a * b, 1));
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
