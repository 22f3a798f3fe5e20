/**
 * Stands in for the vllm executable where vLLM cannot run (no GPU): takes `vllm serve` arguments as
 * vLLM does and serves the base model and each --lora-modules adapter by name from the local engine
 * over the real OpenAI protocol (persona-lab's server), until SIGTERM. Unknown flags are an error, so
 * a command line vLLM would reject fails here too for the flags it uses.
 */
import { createLocalChatModel } from '../../src/engine/provider.js';
import { parseLocalModelRef } from '../../src/providers/index.js';
import { serveModels } from '../../src/providers/server.js';
import type { ChatModel } from '../../src/providers/types.js';

const [command, base, ...rest] = process.argv.slice(2);
if (command !== 'serve' || !base) throw new Error(`usage: vllm serve <model> [options] (got ${process.argv.slice(2).join(' ')})`);
const opts: Record<string, string[]> = {};
let flag = '';
const flags = new Set(['--host', '--port', '--enable-lora', '--max-lora-rank', '--max-loras', '--lora-modules', '--served-model-name']);
for (const a of rest) {
  if (a.startsWith('--')) {
    if (!flags.has(a)) throw new Error(`unknown flag ${a}`);
    flag = a;
    opts[flag] = [];
  } else opts[flag].push(a);
}
const rank = Number(opts['--max-lora-rank']?.[0] ?? 16);
const models: Record<string, ChatModel> = { [opts['--served-model-name']?.[0] ?? base]: createLocalChatModel(parseLocalModelRef(`local:${base}`)) };
for (const module of opts['--lora-modules'] ?? []) {
  if (!('--enable-lora' in opts)) throw new Error('--lora-modules needs --enable-lora');
  const [name, path] = module.split('=');
  const { readFileSync } = await import('node:fs');
  const r = (JSON.parse(readFileSync(`${path}/adapter_config.json`, 'utf8')) as { r: number }).r;
  if (r > rank) throw new Error(`LoRA rank ${r} is greater than max_lora_rank ${rank}`);
  models[name] = createLocalChatModel(parseLocalModelRef(`local:${base}+${path}`));
}
const handle = await serveModels(models, { host: opts['--host']?.[0] ?? '127.0.0.1', port: Number(opts['--port']?.[0] ?? 8000) });
console.log(`serving ${Object.keys(models).join(', ')} at ${handle.url}`);
process.once('SIGTERM', () => void handle.close().then(() => process.exit(0)));
