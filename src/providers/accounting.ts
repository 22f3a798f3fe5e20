/**
 * Token and cost accounting for one run, per model id. Tokens and cost count only what the backend
 * actually served; samples from the response cache are counted as hits and cost nothing.
 */

/** USD per million tokens. */
export interface Pricing {
  input: number;
  output: number;
}

export interface ModelUsage {
  /** chat() calls made by the pipeline. */
  calls: number;
  /** Calls answered entirely from the response cache. */
  cacheHits: number;
  /** Samples served from the cache (a call with n = 4 can take 2 from the cache and fetch 2). */
  cachedSamples: number;
  /** Requests that reached the backend (a call can need more than one, e.g. servers that ignore n). */
  backendCalls: number;
  promptTokens: number;
  completionTokens: number;
  /** Attempts repeated after a transient failure (429, 5xx, timeout, reset, malformed body). */
  retries: number;
  /** chat() or embed() calls that failed for good. */
  failures: number;
  embedCalls: number;
  /** Null when no pricing is known for the model. */
  costUSD: number | null;
}

export interface AccountingSnapshot {
  models: Record<string, ModelUsage>;
  total: ModelUsage;
}

const empty = (): Omit<ModelUsage, 'costUSD'> => ({
  calls: 0,
  cacheHits: 0,
  cachedSamples: 0,
  backendCalls: 0,
  promptTokens: 0,
  completionTokens: 0,
  retries: 0,
  failures: 0,
  embedCalls: 0,
});

type Counters = ReturnType<typeof empty>;

export class Accounting {
  private readonly counters = new Map<string, Counters>();
  private readonly pricing = new Map<string, Pricing>();

  setPricing(modelId: string, pricing: Pricing | undefined): void {
    if (pricing) this.pricing.set(modelId, pricing);
  }

  private of(modelId: string): Counters {
    let c = this.counters.get(modelId);
    if (!c) this.counters.set(modelId, (c = empty()));
    return c;
  }

  /** Adds to the counters of one model. */
  add(modelId: string, delta: Partial<Counters>): void {
    const c = this.of(modelId);
    for (const [field, value] of Object.entries(delta) as [keyof Counters, number][]) c[field] += value;
  }

  /** A plain JSON object for the run journal and the report. */
  snapshot(): AccountingSnapshot {
    const models: Record<string, ModelUsage> = {};
    const total: ModelUsage = { ...empty(), costUSD: null };
    for (const [id, c] of [...this.counters].sort(([a], [b]) => a.localeCompare(b))) {
      const price = this.pricing.get(id);
      const costUSD = price ? (c.promptTokens * price.input + c.completionTokens * price.output) / 1e6 : null;
      models[id] = { ...c, costUSD };
      for (const field of Object.keys(c) as (keyof Counters)[]) total[field] += c[field];
      if (costUSD !== null) total.costUSD = (total.costUSD ?? 0) + costUSD;
    }
    return { models, total };
  }
}
