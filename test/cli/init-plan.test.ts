/**
 * Starting without reading the code: `init` scaffolds a quick or a paper-scale project, and
 * `run --dry-run` prints its plan and writes nothing.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { runCli } from '../support/cli.js';

describe('init profiles and run --dry-run', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'persona-lab-init-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the quick profile generates only what its matrix trains on and its evals read', async () => {
    const init = await runCli(['init', join(dir, 'quick')]);
    assert.equal(init.code, 0, init.stderr);
    const experiment = parse(readFileSync(join(dir, 'quick', 'experiment.yaml'), 'utf8'));
    assert.deepEqual(experiment.generate.datasets, ['prompts', 'chat', 'introspective', 'probes']);
    assert.deepEqual(experiment.run.formats, experiment.generate.formatComparison.formats);
    const validate = await runCli(['validate', join(dir, 'quick', 'constitution.yaml'), join(dir, 'quick', 'experiment.yaml')]);
    assert.equal(validate.code, 0, validate.stderr);
  });

  it('run --dry-run prints the cells, subjects and eval sizes, and writes no run directory', async () => {
    const plan = await runCli(['--json', 'run', '--dry-run', join(dir, 'quick', 'experiment.yaml')], { cwd: dir });
    assert.equal(plan.code, 0, plan.stderr);
    const parsed = JSON.parse(plan.stdout);
    assert.deepEqual(parsed.cells, ['juniper.sft-chat.seed-1', 'juniper.sft-introspective.seed-1']);
    assert.deepEqual(parsed.subjects, ['base', 'prompted', 'juniper.sft-chat.seed-1', 'juniper.sft-introspective.seed-1', 'juniper.steered-t1', 'juniper.capped']);
    assert.deepEqual(parsed.stages, ['generate', 'train', 'steer', 'eval', 'report']);
    assert.equal(parsed.evals.classifier.repliesPerPersona, 20);
    assert.ok(!existsSync(join(dir, 'runs')), 'nothing written');
    const text = await runCli(['run', '--dry-run', join(dir, 'quick', 'experiment.yaml')], { cwd: dir });
    assert.match(text.stdout, /train: 2 adapter\(s\)/);
  });

  it('--set overrides any option of the experiment; a bad override is one error, exit 2', async () => {
    const file = join(dir, 'quick', 'experiment.yaml');
    const plan = await runCli(['--json', 'run', '--dry-run', '--set', 'seeds=[4, 5]', '--set', 'run.formats=[chat]', '--set', 'eval.classifier.repliesPerPersona=7', file], { cwd: dir });
    assert.equal(plan.code, 0, plan.stderr);
    const parsed = JSON.parse(plan.stdout);
    assert.deepEqual(parsed.cells, ['juniper.sft-chat.seed-4', 'juniper.sft-chat.seed-5']);
    assert.equal(parsed.evals.classifier.repliesPerPersona, 7);
    const invalid = await runCli(['run', '--dry-run', '--set', 'eval.bootstrap=5', file], { cwd: dir });
    assert.equal(invalid.code, 2);
    assert.match(invalid.stderr, /eval\.bootstrap/);
    const malformed = await runCli(['run', '--dry-run', '--set', 'nonsense', file], { cwd: dir });
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /--set: key\.path=value/);
    assert.ok(!existsSync(join(dir, 'runs')), 'nothing written');
  });

  it('the paper profile says how long it takes and plans every format and method', async () => {
    const init = await runCli(['init', join(dir, 'paper'), '--profile', 'paper']);
    assert.equal(init.code, 0, init.stderr);
    assert.match(readFileSync(join(dir, 'paper', 'experiment.yaml'), 'utf8'), /hours of GPU time/);
    const plan = await runCli(['--json', 'run', '--dry-run', join(dir, 'paper', 'experiment.yaml')], { cwd: dir });
    assert.equal(plan.code, 0, plan.stderr);
    assert.equal(JSON.parse(plan.stdout).cells.length, 15);
  });
});
