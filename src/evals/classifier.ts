/**
 * Text classifier that tells which persona wrote a reply (docs/protocols.md §4; the open recipe fine-tuned
 * ModernBERT). Two feature backends feed one multinomial logistic regression:
 *   - TF-IDF over word 1-2-grams and character 3-5-grams (sublinear tf, smooth idf, L2-normalised),
 *     offline, no model needed;
 *   - sentence embeddings from any ChatModel with embed() (engine pooled states, /v1/embeddings),
 *     standardised with the training mean and deviation.
 * Written here rather than taken from npm: the maintained JS options (ml-logistic-regression, natural)
 * are one-vs-rest over dense matrices, which n-gram vocabularies of tens of thousands of columns make
 * slow; a sparse softmax regression is short.
 */
import type { ChatModel } from '../providers/types.js';

/** A sparse vector: parallel arrays of column indices and values. */
export interface SparseVector {
  index: Int32Array;
  value: Float64Array;
}

export interface Featurizer {
  readonly dimension: number;
  fit(texts: readonly string[]): Promise<void>;
  transform(texts: readonly string[]): Promise<SparseVector[]>;
}

function terms(text: string): string[] {
  const lower = text.toLowerCase();
  const words = lower.match(/[\p{L}\p{N}']+|[^\s\p{L}\p{N}]/gu) ?? [];
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    out.push(`w:${words[i]}`);
    if (i > 0) out.push(`w:${words[i - 1]} ${words[i]}`);
  }
  const squashed = ` ${lower.replace(/\s+/g, ' ').trim()} `;
  for (let n = 3; n <= 5; n++) for (let i = 0; i + n <= squashed.length; i++) out.push(`c:${squashed.slice(i, i + n)}`);
  return out;
}

function l2normalise(v: SparseVector): SparseVector {
  let norm = 0;
  for (const x of v.value) norm += x * x;
  norm = Math.sqrt(norm);
  if (norm > 0) for (let i = 0; i < v.value.length; i++) v.value[i] /= norm;
  return v;
}

export class TfidfFeaturizer implements Featurizer {
  private vocabulary = new Map<string, number>();
  private idf: Float64Array = new Float64Array(0);

  constructor(private readonly o: { minDocumentFrequency?: number; maxFeatures?: number } = {}) {}

  get dimension(): number {
    return this.vocabulary.size;
  }

  async fit(texts: readonly string[]): Promise<void> {
    const df = new Map<string, number>();
    for (const t of texts) for (const term of new Set(terms(t))) df.set(term, (df.get(term) ?? 0) + 1);
    const minDf = this.o.minDocumentFrequency ?? 2;
    const kept = [...df.entries()]
      .filter(([, d]) => d >= minDf)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, this.o.maxFeatures ?? 50_000);
    this.vocabulary = new Map(kept.map(([term], i) => [term, i]));
    this.idf = Float64Array.from(kept, ([, d]) => Math.log((1 + texts.length) / (1 + d)) + 1);
  }

  async transform(texts: readonly string[]): Promise<SparseVector[]> {
    return texts.map((t) => {
      const tf = new Map<number, number>();
      for (const term of terms(t)) {
        const j = this.vocabulary.get(term);
        if (j !== undefined) tf.set(j, (tf.get(j) ?? 0) + 1);
      }
      const index = Int32Array.from(tf.keys());
      const value = Float64Array.from(index, (j) => (1 + Math.log(tf.get(j) as number)) * this.idf[j]);
      return l2normalise({ index, value });
    });
  }
}

export class EmbeddingFeaturizer implements Featurizer {
  private centre: Float64Array = new Float64Array(0);
  private scale: Float64Array = new Float64Array(0);

  constructor(private readonly model: ChatModel) {
    if (!model.embed) throw new Error(`model ${model.id} has no embeddings: use the tfidf classifier backend`);
  }

  get dimension(): number {
    return this.centre.length;
  }

  private async embed(texts: readonly string[]): Promise<number[][]> {
    const out: number[][] = [];
    for (let i = 0; i < texts.length; i += 64) out.push(...(await this.model.embed!(texts.slice(i, i + 64))));
    return out;
  }

  async fit(texts: readonly string[]): Promise<void> {
    const xs = await this.embed(texts);
    const d = xs[0]?.length ?? 0;
    this.centre = new Float64Array(d);
    this.scale = new Float64Array(d);
    for (const x of xs) for (let j = 0; j < d; j++) this.centre[j] += x[j] / xs.length;
    for (const x of xs) for (let j = 0; j < d; j++) this.scale[j] += (x[j] - this.centre[j]) ** 2 / xs.length;
    for (let j = 0; j < d; j++) this.scale[j] = Math.sqrt(this.scale[j]) || 1;
  }

  async transform(texts: readonly string[]): Promise<SparseVector[]> {
    const xs = await this.embed(texts);
    const d = this.centre.length;
    return xs.map((x) => ({ index: Int32Array.from({ length: d }, (_, j) => j), value: Float64Array.from({ length: d }, (_, j) => (x[j] - this.centre[j]) / this.scale[j]) }));
  }
}

/** Multinomial (softmax) logistic regression with an L2 penalty, fitted by full-batch Adam. */
export class LogisticRegression {
  private weights: Float64Array[] = [];
  private bias: Float64Array = new Float64Array(0);
  labels: string[] = [];

  fit(xs: readonly SparseVector[], ys: readonly string[], dimension: number, o: { l2: number; epochs: number; learningRate?: number; balanceClasses?: boolean }): void {
    this.labels = [...new Set(ys)].sort();
    const k = this.labels.length;
    const y = ys.map((l) => this.labels.indexOf(l));
    // Balanced weights (n / (k * n_c), as scikit-learn's class_weight='balanced'): every class carries
    // the same total weight, so a class with many more replies does not win by its prior alone.
    const counts = this.labels.map((_, c) => y.filter((yi) => yi === c).length);
    const weight = y.map((c) => (o.balanceClasses ? ys.length / (k * counts[c]) : 1));
    this.weights = this.labels.map(() => new Float64Array(dimension));
    this.bias = new Float64Array(k);
    const lr = o.learningRate ?? 0.1;
    const [b1, b2, eps] = [0.9, 0.999, 1e-8];
    const m = this.labels.map(() => new Float64Array(dimension));
    const v = this.labels.map(() => new Float64Array(dimension));
    const mb = new Float64Array(k);
    const vb = new Float64Array(k);
    for (let t = 1; t <= o.epochs; t++) {
      const grad = this.labels.map(() => new Float64Array(dimension));
      const gb = new Float64Array(k);
      xs.forEach((x, i) => {
        const p = this.probabilities(x);
        for (let c = 0; c < k; c++) {
          const err = (weight[i] * (p[c] - (y[i] === c ? 1 : 0))) / xs.length;
          gb[c] += err;
          const g = grad[c];
          for (let q = 0; q < x.index.length; q++) g[x.index[q]] += err * x.value[q];
        }
      });
      const c1 = 1 - b1 ** t;
      const c2 = 1 - b2 ** t;
      for (let c = 0; c < k; c++) {
        const w = this.weights[c];
        for (let j = 0; j < dimension; j++) {
          const g = grad[c][j] + o.l2 * w[j];
          m[c][j] = b1 * m[c][j] + (1 - b1) * g;
          v[c][j] = b2 * v[c][j] + (1 - b2) * g * g;
          w[j] -= (lr * (m[c][j] / c1)) / (Math.sqrt(v[c][j] / c2) + eps);
        }
        mb[c] = b1 * mb[c] + (1 - b1) * gb[c];
        vb[c] = b2 * vb[c] + (1 - b2) * gb[c] * gb[c];
        this.bias[c] -= (lr * (mb[c] / c1)) / (Math.sqrt(vb[c] / c2) + eps);
      }
    }
  }

  probabilities(x: SparseVector): Float64Array {
    const z = Float64Array.from(this.weights, (w, c) => {
      let s = this.bias[c];
      for (let q = 0; q < x.index.length; q++) s += w[x.index[q]] * x.value[q];
      return s;
    });
    const top = Math.max(...z);
    let sum = 0;
    for (let c = 0; c < z.length; c++) sum += z[c] = Math.exp(z[c] - top);
    for (let c = 0; c < z.length; c++) z[c] /= sum;
    return z;
  }

  predict(x: SparseVector): string {
    const p = this.probabilities(x);
    let best = 0;
    for (let c = 1; c < p.length; c++) if (p[c] > p[best]) best = c;
    return this.labels[best];
  }
}

/** A featurizer plus a logistic regression: fit on labelled replies, then say who wrote new ones. */
export class PersonaClassifier {
  private readonly regression = new LogisticRegression();

  constructor(
    private readonly featurizer: Featurizer,
    private readonly o: { l2: number; epochs: number; balanceClasses?: boolean },
  ) {}

  get labels(): string[] {
    return this.regression.labels;
  }

  async fit(texts: readonly string[], labels: readonly string[]): Promise<void> {
    await this.featurizer.fit(texts);
    const xs = await this.featurizer.transform(texts);
    this.regression.fit(xs, labels, this.featurizer.dimension, this.o);
  }

  async classify(texts: readonly string[]): Promise<string[]> {
    if (texts.length === 0) return [];
    return (await this.featurizer.transform(texts)).map((x) => this.regression.predict(x));
  }

  /** Per text, each label's probability (what the sample browser shows beside the prediction). */
  async probabilities(texts: readonly string[]): Promise<Record<string, number>[]> {
    if (texts.length === 0) return [];
    return (await this.featurizer.transform(texts)).map((x) => {
      const p = this.regression.probabilities(x);
      return Object.fromEntries(this.labels.map((label, c) => [label, p[c]]));
    });
  }
}
