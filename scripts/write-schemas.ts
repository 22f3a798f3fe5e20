// Writes schema/<artifact>.schema.json from the zod schemas; `--check` exits 1 if any file is stale.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { jsonSchemaOf, publishedSchemas } from '../src/schemas.js';

const check = process.argv.includes('--check');
let stale = 0;
for (const name of Object.keys(publishedSchemas)) {
  const file = `schema/${name}.schema.json`;
  const text = JSON.stringify(jsonSchemaOf(name), null, 2) + '\n';
  if (check) {
    if (!existsSync(file) || readFileSync(file, 'utf8') !== text) {
      console.error(`${file} is stale: run npm run schema`);
      stale += 1;
    }
  } else {
    writeFileSync(file, text);
    console.log(`wrote ${file}`);
  }
}
process.exit(stale ? 1 : 0);
