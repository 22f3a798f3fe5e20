/**
 * Identity probes (docs/protocols.md §3): direct, indirect and adversarial prompts (~200 shipped, plus users'
 * files), split per category into train (the identity RL objective) and held-out (the identity eval),
 * deterministically by seed and disjoint. Written once per run: datasets/probes.{train,heldout}.jsonl.
 */
import type { TokenCounter } from '../tokens.js';
import { configHash, writeDataset } from '../context.js';
import { loadProbes, splitHeldOut } from '../prompts.js';
import { probeRowSchema, PROBE_CATEGORIES, type DatasetManifest, type ProbeRow } from '../rows.js';
import type { GenerateOptions } from '../options.js';

export function identityProbes(options: GenerateOptions['probes'], seed: number, baseDir: string, outDir: string, tokens: TokenCounter): { rows: ProbeRow[]; manifest: DatasetManifest } {
  const probes = loadProbes(options, baseDir);
  const split = splitHeldOut(probes, options.heldOutFraction, seed, (p) => p.id, (p) => p.category);
  const rows: ProbeRow[] = probes.map((p) => ({ ...p, split: split.get(p)! }));
  const manifest = writeDataset(
    outDir,
    {
      dataset: 'probes',
      persona: null,
      shape: 'probes',
      tokenizer: tokens.name,
      generated: rows.length,
      dropped: {},
      models: [],
      seed,
      configHash: configHash({ options, seed, ids: probes.map((p) => p.id) }),
      extra: Object.fromEntries(PROBE_CATEGORIES.map((c) => [c, { train: rows.filter((r) => r.category === c && r.split === 'train').length, heldout: rows.filter((r) => r.category === c && r.split === 'heldout').length }])),
    },
    [
      { variant: 'train', fileName: 'probes.train.jsonl', rows: rows.filter((r) => r.split === 'train'), schema: probeRowSchema },
      { variant: 'heldout', fileName: 'probes.heldout.jsonl', rows: rows.filter((r) => r.split === 'heldout'), schema: probeRowSchema },
      // The identity eval's shape (a JSON array of {id, category, prompt}), for eval.identity.probes.
      { variant: 'heldout-list', fileName: 'probes.heldout.json', rows: rows.filter((r) => r.split === 'heldout'), schema: probeRowSchema, project: ({ id, category, prompt }) => ({ id, category, prompt }) },
    ],
    tokens,
  );
  return { rows, manifest };
}
