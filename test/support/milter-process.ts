/**
 * A milter running as a child process, for end-to-end tests. The agreed contract: the milter is
 * started with `--listen SPEC` (an ephemeral port: `inet:0@127.0.0.1`), and prints one line
 * `listening on SPEC` on stdout when it accepts connections, SPEC naming the real port. Everything
 * else it prints (its log) is kept, so a test can look at it.
 *
 * @example
 * const milter = await startMilterProcess(process.execPath,
 *   ['--import', 'tsx', 'examples/sample-milter.ts', '--listen', 'inet:0@127.0.0.1']);
 * milter.spec; // 'inet:40123@127.0.0.1'
 * await milter.stop();
 */
import { type ChildProcess, spawn } from 'node:child_process';

export interface MilterProcess {
  /** The listen spec the milter printed, e.g. `inet:40123@127.0.0.1`. */
  readonly spec: string;
  readonly pid: number;
  /** Everything printed so far, stdout and stderr interleaved as they arrived. */
  output(): string;
  /** Exit code once exited (null if killed by a signal), undefined while running. */
  exitCode(): number | null | undefined;
  /** SIGTERM, then SIGKILL after `graceMs` (default 5 s). Safe to call twice. */
  stop(graceMs?: number): Promise<void>;
}

export interface MilterProcessOptions {
  cwd?: string;
  /** How long to wait for the `listening on` line; default 30 s (tsx compiles on first start). */
  readyTimeoutMs?: number;
}

const children = new Set<ChildProcess>();
let exitHook = false;

/** Starts the milter and resolves once it has printed where it listens. */
export function startMilterProcess(
  command: string,
  args: readonly string[],
  { cwd, readyTimeoutMs = 30_000 }: MilterProcessOptions = {},
): Promise<MilterProcess> {
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const c of children) c.kill('SIGKILL');
    });
  }
  let output = '';
  let exit: number | null | undefined;
  const exited = new Promise<void>((resolve) => {
    child.on('exit', (code) => {
      exit = code;
      children.delete(child);
      resolve();
    });
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    output += d;
  });

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 5_000) => {
    stopping ??= (async () => {
      if (exit !== undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    })();
    return stopping;
  };

  return new Promise((resolve, reject) => {
    let stdoutLine = '';
    let ready = false;
    const timer = setTimeout(() => {
      void stop(0);
      reject(
        new Error(`milter did not say "listening on" within ${readyTimeoutMs} ms:\n${output}`),
      );
    }, readyTimeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    void exited.then(() => {
      if (ready) return;
      clearTimeout(timer);
      reject(new Error(`milter exited (${exit}) before listening:\n${output}`));
    });
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      output += d;
      if (ready) return;
      stdoutLine += d;
      const m = /^listening on (\S+)\s*$/m.exec(stdoutLine);
      if (!m) return;
      ready = true;
      clearTimeout(timer);
      resolve({
        spec: m[1]!,
        pid: child.pid ?? 0,
        output: () => output,
        exitCode: () => exit,
        stop,
      });
    });
  });
}
