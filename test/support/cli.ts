import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const bin = resolve('bin/persona-lab.js');

/** Runs the real CLI in a child process. */
export function runCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** The URL a `persona-lab --json serve` child prints once it listens; rejects if it exits first. */
export function servedUrl(child: ChildProcess, stderr: () => string = () => ''): Promise<string> {
  return new Promise<string>((done, fail) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /"url": "([^"]+)"/.exec(out);
      if (m) done(m[1]);
    });
    child.on('exit', (code) => fail(new Error(`serve exited ${code}${stderr() ? `: ${stderr()}` : ''}`)));
  });
}
