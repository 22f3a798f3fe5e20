/**
 * Models from the Hugging Face Hub: `hf:<org>/<name>[@<revision>]` references resolve to a snapshot
 * directory in the shared Hub cache (the one Python's huggingface_hub uses), pulled on first use.
 * Environment: HF_HOME / HF_HUB_CACHE (where), HF_ENDPOINT (which Hub), HF_TOKEN (gated and private
 * models), HF_HUB_OFFLINE (cache only).
 */
import cliProgress from 'cli-progress';
import { cachedSnapshot, hubOffline } from './cache.js';
import { parseHubRef, pullModel, type PullOptions, type PullProgress, type PullResult } from './pull.js';
import { InputError } from '../../core/errors.js';

export { cachedSnapshot, hfHome, hubCacheDir, hubEndpoint, hubOffline, hubRepoOfDir, hubSnapshotOfDir, repoCacheDir, repoFolderName } from './cache.js';
export { DEFAULT_INCLUDE, parseHubRef, pullModel, type HubRef, type PullOptions, type PullProgress, type PullResult, type PulledFile } from './pull.js';

export const isHubRef = (ref: unknown): ref is string => typeof ref === 'string' && ref.startsWith('hf:');

/** The local snapshot directory of `hf:<org>/<name>[@<revision>]`, pulled into the cache if missing. */
export async function resolveHubModel(ref: string, options: PullOptions = {}): Promise<string> {
  return (await pullModel(parseHubRef(ref), options)).dir;
}

/**
 * The same without the network: the cached snapshot, or bad input saying how to get it. Model
 * loading is synchronous; runs pull their Hub models before they start (pullHubModels).
 */
export function cachedHubModel(ref: string, env: NodeJS.ProcessEnv = process.env): string {
  const { repo, revision } = parseHubRef(ref);
  const dir = cachedSnapshot(repo, revision, env);
  if (!dir) {
    const how = hubOffline(env) ? 'offline mode is on (HF_HUB_OFFLINE); pull it with network access first' : `run \`persona-lab pull ${repo}${revision === 'main' ? '' : `@${revision}`}\``;
    throw new InputError(ref, '', `the model in the Hugging Face Hub cache (not there yet: ${how})`);
  }
  return dir;
}

/** A byte progress bar on stderr with size, speed and ETA (nothing when stderr is not a terminal). */
export function pullProgressBar(label: string, stream: NodeJS.WriteStream = process.stderr) {
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  const started = Date.now();
  const bar = new cliProgress.SingleBar(
    {
      stream,
      hideCursor: true,
      etaBuffer: 200,
      format: (options, params, payload: { file?: string }) => {
        const seconds = Math.max((Date.now() - started) / 1000, 1e-3);
        const eta = params.eta > 0 && Number.isFinite(params.eta) ? `${Math.round(params.eta)} s` : '-';
        const width = options.barsize ?? 30;
        const filled = Math.round((params.progress || 0) * width);
        return `${label} ${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${mib(params.value)}/${mib(params.total)} | ${mib(params.value / seconds)}/s | ETA ${eta} | ${payload.file ?? ''}`;
      },
    },
    cliProgress.Presets.shades_classic,
  );
  let startedBar = false;
  return {
    update(p: PullProgress) {
      if (!startedBar) {
        bar.start(p.totalBytes, p.bytes, { file: p.file });
        startedBar = true;
      } else bar.update(p.bytes, { file: p.file });
    },
    stop() {
      if (startedBar) bar.stop();
      startedBar = false;
    },
  };
}

/**
 * Preflight of a run: pulls every Hub model the references name (field -> reference), before any stage
 * starts, so a missing or gated model fails first and not hours in; its error names `file` and the
 * field. References of any other kind are ignored.
 */
export async function pullHubModels(refs: Record<string, unknown>, options: { file?: string; env?: NodeJS.ProcessEnv; progress?: boolean } = {}): Promise<PullResult[]> {
  const results = new Map<string, PullResult>();
  for (const [field, ref] of Object.entries(refs)) {
    if (!isHubRef(ref)) continue;
    const base = ref.split('+')[0];
    if (results.has(base)) continue;
    const bar = options.progress === false ? undefined : pullProgressBar(base);
    try {
      results.set(base, await pullModel(parseHubRef(base), { env: options.env, onProgress: bar?.update }));
    } catch (error) {
      if (error instanceof InputError && options.file) throw new InputError(options.file, field, error.message);
      throw error;
    } finally {
      bar?.stop();
    }
  }
  return [...results.values()];
}
