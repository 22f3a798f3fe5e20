/**
 * Child process for the crash test: runs generate() against the loopback server at BASE_URL into
 * RUN_DIR. The parent kills it with SIGKILL mid-run, then runs it again to completion.
 */
import { generate } from '../../src/data/index.js';
import { createChatModel } from '../../src/providers/index.js';
import { openRun, tess } from './support.js';
import { CRASH_OPTIONS } from './crash-options.js';

const baseURL = process.env.BASE_URL!;
const model = (name: string) => createChatModel(`openai:${name}@${baseURL}`, { noCache: true, retry: { maxAttempts: 1 } });
const [teacher, student, generator] = await Promise.all([model('teacher'), model('student'), model('generator')]);
const run = openRun(process.env.RUN_DIR!);
await generate({ seeds: [7] }, [tess], { teacher, subject: student, generator }, run, CRASH_OPTIONS, { baseDir: process.cwd() });
run.close();
process.stdout.write('done\n');
