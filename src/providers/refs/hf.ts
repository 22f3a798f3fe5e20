/**
 * `hf:<org>/<name>[@<revision>][+<adapter dir>[*<scale>]]...`: a Hugging Face Hub model in the
 * shared Hub cache (HF_HOME / HF_HUB_CACHE), pulled before any stage runs (src/providers/hub), then
 * served by the engine like a local model directory.
 */
import { localProvider, parseShort, type LocalModelRef } from './local.js';
import type { ProviderEntry } from './types.js';

export const hfProvider: ProviderEntry<LocalModelRef> = {
  ...localProvider,
  grammar: ['hf:<org>/<name>[@<revision>][+<adapter dir>[*<scale>]]'],
  claims: (ref) => ref.startsWith('hf:'),
  parse: parseShort,
};
