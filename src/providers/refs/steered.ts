/**
 * A local model steered along a persona vector, or capped along the assistant axis, from the files
 * the steer stage writes:
 *   steered(<base ref>):<vector file>[@<layer>*<coef>]   coef * v added at one layer (default: the
 *                                                        layer and coefficient the sweep chose)
 *   capped(<base ref>):<capping.json>                    activation capping over the calibrated band
 * or the object form {provider: steered, base, steer: {vector, layer?, coef?, positions}, cap: {calibration}}.
 */
import { z } from 'zod';
import { InputError } from '../../core/errors.js';
import { isAbsolute, resolve } from 'node:path';
import { localModelSchema, localProvider, parseLocalModelRef, weightsFingerprint } from './local.js';
import type { ProviderEntry } from './types.js';

export const steeredModelSchema = z
  .object({
    provider: z.literal('steered'),
    base: z.union([z.string().min(1), localModelSchema]).describe('The local model steered: "local:<dir>", "tiny" or the object form.'),
    steer: z
      .object({
        vector: z.string().min(1).describe('A persona-vector file the steer stage wrote (vector.safetensors or vector.json).'),
        layer: z.number().int().nonnegative().optional().describe("Default: the layer the sweep chose (the vector file's chosenLayer)."),
        coef: z.number().optional().describe("Default: the coefficient the sweep chose (the vector file's chosenCoef)."),
        positions: z.enum(['all', 'prompt', 'reply']).default('all'),
      })
      .strict()
      .optional(),
    cap: z
      .object({ calibration: z.string().min(1).describe("The steer stage's capping.json (assistant-axis.safetensors beside it).") })
      .strict()
      .optional(),
  })
  .strict()
  .refine((r) => r.steer !== undefined || r.cap !== undefined, { message: 'expected steer, cap or both' });
export type SteeredModelRef = z.infer<typeof steeredModelSchema>;

const SHORT = /^(steered|capped)\((.+)\):(.+)$/;
const VECTOR = /^(.+?)(?:@(\d+)\*(-?[0-9.]+(?:e-?\d+)?))?$/i;

export const steeredProvider: ProviderEntry<SteeredModelRef> = {
  grammar: ['steered(<base ref>):<vector file>[@<layer>*<coef>]', 'capped(<base ref>):<capping.json>'],
  claims: (ref) => /^(steered|capped)\(/.test(ref),
  schema: steeredModelSchema,
  parse(ref) {
    const m = SHORT.exec(ref);
    if (!m || !localProvider.claims(m[2])) throw new InputError('model reference', ref, `expected ${this.grammar.map((g) => `"${g}"`).join(' or ')} with a local base ("local:<dir>" or "tiny")`);
    if (m[1] === 'capped') return { provider: 'steered', base: m[2], cap: { calibration: m[3] } };
    const v = VECTOR.exec(m[3])!;
    return { provider: 'steered', base: m[2], steer: { vector: v[1], ...(v[2] !== undefined ? { layer: Number(v[2]), coef: Number(v[3]) } : {}) } };
  },
  resolve(ref, _env, cwd) {
    const abs = (p: string) => (isAbsolute(p) ? p : resolve(cwd, p));
    return {
      ...ref,
      base: parseLocalModelRef(ref.base, cwd),
      ...(ref.steer ? { steer: { ...ref.steer, vector: abs(ref.steer.vector) } } : {}),
      ...(ref.cap ? { cap: { calibration: abs(ref.cap.calibration) } } : {}),
    };
  },
  async create(ref, ctx) {
    const base = parseLocalModelRef(ref.base, ctx.cwd);
    // The steer stage reads its own files (vector, sweep choice, capping calibration).
    const { steeredChatModel } = await import('../../steer/index.js');
    return { model: steeredChatModel({ ...ref, base }), cacheScope: ctx.noCache ? undefined : await weightsFingerprint(base) };
  },
  capabilities: { generate: true, logprobs: true, steer: false, train: false },
};
