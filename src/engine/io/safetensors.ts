/**
 * safetensors: an 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {k: v}}`, then the tensor bytes
 * (offsets relative to the end of the header). Reading validates the whole header up front and then
 * reads one tensor at a time from the file descriptor, so a model is never held twice in memory.
 */
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { basename, join } from 'node:path';
import { InputError } from '../../core/errors.js';
import { writeFileInPieces } from '../../core/files.js';
import { readStructured } from '../../core/load.js';
import { DTYPE_SIZES, type Dtype, type FloatDtype, fromFloat32, isDtype, toFloat32 } from './dtype.js';

export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
  file: string;
}

/** The safetensors format caps the header at 100 MB; anything bigger is corruption. */
const MAX_HEADER_BYTES = 100_000_000;

/** One open .safetensors file with a validated header. Call close() when done. */
export class SafetensorsFile {
  readonly tensors: Map<string, TensorInfo>;
  readonly metadata: Record<string, string>;
  private fd: number | null;

  private constructor(
    readonly path: string,
    fd: number,
    tensors: Map<string, TensorInfo>,
    metadata: Record<string, string>,
  ) {
    this.fd = fd;
    this.tensors = tensors;
    this.metadata = metadata;
  }

  static open(path: string): SafetensorsFile {
    if (!existsSync(path)) throw new InputError(path, '', 'file not found');
    const fd = openSync(path, 'r');
    try {
      const { tensors, metadata } = readHeader(path, fd);
      return new SafetensorsFile(path, fd, tensors, metadata);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new InputError(this.path, name, `tensor ${name} (not in this file)`);
    return info;
  }

  /** The tensor's bytes as stored, in a fresh 8-byte-aligned buffer. */
  readBytes(name: string): Uint8Array {
    const info = this.info(name);
    if (this.fd === null) throw new Error(`${this.path} is closed`);
    const length = info.end - info.begin;
    const bytes = new Uint8Array(new ArrayBuffer(Math.ceil(length / 8) * 8), 0, length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, bytes, done, length - done, info.begin + done);
      if (n === 0) throw new InputError(this.path, name, `tensor bytes ${info.begin}..${info.end} (file truncated while reading)`);
      done += n;
    }
    return bytes;
  }

  /** The tensor converted to float32 (bf16/f16/f64 and integer types widen or narrow as needed). */
  readFloat32(name: string): Float32Array {
    const info = this.info(name);
    try {
      return toFloat32(this.readBytes(name), info.dtype);
    } catch (error) {
      if (error instanceof InputError) throw error;
      throw new InputError(this.path, name, (error as Error).message);
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

function readHeader(path: string, fd: number): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  const size = fstatSync(fd).size;
  if (size < 8) throw new InputError(path, 'header', `an 8-byte header length (file truncated: ${size} bytes)`);
  const lengthBytes = Buffer.alloc(8);
  readSync(fd, lengthBytes, 0, 8, 0);
  const headerLength = Number(lengthBytes.readBigUInt64LE(0));
  if (headerLength > MAX_HEADER_BYTES) throw new InputError(path, 'header', `a header length under 100 MB (found ${headerLength}: not a safetensors file or corrupted)`);
  if (8 + headerLength > size) {
    throw new InputError(path, 'header', `a ${headerLength}-byte header (file truncated: only ${size - 8} bytes after the length)`);
  }
  const headerBytes = Buffer.alloc(headerLength);
  readSync(fd, headerBytes, 0, headerLength, 8);
  let header: unknown;
  try {
    header = JSON.parse(headerBytes.toString('utf8'));
  } catch (error) {
    throw new InputError(path, 'header', `a JSON header (${(error as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new InputError(path, 'header', 'a JSON object');

  const dataStart = 8 + headerLength;
  const dataSize = size - dataStart;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  const ranges: { name: string; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Object.values(entry).some((v) => typeof v !== 'string')) {
        throw new InputError(path, '__metadata__', 'an object of string values');
      }
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null) throw new InputError(path, name, 'an object {dtype, shape, data_offsets}');
    if (typeof e.dtype !== 'string' || !isDtype(e.dtype)) {
      throw new InputError(path, name, `a dtype among ${Object.keys(DTYPE_SIZES).join(', ')} (found ${JSON.stringify(e.dtype)})`);
    }
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((n) => Number.isSafeInteger(n) && n >= 0)) {
      throw new InputError(path, name, `a shape of non-negative integers (found ${JSON.stringify(shape)})`);
    }
    const offsets = e.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((n) => Number.isSafeInteger(n) && n >= 0) || offsets[0] > offsets[1]) {
      throw new InputError(path, name, `data_offsets [begin, end] with 0 <= begin <= end (found ${JSON.stringify(offsets)})`);
    }
    const [begin, end] = offsets as [number, number];
    const elements = shape.reduce((a: number, b: number) => a * b, 1);
    const expectedBytes = elements * DTYPE_SIZES[e.dtype];
    if (end - begin !== expectedBytes) {
      throw new InputError(path, name, `${expectedBytes} bytes for ${e.dtype} [${shape.join(',')}] (data_offsets [${begin}, ${end}] span ${end - begin})`);
    }
    ranges.push({ name, begin, end });
    tensors.set(name, { name, dtype: e.dtype, shape: shape as number[], begin: dataStart + begin, end: dataStart + end, file: path });
  }

  ranges.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let contiguous = true;
  for (let i = 0; i < ranges.length; i++) {
    const previous = ranges[i - 1];
    const r = ranges[i];
    if (previous && r.begin < previous.end && r.end > r.begin) {
      throw new InputError(path, r.name, `a byte range not overlapping another tensor (data_offsets [${r.begin}, ${r.end}] overlap ${previous.name} [${previous.begin}, ${previous.end}])`);
    }
    if (r.begin !== (previous ? previous.end : 0)) contiguous = false;
  }
  const last = ranges.at(-1);
  if (last && last.end > dataSize) {
    if (contiguous) {
      const cut = ranges.find((r) => r.end > dataSize) ?? last;
      throw new InputError(path, cut.name, `${last.end} bytes of tensor data (file truncated: ${dataSize} bytes present, tensor ${cut.name} cut off)`);
    }
    const bad = ranges.find((r) => r.end > dataSize) ?? last;
    throw new InputError(path, bad.name, `data_offsets inside the ${dataSize}-byte data section (offset out of range: [${bad.begin}, ${bad.end}])`);
  }
  return { tensors, metadata };
}

export interface TensorToWrite {
  name: string;
  shape: number[];
  data: Float32Array;
  /** Stored dtype; F32 unless given. */
  dtype?: FloatDtype;
}

/**
 * Writes a safetensors file atomically (a temporary file renamed into place), converting float32 data
 * to the requested dtype. Header keys are written in the given order and padded with spaces to 8 bytes.
 */
export function writeSafetensors(path: string, tensors: TensorToWrite[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const payloads: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    const dtype = t.dtype ?? 'F32';
    const elements = t.shape.reduce((a, b) => a * b, 1);
    if (elements !== t.data.length) throw new Error(`${path}: tensor ${t.name} has ${t.data.length} values for shape [${t.shape.join(',')}]`);
    if (Object.hasOwn(header, t.name)) throw new Error(`${path}: tensor ${t.name} written twice`);
    const bytes = fromFloat32(t.data, dtype);
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    payloads.push(bytes);
    offset += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  const headerLength = Buffer.byteLength(json);
  json += ' '.repeat((8 - (headerLength % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));

  writeFileInPieces(path, (put) => {
    put(prefix);
    put(Buffer.from(json));
    for (const bytes of payloads) put(bytes);
  });
}

/**
 * A model's weights across one or many safetensors files: `model.safetensors.index.json` when
 * present (its weight_map names each tensor's shard), else every *.safetensors file in the directory.
 */
export class SafetensorsModel {
  private constructor(
    readonly dir: string,
    readonly files: SafetensorsFile[],
    private readonly byName: Map<string, SafetensorsFile>,
  ) {}

  static open(dir: string): SafetensorsModel {
    const indexPath = join(dir, 'model.safetensors.index.json');
    const opened: SafetensorsFile[] = [];
    const byName = new Map<string, SafetensorsFile>();
    try {
      if (existsSync(indexPath)) {
        const index = readStructured(indexPath) as { weight_map?: unknown };
        const map = index?.weight_map;
        if (typeof map !== 'object' || map === null || Object.values(map).some((v) => typeof v !== 'string')) {
          throw new InputError(indexPath, 'weight_map', 'an object mapping tensor names to shard file names');
        }
        const shards = new Map<string, SafetensorsFile>();
        for (const [name, shard] of Object.entries(map as Record<string, string>)) {
          let file = shards.get(shard);
          if (!file) {
            const shardPath = join(dir, shard);
            if (!existsSync(shardPath)) throw new InputError(indexPath, `weight_map.${name}`, `shard ${shard} to exist (missing ${shardPath})`);
            file = SafetensorsFile.open(shardPath);
            shards.set(shard, file);
            opened.push(file);
          }
          if (!file.tensors.has(name)) throw new InputError(file.path, name, `tensor ${name}, which ${basename(indexPath)} places in this shard`);
          byName.set(name, file);
        }
      } else {
        const names = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort() : [];
        if (names.length === 0) throw new InputError(dir, '', 'a model.safetensors file (or model.safetensors.index.json with shards)');
        for (const name of names) {
          const file = SafetensorsFile.open(join(dir, name));
          opened.push(file);
          for (const tensor of file.names()) {
            const other = byName.get(tensor);
            if (other) throw new InputError(file.path, tensor, `tensor ${tensor} in one file only (also in ${other.path})`);
            byName.set(tensor, file);
          }
        }
      }
    } catch (error) {
      for (const file of opened) file.close();
      throw error;
    }
    return new SafetensorsModel(dir, opened, byName);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The file holding a tensor (for error messages). */
  fileOf(name: string): string {
    return this.byName.get(name)?.path ?? this.dir;
  }

  info(name: string): TensorInfo {
    const file = this.byName.get(name);
    if (!file) throw new InputError(this.dir, name, `tensor ${name} in the checkpoint (not found)`);
    return file.info(name);
  }

  /** Every tensor's shape, for checkTensorShapes. */
  shapes(): Map<string, number[]> {
    return new Map([...this.byName].map(([name, file]) => [name, file.info(name).shape]));
  }

  readFloat32(name: string): Float32Array {
    this.info(name);
    return this.byName.get(name)!.readFloat32(name);
  }

  close(): void {
    for (const file of this.files) file.close();
  }
}
