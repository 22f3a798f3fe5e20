/**
 * The artifacts whose JSON Schema is published in schema/. Each entry is the zod schema that also
 * validates the artifact at run time, so the published schema can never drift from the code
 * (test/core/schemas.test.ts checks the committed files are current; `npm run schema` rewrites them).
 */
import { z, type ZodType } from 'zod';
import { constitutionSchema } from '../constitution/schema.js';
import { experimentSchema } from '../experiments/config.js';

export const publishedSchemas: Record<string, { title: string; schema: ZodType }> = {
  constitution: { title: 'persona-lab constitution', schema: constitutionSchema },
  experiment: { title: 'persona-lab experiment', schema: experimentSchema },
};

export function jsonSchemaOf(name: string): Record<string, unknown> {
  const { title, schema } = publishedSchemas[name];
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...json, $id: `https://persona-lab.dev/schema/${name}.schema.json`, title };
}
