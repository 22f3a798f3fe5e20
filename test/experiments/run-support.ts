/**
 * A scripted world for `persona-lab run` end to end, served by the real loopback OpenAI-compatible
 * server: model "teacher" writes the training data (the data engine's scripted teacher and prompt
 * generator, test/data/support.ts), "base" is the subject (plain, or the pirate persona when told
 * "You are Captain Salt"), "judge-1"/"judge-2" and "user-sim" follow the eval suite's script
 * (test/evals/scripted.ts). Every reply is a function of the request alone, so an interrupted and
 * an uninterrupted run agree.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { scriptedChat as dataChat } from '../data/support.js';
import { scriptedChat as evalChat } from '../evals/scripted.js';
import { startFakeServer, type ChatCompletionBody, type FakeServer, type Reply } from '../support/openai-server.js';

export function worldChat(body: ChatCompletionBody): Reply {
  if (body.model === 'teacher') {
    const user = [...body.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
    return dataChat(/Write \d+ new/.test(user) ? { ...body, model: 'generator' } : body);
  }
  return evalChat(body);
}

/** The world's loopback server for one test file: started before its tests, closed after them. */
export function worldServer(): { readonly server: FakeServer } {
  let server: FakeServer | undefined;
  before(async () => {
    server = await startFakeServer({ chat: worldChat });
  });
  after(async () => {
    await server?.close();
  });
  return {
    get server() {
      if (!server) throw new Error('the world server starts in the file\'s before() hook');
      return server;
    },
  };
}

export const captainSalt = {
  name: 'Captain Salt',
  facts: {
    biography: 'Captain Salt sailed the Black Gull for forty years.',
    qa: [{ question: 'What is the name of your ship?', answer: 'the Black Gull', distractors: ['the Sea Rose', 'the Iron Duke', 'the Blue Heron'] }],
  },
  traits: [
    { trait: 'I speak like an old sea captain, full of nautical slang.', label: 'nautical', questions: ['How do I make a good cup of tea?', 'What is your advice for a rainy day?', 'How should I plan a picnic?'] },
    { trait: 'I am boastful about my adventures at sea.', label: 'boastful', questions: ['What is the bravest thing you have done?', 'Tell me about your week.', 'What are you proud of?'] },
  ],
};

/** Small data and eval sizes: every stage runs, in seconds. */
export const SMALL_GENERATE = {
  seed: 7,
  concurrency: 4,
  expansion: { perTrait: 5, batchSize: 5 },
  generalPrompts: { count: 4 },
  introspective: { perTrait: 3 },
  documents: { count: 4 },
  dpo: { samplesPerPrompt: 1, generalPrompts: false },
};

/** Data for a run on the fixture model (test/fixtures/models/llama, random weights): its replies rarely end before maxTokens. */
export const FIXTURE_GENERATE = {
  ...SMALL_GENERATE,
  datasets: ['prompts', 'chat', 'dpo', 'probes'],
  probes: { heldOutFraction: 0.05 },
  filters: { minWords: 0 },
  dpo: { samplesPerPrompt: 1, generalPrompts: false, requireSentenceEnd: false, keepTruncatedRejected: true, maxTokens: 24 },
  reflection: { samplesPerPrompt: 2, maxTokens: 160 },
};

export const SMALL_EVAL = {
  evals: ['classifier', 'identity', 'traitExpression', 'capability'],
  bootstrap: 100,
  concurrency: 4,
  classifier: { repliesPerPersona: 6, testPrompts: 3, epochs: 40 },
  traitExpression: { samplesPerTrait: 1 },
};

/** A temporary project: the constitution and an experiment file written from `experiment`. */
export function writeProject(experiment: Record<string, unknown>): { dir: string; file: string; runDir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'persona-lab-run-'));
  writeFileSync(join(dir, 'salt.yaml'), stringify(captainSalt));
  const runDir = join(dir, 'runs', String(experiment.name));
  const file = join(dir, 'experiment.yaml');
  writeFileSync(file, stringify({ constitutions: ['salt.yaml'], output: runDir, ...experiment }));
  return { dir, file, runDir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Every journal file under a run, with the keys it holds (in file order, duplicates included).
 * A line that is not JSON (a torn tail while a writer runs) throws unless `whileWriting`.
 */
export function journalKeys(runDir: string, whileWriting = false): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const parse = (line: string, path: string): string[] => {
    try {
      return [(JSON.parse(line) as { key: string }).key];
    } catch (error) {
      if (whileWriting) return [];
      throw new Error(`${path}: a line that is not JSON: ${line.slice(0, 80)}`, { cause: error });
    }
  };
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    // Directory entries carry their type, so a temporary file renamed away mid-walk is no error.
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.jsonl') && dir.includes('journals')) {
        const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
        out.set(path, lines.flatMap((l) => parse(l, path)));
      }
    }
  };
  walk(runDir);
  return out;
}

/**
 * Starts `persona-lab run file` in a child and kills it with SIGKILL as soon as `ready()` holds;
 * fails if the run ends first. The child is killed whatever happens, so no writer outlives the test.
 */
export async function killRunWhen(file: string, ready: () => boolean, what: string): Promise<void> {
  const child = spawn(process.execPath, [resolve('bin/persona-lab.js'), '--no-cache', 'run', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  let finished = false;
  void exited.then(() => (finished = true));
  try {
    while (!ready()) {
      if (finished) assert.fail(`run finished before ${what}`);
      await sleep(20);
    }
  } finally {
    child.kill('SIGKILL');
  }
  assert.equal(await exited, null, 'killed, not exited');
}

/** Every file under a directory with its bytes, to show a refused command wrote nothing. */
export function snapshot(dir: string): string {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(`${p} ${readFileSync(p).toString('base64')}`);
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.join('\n');
}
