/**
 * Progress for long work: a bar with counts and ETA on a TTY, throttled plain lines otherwise,
 * nothing with --json (stdout then carries only the machine-readable result).
 */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

export type ProgressMode = 'auto' | 'bar' | 'lines' | 'silent';

/**
 * A cli-progress format whose ETA reads "--" until there is a rate to estimate from (a bar that has
 * not moved yet would otherwise say "ETA 0s").
 */
export function barFormat(format: string): cliProgress.GenericFormatter {
  return (options, params, payload) => {
    const eta: unknown = params.eta;
    const unknown = params.value < params.total && (params.value === 0 || typeof eta !== 'number' || !Number.isFinite(eta));
    return cliProgress.Format.Formatter({ ...options, format: unknown ? format.replace('{eta_formatted}', '--') : format }, params, payload);
  };
}

export function createProgress(label: string, mode: ProgressMode = 'auto', stream: NodeJS.WriteStream = process.stderr): Progress {
  const resolved = mode === 'auto' ? (stream.isTTY ? 'bar' : 'lines') : mode;
  if (resolved === 'silent') return { update() {}, stop() {} };
  if (resolved === 'bar') {
    const bar = new cliProgress.SingleBar(
      { format: barFormat(`${label.padEnd(24)} {bar} {value}/{total} | ETA {eta_formatted}`), stream, hideCursor: true, etaBuffer: 50 },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(done, total) {
        if (!started) {
          bar.start(total, done);
          started = true;
        } else {
          bar.setTotal(total);
          bar.update(done);
        }
      },
      stop() {
        if (started) bar.stop();
      },
    };
  }
  let lastPrinted = 0;
  let last = { done: 0, total: 0 };
  const started = Date.now();
  const print = () => {
    const { done, total } = last;
    const elapsed = (Date.now() - started) / 1000;
    const eta = done > 0 && total > done ? ` eta ${Math.round((elapsed / done) * (total - done))}s` : '';
    stream.write(`${label}: ${done}/${total}${eta}\n`);
  };
  return {
    update(done, total) {
      last = { done, total };
      if (Date.now() - lastPrinted >= 2000 || done === total) {
        lastPrinted = Date.now();
        print();
      }
    },
    stop() {},
  };
}
