/**
 * Nothing is written before everything is checked, through the real CLI: after the data stage, each
 * bad input - an unknown architecture, a garbage tokenizer.json, a truncated safetensors file, an
 * adapter whose shapes do not fit the base, a steering vector the trainer cannot read, a GRPO
 * classifier reward that cannot be built, a missing dataset file - stops `train` / `eval` with one
 * line naming the file and the field, exit 2, and the run directory byte-for-byte as it was.
 * `validate` refuses the same inputs. The steer stage's own vector.safetensors, named relative to
 * the experiment file, and the built-in reward classifiers are accepted.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { parse, stringify } from 'yaml';
import { writeSafetensors } from '../../src/engine/io/safetensors.js';
import { saveVectors } from '../../src/steer/vectors.js';
import { runCli } from '../support/cli.js';
import { SMALL_GENERATE, snapshot, worldServer, writeProject } from './run-support.js';

const world = worldServer();

test('each bad input stops train / eval / validate with exit 2 and the run directory unchanged', async () => {
  const project = writeProject({ name: 'inputs', models: {}, seeds: [1] });
  const model = join(project.dir, 'model');
  cpSync(resolve('test/fixtures/models/llama'), model, { recursive: true });
  const experiment = {
    name: 'inputs',
    constitutions: ['salt.yaml'],
    output: project.runDir,
    models: { subject: 'local:model', teacher: `openai:teacher@${world.server.baseURL}` },
    seeds: [1],
    generate: { ...SMALL_GENERATE, datasets: ['prompts', 'chat', 'probes'], filters: { minWords: 0 } },
    train: { sft: { lora: { rank: 2, alpha: 4, targets: ['q', 'v'] }, maxSteps: 1, batchSize: 1, maxLength: 48 } },
    run: { formats: ['chat'], methods: ['sft'], threads: 1 },
  };
  const write = (e: Record<string, unknown>) => writeFileSync(project.file, stringify(e));
  const cwd = project.dir; // model paths in the experiment are relative to it
  try {
    write(experiment);
    const generated = await runCli(['--no-cache', 'generate', project.file], { cwd });
    assert.equal(generated.code, 0, generated.stderr);

    /** Runs `args`, expecting exit 2 with one line matching `message` and nothing written; validate too. */
    const refused = async (args: string[], message: RegExp, validate = true) => {
      const before = snapshot(project.runDir);
      const result = await runCli(['--no-cache', ...args, project.file], { cwd });
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.equal(result.stderr.trim().split('\n').length, 1, 'one line');
      assert.equal(snapshot(project.runDir), before, `${args.join(' ')} wrote nothing`);
      if (validate) {
        const checked = await runCli(['validate', project.file], { cwd });
        assert.equal(checked.code, 2, checked.stderr);
        assert.match(checked.stderr, message);
      }
    };
    const original = (name: string) => readFileSync(resolve('test/fixtures/models/llama', name));

    const config = JSON.parse(original('config.json').toString()) as Record<string, unknown>;
    writeFileSync(join(model, 'config.json'), JSON.stringify({ ...config, architectures: ['GPT2LMHeadModel'], model_type: 'gpt2' }));
    await refused(['train'], /model\/config\.json: architectures: unsupported architecture GPT2LMHeadModel/);
    writeFileSync(join(model, 'config.json'), original('config.json'));

    writeFileSync(join(model, 'tokenizer.json'), '{"version": "1.0", "mod');
    await refused(['train'], /model\/tokenizer\.json: \(root\): a JSON tokenizer/);
    writeFileSync(join(model, 'tokenizer.json'), '{"version": "1.0"}');
    await refused(['train'], /model\/tokenizer\.json: model: a tokenizer model object/);
    writeFileSync(join(model, 'tokenizer.json'), original('tokenizer.json'));

    truncateSync(join(model, 'model.safetensors'), statSync(join(model, 'model.safetensors')).size - 100);
    await refused(['train'], /model\/model\.safetensors: .*truncated|model\/model\.safetensors: [^:]+: .*(offsets|bytes)/);
    writeFileSync(join(model, 'model.safetensors'), original('model.safetensors'));

    // An adapter made for a wider model, as an extra eval subject.
    const adapter = join(project.dir, 'wide-adapter');
    mkdirSync(adapter);
    writeFileSync(join(adapter, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['q_proj'] }));
    writeSafetensors(join(adapter, 'adapter_model.safetensors'), [
      { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', shape: [2, 96], data: new Float32Array(192) },
      { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', shape: [64, 2], data: new Float32Array(128) },
    ]);
    write({ ...experiment, run: { ...experiment.run, subjects: [{ name: 'wide', model: `local:model+wide-adapter` }] } });
    await refused(['eval'], /adapter_model\.safetensors: base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight: a \[rank, 64\] matrix for the base model's q_proj \(found \[2, 96\]\)/);

    writeFileSync(join(project.dir, 'vector.txt'), 'not a vector');
    write({ ...experiment, train: { sft: { ...experiment.train.sft, steering: { vector: 'vector.txt', layer: 0, coef: 1 } } } });
    await refused(['train'], /vector\.txt: a JSON steering vector/);

    write({ ...experiment, train: { ...experiment.train, grpo: { rewards: [{ name: 'persona', weight: 1, kind: 'classifier', classifier: 'nope' }] } } });
    await refused(['train'], /experiment\.yaml: train\.grpo\.rewards\[0\]\.classifier: one of the reward classifiers \(not-ai, persona\), found "nope"/);
    // A persona classifier needs two classes: one constitution and no assistant class leaves one.
    write({ ...experiment, train: { ...experiment.train, grpo: { rewards: [{ name: 'persona', weight: 1, kind: 'classifier', classifier: 'persona' }] } }, eval: { classifier: { includeAssistant: false } } });
    await refused(['train'], /experiment\.yaml: train\.grpo\.rewards\[0\]\.classifier: a persona classifier needs two classes/);

    // Accepted: the steer stage's vector.safetensors relative to the experiment file, a built-in classifier.
    saveVectors(join(project.dir, 'steer-out', 'vector.safetensors'), { kind: 'persona', trait: 't', modelId: 'm', layers: [0, 1], vectors: [new Float32Array(64).fill(0.1), new Float32Array(64)], nPositive: 1, nNegative: 1, meta: {} });
    write({
      ...experiment,
      train: { sft: { ...experiment.train.sft, steering: { vector: 'steer-out/vector.safetensors', layer: 1, coef: 1 } }, grpo: { rewards: [{ name: 'not_ai', weight: 1, kind: 'classifier', classifier: 'not-ai' }, { name: 'persona', weight: 1, kind: 'classifier', classifier: 'persona' }] } },
    });
    const ok = await runCli(['validate', project.file], { cwd });
    assert.equal(ok.code, 0, ok.stderr);
    const wrongLayer = { ...experiment, train: { sft: { ...experiment.train.sft, steering: { vector: 'steer-out/vector.safetensors', layer: 5, coef: 1 } } } };
    write(wrongLayer);
    await refused(['train'], /vector\.safetensors: layers: a vector for layer 5 \(train\.sft\.steering\.layer; the file has 0, 1\)/);

    write(experiment);
    rmSync(join(project.runDir, 'datasets', 'captain-salt', 'format-comparison', 'chat.jsonl'), { force: true });
    rmSync(join(project.runDir, 'datasets', 'captain-salt', 'chat.jsonl'));
    await refused(['train'], /datasets\/captain-salt: chat: the chat dataset of Captain Salt \(not found or empty/, false);
    assert.ok(!parse(readFileSync(project.file, 'utf8')).run.subjects);
  } finally {
    project.remove();
  }
});
