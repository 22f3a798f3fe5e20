import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { closedPort, runCli } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'pl-validate-'));
const write = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const goodConstitution = 'name: Pat\ntraits:\n  - trait: I am kind.\n    questions: [Hello?]\n';
write('good.yaml', goodConstitution);

/** Each case: the file's text, and what the one error line must say. */
const cases: [string, string, string, RegExp][] = [
  ['malformed YAML', 'bad.yaml', 'name: Pat\ntraits: [\n  - trait: x\n', /bad\.yaml: line \d+, column \d+: malformed YAML/],
  ['malformed JSON', 'bad.json', '{"name": "Pat", "traits": [', /bad\.json: malformed JSON/],
  ['unknown key', 'unknown.yaml', goodConstitution + 'colour: blue\n', /unknown\.yaml: \(root\): Unrecognized key: "colour"/],
  ['unknown nested key', 'nested.yaml', 'name: Pat\ntraits:\n  - trait: I am kind.\n    questions: [Hi]\n    weight: 2\n', /nested\.yaml: traits\[0\]: Unrecognized key: "weight"/],
  ['wrong type', 'type.yaml', 'name: Pat\ntraits:\n  - trait: I am kind.\n    questions: Hello\n', /type\.yaml: traits\[0\]\.questions: Invalid input: expected array, received string/],
  ['empty trait list', 'empty.yaml', 'name: Pat\ntraits: []\n', /empty\.yaml: traits: expected at least one trait/],
  ['open recipe array with an empty list', 'recipe.json', '[]', /recipe\.json: \(root\): expected at least one trait/],
  ['experiment: wrong model string', 'exp1.yaml', 'name: e\nconstitutions: [good.yaml]\nmodels: { subject: gpt4 }\n', /exp1\.yaml: models\.subject: /],
  ['experiment: missing constitution file', 'exp2.yaml', 'name: e\nconstitutions: [nope.yaml]\nmodels: { subject: tiny }\n', /exp2\.yaml: constitutions\[0\]: constitution file not found: nope\.yaml/],
  ['experiment: bad seed type', 'exp3.yaml', 'name: e\nconstitutions: [good.yaml]\nmodels: { subject: tiny }\nseeds: [one]\n', /exp3\.yaml: seeds\[0\]: Invalid input: expected number/],
];

for (const [label, name, text, expected] of cases) {
  test(`bad input, ${label}: one line naming file and field, exit 2`, async () => {
    const file = write(name, text);
    const result = await runCli(['validate', file]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, expected);
    assert.equal(result.stderr.trim().split('\n').length, 1, `one line, got: ${result.stderr}`);
    assert.doesNotMatch(result.stderr, /at .*\.ts:\d+/, 'no stack trace');
  });
}

test('a missing file is named', async () => {
  const result = await runCli(['validate', join(dir, 'absent.yaml')]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /absent\.yaml: file not found/);
});

test('an unreachable endpoint names the experiment file and models.<role>', async () => {
  const port = await closedPort();
  const file = write('exp-endpoint.yaml', `name: e\nconstitutions: [good.yaml]\nmodels:\n  subject: tiny\n  judge: "openai:judge-model@http://127.0.0.1:${port}/v1"\n`);
  const result = await runCli(['validate', '--endpoints', file]);
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /exp-endpoint\.yaml: models\.judge: a reachable OpenAI-compatible endpoint at http:\/\/127\.0\.0\.1:\d+\/v1 \(ECONNREFUSED\)/);
});

test('good files pass, with --json output; the example constitutions are valid', async () => {
  const result = await runCli(['--json', 'validate', join(dir, 'good.yaml'), ...readdirSync('examples/constitutions').map((f) => join('examples/constitutions', f))]);
  assert.equal(result.code, 0, result.stderr);
  const parsed = JSON.parse(result.stdout) as { kind: string }[];
  assert.ok(parsed.length >= 4 && parsed.every((r) => r.kind === 'constitution'));
});

test('the open recipe JSON shape imports as a constitution named after the file', async () => {
  const file = write('sarcasm.json', JSON.stringify([{ trait: 'I am sarcastic.', questions: ['How are you?'] }]));
  const result = await runCli(['validate', file]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /constitution "sarcasm", 1 traits, 1 seed questions/);
});
