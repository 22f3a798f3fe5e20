/** Reading YAML/JSON files into zod-validated values, with errors that name the file and the field. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import YAML from 'yaml';
import type { ZodType } from 'zod';
import { InputError } from './errors.js';

/** Parses a YAML or JSON file (by extension; YAML otherwise) without validating it. */
export function readStructured(file: string): unknown {
  if (!existsSync(file)) throw new InputError(file, '', 'file not found');
  if (statSync(file).isDirectory()) throw new InputError(file, '', 'expected a file, found a directory');
  const text = readFileSync(file, 'utf8');
  if (extname(file).toLowerCase() === '.json') {
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new InputError(file, '', `malformed JSON (${(error as Error).message})`);
    }
  }
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const where = e.linePos?.[0] ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
    throw new InputError(file, where, `malformed YAML (${e.message.split('\n')[0]})`);
  }
  return doc.toJS();
}

/** Validates an already-parsed value against a schema, naming `file` in the error. */
export function validate<T>(file: string, value: unknown, schema: ZodType<T>): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw InputError.fromZod(file, parsed.error);
  return parsed.data;
}

export function loadFile<T>(file: string, schema: ZodType<T>): T {
  return validate(file, readStructured(file), schema);
}
