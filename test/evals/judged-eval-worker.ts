// Judged evals (trait expression with its probe and pairwise comparisons, leakage) on two subjects of
// the loopback server at argv[2], journaled in run dir argv[3]: the child process that the judge-tally
// crash test runs whole once and kills with SIGKILL once.
import { RunDir } from '../../src/core/journal.js';
import { runEvals } from '../../src/evals/index.js';
import { pirateConstitution, scriptedModel } from './scripted.js';

const [baseURL, dir] = [process.argv[2], process.argv[3]];
const runDir = RunDir.open(dir, { name: 'tallies', personaLabVersion: 'test', gitRevision: null, seeds: [1], config: {} });
await runEvals(
  { name: 'tallies', constitutions: [pirateConstitution], baseDir: dir },
  [
    { name: 'base', model: await scriptedModel(baseURL, 'base') },
    { name: 'trained', model: await scriptedModel(baseURL, 'pirate'), persona: pirateConstitution.name },
  ],
  [{ name: 'judge-1', model: await scriptedModel(baseURL, 'judge-1') }],
  runDir,
  { evals: ['traitExpression', 'leakage'], baseline: 'base', traitExpression: { samplesPerTrait: 2 }, leakage: { samples: 1 }, concurrency: 2, bootstrap: 100 },
);
runDir.close();
