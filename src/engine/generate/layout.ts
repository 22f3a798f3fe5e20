/**
 * Batch layout in JS: left padding, position ids, the additive attention bias and the fixed-capacity
 * KV cache the decode graph reads. All of it is small next to the graph's work and built once per
 * step, so it stays out of the graph (where a fixed-capacity cache would need scatter ops).
 */

/** Masked logits: finite, so fully padded rows stay free of NaN. */
export const MASKED = -1e9;

export interface PaddedBatch {
  /** [B * T] row-major, pad tokens on the left. */
  ids: BigInt64Array;
  /** [B * T] 1 for real tokens, 0 for padding. */
  mask: Uint8Array;
  /** [B * T] position among the row's real tokens (0 on padding). */
  positions: BigInt64Array;
  batch: number;
  length: number;
  /** Per row, the number of pad tokens in front. */
  pads: number[];
}

export function leftPad(rows: readonly (readonly number[])[], padId: number): PaddedBatch {
  const batch = rows.length;
  const length = Math.max(1, ...rows.map((r) => r.length));
  const ids = new BigInt64Array(batch * length).fill(BigInt(padId));
  const mask = new Uint8Array(batch * length);
  const positions = new BigInt64Array(batch * length);
  const pads = rows.map((r) => length - r.length);
  rows.forEach((row, b) => {
    row.forEach((id, i) => {
      const at = b * length + pads[b] + i;
      ids[at] = BigInt(id);
      mask[at] = 1;
      positions[at] = BigInt(i);
    });
  });
  return { ids, mask, positions, batch, length, pads };
}

/**
 * The bias for `queries` new positions per row attending over `keys` key slots, in the grouped
 * layout [B, 1, rep * queries, keys] the model's attention uses (each query row repeated rep times).
 * `allowed(b, q, k)` decides one entry.
 */
export function groupedAttentionBias(
  batch: number,
  queries: number,
  keys: number,
  rep: number,
  allowed: (b: number, q: number, k: number) => boolean,
): Float32Array {
  const out = new Float32Array(batch * rep * queries * keys);
  const row = new Float32Array(keys);
  for (let b = 0; b < batch; b++) {
    for (let q = 0; q < queries; q++) {
      for (let k = 0; k < keys; k++) row[k] = allowed(b, q, k) ? 0 : MASKED;
      for (let r = 0; r < rep; r++) out.set(row, ((b * rep + r) * queries + q) * keys);
    }
  }
  return out;
}

/** Causal, padding-aware (and windowed) bias for a whole padded batch attending to itself. */
export function prefillBias(p: PaddedBatch, rep: number, window: number | null): Float32Array {
  const T = p.length;
  return groupedAttentionBias(p.batch, T, T, rep, (b, q, k) => {
    if (k > q || (window !== null && q - k >= window)) return false;
    // a pad query attends to itself only, keeping its (unused) row finite
    return p.mask[b * T + k] === 1 || (k === q && p.mask[b * T + q] === 0);
  });
}

/**
 * The KV cache of one batch: per layer keys [B, KV, D, C] (transposed, as the scores MatMul reads
 * them) and values [B, KV, C, D], C = capacity slots; `filled` slots are in use (same for every row:
 * rows differ only by their left padding, recorded in `mask`).
 */
export class KvCache {
  readonly keys: Float32Array[];
  readonly values: Float32Array[];
  /** [B * C] 1 where a slot holds a real token. */
  readonly mask: Uint8Array;
  filled = 0;

  constructor(
    readonly layers: number,
    readonly batch: number,
    readonly kvHeads: number,
    readonly headDim: number,
    readonly capacity: number,
  ) {
    const size = batch * kvHeads * headDim * capacity;
    this.keys = Array.from({ length: layers }, () => new Float32Array(size));
    this.values = Array.from({ length: layers }, () => new Float32Array(size));
    this.mask = new Uint8Array(batch * capacity);
  }

  /**
   * Stores `count` new positions per row from a step's outputs (keys [B, KV, D, count], values
   * [B, KV, count, D]) at slots filled..filled+count, with their padding mask [B * count].
   */
  append(layerKeys: readonly Float32Array[], layerValues: readonly Float32Array[], count: number, mask: ArrayLike<number>): void {
    const { batch: B, kvHeads: KV, headDim: D, capacity: C, filled } = this;
    if (filled + count > C) throw new Error(`KV cache full: ${filled} + ${count} > capacity ${C}`);
    for (let l = 0; l < this.layers; l++) {
      const k = layerKeys[l];
      const v = layerValues[l];
      const ck = this.keys[l];
      const cv = this.values[l];
      for (let bh = 0; bh < B * KV; bh++) {
        for (let d = 0; d < D; d++) {
          const from = (bh * D + d) * count;
          const to = (bh * D + d) * C + filled;
          for (let t = 0; t < count; t++) ck[to + t] = k[from + t];
        }
        cv.set(v.subarray(bh * count * D, (bh + 1) * count * D), (bh * C + filled) * D);
      }
    }
    for (let b = 0; b < B; b++) for (let t = 0; t < count; t++) this.mask[b * C + filled + t] = mask[b * count + t];
    this.filled += count;
  }

  /** Bias for one new token per row over the C cache slots plus itself: [B, 1, rep, C + 1]. */
  decodeBias(rep: number, window: number | null): Float32Array {
    const C = this.capacity;
    const now = this.filled; // the new token's slot
    return groupedAttentionBias(this.batch, 1, C + 1, rep, (b, _q, k) => {
      if (k === C) return true;
      return k < now && this.mask[b * C + k] === 1 && (window === null || now - k < window);
    });
  }
}
