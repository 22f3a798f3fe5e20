/**
 * The first trait-space component against the assistant axis, when the run's steer stage wrote the
 * axis and a persona vector for every trait-expression column: the run's constitutions (in its
 * manifest) name each column's trait, the steer summary gives its vector file.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { loadFile } from '../core/load.js';
import { axisAlignment, type TraitSpace } from '../evals/trait-space.js';
import { steerSummarySchema } from '../steer/artifacts.js';
import { loadVectors, vectorAt } from '../steer/vectors.js';
import type { TraitSpaceData } from './research-input.js';

/** The run manifest's record of the constitutions it was started with (only what names the traits). */
const manifestConstitutionsSchema = z.object({
  config: z.object({ constitutions: z.array(z.object({ constitution: z.object({ name: z.string(), traits: z.array(z.object({ label: z.string().optional() })) }) })) }).optional(),
});

export function traitAxisAlignment(runDir: string, space: TraitSpace): TraitSpaceData['axis'] | undefined {
  const steerFile = join(runDir, 'steer', 'summary.json');
  if (!existsSync(steerFile)) return undefined;
  const steer = loadFile(steerFile, steerSummarySchema);
  const constitutions = loadFile(join(runDir, 'manifest.json'), manifestConstitutionsSchema).config?.constitutions;
  if (!steer.axis || !constitutions) return undefined;
  // Column "expression.<persona>.<label or tN>" -> (persona, trait index).
  const traitOf = new Map<string, { persona: string; index: number }>(constitutions.flatMap(({ constitution: c }) => c.traits.map((t, i) => [`expression.${c.name}.${t.label ?? `t${i + 1}`}`, { persona: c.name, index: i }] as const)));
  const columns = space.traits.flatMap((name, j) => (traitOf.has(name) ? [{ j, ...traitOf.get(name)! }] : []));
  const files = columns.map((c) => steer.traits.find((t) => t.persona === c.persona && t.traitIndex === c.index)?.vectorFile);
  if (columns.length < 2 || files.some((f) => f === undefined)) return undefined;
  const layer = steer.axis.axisLayer;
  const vectors = files.map((f) => [...vectorAt(loadVectors(resolve(runDir, f!)), layer)]);
  const axis = [...vectorAt(loadVectors(resolve(runDir, steer.axis.file)), layer)];
  const loadings = columns.map((c) => space.components[0].loadings[c.j].value);
  return { ...axisAlignment(loadings, vectors, axis), layer, traits: columns.length };
}
