/**
 * The artifacts whose JSON Schema is published in schema/. Each entry is the zod schema that also
 * validates the artifact at run time, so the published schema can never drift from the code
 * (test/core/schemas.test.ts checks the committed files are current; `npm run schema` rewrites them).
 */
import { z, type ZodType } from 'zod';
import { constitutionSchema } from './constitution/schema.js';
import { chatRowSchema, datasetManifestSchema, dpoRowSchema, textRowSchema } from './data/rows.js';
import { evalSummarySchema } from './evals/summary.js';
import { evalJournalLineSchema } from './evals/records.js';
import { experimentSchema } from './experiments/config.js';
import { journalLineOf, journalLineSchema, runManifestSchema } from './core/journal.js';
import { trainedCellSchema } from './experiments/cells.js';
import { cappingFileSchema, monitorFileSchema, screenFileSchema, steerSummarySchema, sweepFileSchema } from './steer/artifacts.js';
import { traitPromptsSchema } from './steer/prompts.js';
import { stepLogSchema } from './train/trainer.js';
import { runLockSchema } from './core/run-lock.js';
import { optionsRecordSchema } from './experiments/changes.js';
import { accountingFileSchema } from './providers/accounting-file.js';

export const publishedSchemas: Record<string, { title: string; schema: ZodType }> = {
  constitution: { title: 'persona-lab constitution', schema: constitutionSchema },
  experiment: { title: 'persona-lab experiment', schema: experimentSchema },
  'dataset-chat-row': { title: 'persona-lab chat dataset row (TRL SFT / OpenAI fine-tuning messages, with provenance)', schema: chatRowSchema },
  'dataset-dpo-row': { title: 'persona-lab preference dataset row (TRL DPO prompt/chosen/rejected, with provenance)', schema: dpoRowSchema },
  'dataset-text-row': { title: 'persona-lab plain-text dataset row (continued pretraining, with provenance)', schema: textRowSchema },
  'dataset-manifest': { title: 'persona-lab dataset manifest', schema: datasetManifestSchema },
  'run-manifest': { title: 'persona-lab run manifest (runs/<name>/manifest.json)', schema: runManifestSchema },
  'journal-line': { title: 'persona-lab run journal line (runs/<name>/journals/**/*.jsonl)', schema: journalLineSchema },
  'eval-summary': { title: 'persona-lab evaluation summary (evals/summary.json)', schema: evalSummarySchema },
  'eval-journal-line': { title: 'persona-lab scored eval sample with its subject, one line of journals/evals/<eval>/<subject>.jsonl', schema: evalJournalLineSchema },
  'train-adapters-line': { title: 'persona-lab trained cell, one line of journals/train/adapters.jsonl', schema: journalLineOf(trainedCellSchema) },
  'train-step-line': { title: 'persona-lab training log line (adapters/<persona>/<cell>/seed-<n>/train.jsonl)', schema: journalLineOf(stepLogSchema) },
  'steer-prompts': { title: 'persona-lab contrastive prompts of a trait (steer/<persona>/t<trait>/prompts.json)', schema: traitPromptsSchema },
  'steer-sweep': { title: 'persona-lab steering sweep (steer/<persona>/t<trait>/sweep.json)', schema: sweepFileSchema },
  'steer-monitor': { title: 'persona-lab projection monitor and fine-tuning shifts (steer/<persona>/t<trait>/monitor.json)', schema: monitorFileSchema },
  'steer-screen': { title: 'persona-lab data screening of one file (steer/<persona>/t<trait>/screen-<k>.json)', schema: screenFileSchema },
  'steer-capping': { title: 'persona-lab activation-capping calibration (steer/capping.json)', schema: cappingFileSchema },
  'steer-summary': { title: 'persona-lab steer stage summary (steer/summary.json)', schema: steerSummarySchema },
  accounting: { title: 'persona-lab model usage per invocation, stage and model (runs/<name>/accounting.json)', schema: accountingFileSchema },
  'run-options': { title: 'persona-lab options that made each result of a run (runs/<name>/options.json)', schema: optionsRecordSchema },
  'run-lock': { title: 'persona-lab run directory lock (runs/<name>/run.lock)', schema: runLockSchema },
};

export function jsonSchemaOf(name: string): Record<string, unknown> {
  const { title, schema } = publishedSchemas[name];
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...json, $id: `https://persona-lab.dev/schema/${name}.schema.json`, title };
}
