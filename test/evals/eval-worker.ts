// The capability eval on one subject of the loopback server at argv[2], journaled in run dir argv[3]:
// the child process that the eval crash test kills with SIGKILL.
import { RunDir } from '../../src/core/journal.js';
import { runEvals } from '../../src/evals/index.js';
import { pirateConstitution, scriptedModel } from './scripted.js';

const [baseURL, dir] = [process.argv[2], process.argv[3]];
const runDir = RunDir.open(dir, { name: 'crash', personaLabVersion: 'test', gitRevision: null, seeds: [1], config: {} });
await runEvals({ name: 'crash', constitutions: [pirateConstitution], baseDir: dir }, [{ name: 'base', model: await scriptedModel(baseURL, 'base') }], [], runDir, { evals: ['capability'], concurrency: 2 });
runDir.close();
