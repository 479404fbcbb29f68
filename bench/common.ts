/**
 * What the benchmarks share: settings from `--name=value` or the environment, installing a
 * Debian peer when root, a process's CPU time, free ports and readiness probes on loopback, a
 * seeded PRNG for workloads, the error of a peer that failed, and the printing of figures.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';

/** A setting from `--name=value`, else the environment variable, else the fallback. */
export function setting(name: string, env: string, fallback: string): string {
  const prefix = `--${name}=`;
  const arg = process.argv.slice(2).find((a) => a.startsWith(prefix));
  return arg?.slice(prefix.length) ?? process.env[env] ?? fallback;
}

/**
 * A setting of positive whole numbers, comma-separated (`--concurrency=1,50`); throws `invalid`
 * (the benchmark's own message) when one is not.
 *
 * @example
 * const concurrencies = wholeNumbers('concurrency', 'BENCH_CONCURRENCY', '1,50', 'bench:x: …');
 */
export function wholeNumbers(
  name: string,
  env: string,
  fallback: string,
  invalid: string,
): number[] {
  const values = setting(name, env, fallback)
    .split(',')
    .map((s) => Number(s.trim()));
  if (values.some((v) => !(Number.isInteger(v) && v > 0))) throw new Error(invalid);
  return values;
}

/**
 * The first lines of a benchmark's mailgate configuration file: who wrote it, the hostname,
 * `[log] level = "warn"` (no line per request), the fixture DNS server and a SQLite store; the
 * doors' tables follow.
 *
 * @example
 * const lines = [...mailgateConfigHead('bench/policy.ts', 'mx.bench.test', dns, db), '[policyd]'];
 */
export function mailgateConfigHead(
  writtenBy: string,
  hostname: string,
  dnsAddress: string,
  dbPath: string,
): string[] {
  return [
    `# Written by ${writtenBy}; everything not set here has its default.`,
    `hostname = "${hostname}"`,
    '',
    '[log]',
    'level = "warn"',
    '',
    '[dns]',
    `servers = ["${dnsAddress}"]`,
    '',
    '[store]',
    `url = "sqlite:${dbPath}"`,
  ];
}

/**
 * A setting of names, comma-separated (`--servers=mailgate,postgrey`), each one of `allowed`;
 * throws, naming the benchmark (`bench`), when one is not. With `skipEmpty`, empty items go.
 *
 * @example
 * const only = names('only', 'BENCH_ONLY', 'mailgate,null', ['mailgate', 'null'], 'bench:milter');
 */
export function names<Name extends string>(
  name: string,
  env: string,
  fallback: string,
  allowed: readonly Name[],
  bench: string,
  { skipEmpty = false }: { skipEmpty?: boolean } = {},
): Name[] {
  const values = setting(name, env, fallback)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => !skipEmpty || s !== '');
  for (const value of values) {
    if (!(allowed as readonly string[]).includes(value)) {
      throw new Error(`${bench}: --${name} takes ${allowed.join(', ')}; got ${value}`);
    }
  }
  return values as Name[];
}

/**
 * Installs a Debian package with apt-get (`install -y`, and once more after `apt-get update` if
 * that fails) when this is root; returns why not when it could not, or undefined when it did.
 * `what` names the package in the message for a non-root run. With `noStart`, a policy-rc.d
 * that says 101 stops the package from starting a system service of its own while it installs.
 *
 * @example
 * const why = installDebianPackage('postgrey', 'postgrey (Debian package postgrey)', { noStart: true });
 * if (why) return { skipped: why };
 */
export function installDebianPackage(
  pkg: string,
  what: string,
  { noStart = false }: { noStart?: boolean } = {},
): string | undefined {
  if (process.getuid?.() !== 0) {
    return `${what} is not installed and this is not root, so it cannot be installed`;
  }
  const policyRc = '/usr/sbin/policy-rc.d';
  const createdPolicyRc = noStart && !existsSync(policyRc);
  if (createdPolicyRc) writeFileSync(policyRc, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    const apt = (args: string[]) =>
      spawnSync('apt-get', args, {
        encoding: 'utf8',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    console.log(`${pkg} is missing; installing it (apt-get install -y ${pkg})`);
    let install = apt(['install', '-y', '-q', pkg]);
    if (install.status !== 0) {
      apt(['update', '-q']);
      install = apt(['install', '-y', '-q', pkg]);
    }
    if (install.error || install.status !== 0) {
      const why = install.error?.message ?? install.stderr.trim().split('\n').slice(-3).join(' / ');
      return `${pkg} could not be installed: ${why}`;
    }
    return undefined;
  } finally {
    if (createdPolicyRc) rmSync(policyRc, { force: true });
  }
}

/**
 * The error for a request to a peer server that failed: its message, with what the server said
 * when it has exited.
 *
 * @example
 * throw serverError({ name: 'postgrey', exited: true, said: 'fatal: …' }, err);
 */
export function serverError(
  server: { name: string; exited: boolean; said: string },
  err: unknown,
): Error {
  const why = server.exited ? ` (it exited:\n${server.said})` : '';
  return new Error(`${server.name}: ${(err as Error).message}${why}`, { cause: err });
}

const CLOCK_TICKS = (() => {
  const run = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const value = Number(run.stdout?.trim());
  return Number.isInteger(value) && value > 0 ? value : 100;
})();

/** CPU seconds (user + system) a process has used so far, from /proc; undefined elsewhere. */
export function cpuSecondsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat(5), utime and stime; the list starts at field 3.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds the machine's processes have used since boot (user, nice and system time of all of
 * them, all cores), plus the time a hypervisor stole; from the first line of /proc/stat, undefined
 * elsewhere. Interrupt time is left out: the kernel does much of the loopback traffic of a
 * benchmark there. Compared with a benchmark's own processes, it tells whether something else
 * was using the machine during a round.
 */
export function machineCpuSeconds(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const [, user, nice, system, , , , , steal] = line.trim().split(/\s+/).map(Number);
    return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (steal ?? 0)) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** A port free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/** Whether something accepts connections on 127.0.0.1:port (or, given a path, on that unix socket). */
export function canConnect(port: number | { path: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const socket =
      typeof port === 'number' ? netConnect({ port, host: '127.0.0.1' }) : netConnect(port.path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** A number with thousands separators, `-` for none. */
export function fmt(n: number | undefined, digits = 0): string {
  if (n === undefined || !Number.isFinite(n)) return '-';
  return n.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** Rows as aligned columns: the columns in `left` padded on the right, the others on the left. */
export function table(rows: string[][], left: number[] = [0]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => (left.includes(i) ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/**
 * A small seeded PRNG (mulberry32): a benchmark's workload is the same, in the same order, on
 * every run.
 *
 * @example
 * const random = prng(7208);
 * random()  // the same number in [0, 1) on every run
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The timed rounds every benchmark runs: per concurrency, a warm-up round of each server, then
 * `rounds` rounds in which the servers take turns, the first of each round moving along so that
 * none always goes first. Prints one progress line per round.
 *
 * @example
 * const rounds = await alternatingRounds(servers, settings, 'tx/s', (s, c, secs) => round(s, cases, c, secs, dns));
 */
export async function alternatingRounds<
  S extends { name: string },
  R extends { perSecond: number },
>(
  servers: readonly S[],
  settings: {
    concurrencies: readonly number[];
    rounds: number;
    seconds: number;
    warmupSeconds: number;
  },
  unit: string,
  run: (server: S, concurrency: number, seconds: number) => Promise<R>,
): Promise<R[]> {
  const rounds: R[] = [];
  for (const concurrency of settings.concurrencies) {
    for (const server of servers) await run(server, concurrency, settings.warmupSeconds);
    for (let r = 0; r < settings.rounds; r++) {
      const order = servers.map((_, i) => servers[(i + r) % servers.length]!);
      const line: string[] = [];
      for (const server of order) {
        const result = await run(server, concurrency, settings.seconds);
        rounds.push(result);
        line.push(`${server.name} ${Math.round(result.perSecond).toLocaleString('en-US')}`);
      }
      process.stderr.write(`  C=${concurrency} round ${r + 1}: ${line.join(', ')} ${unit}\n`);
    }
  }
  return rounds;
}

/**
 * What a benchmark with child servers does when told to stop or when it runs too long: on
 * SIGINT or SIGTERM, `stopAll` (for at most 8 s) and exit 130, having called `interrupted`; past
 * `timeLimitMs`, say so and exit 1 (the exit handlers then kill the children). Returns the
 * function that takes the handlers away again.
 *
 * @example
 * const release = guardRun('bench:dkim', settings.timeLimitMs, stopAll, () => { interrupted = true; });
 */
export function guardRun(
  name: string,
  timeLimitMs: number,
  stopAll: () => Promise<unknown>,
  interrupted: () => void,
): () => void {
  let stopping = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    interrupted();
    process.stderr.write(`${name}: interrupted; stopping the servers\n`);
    const cap = new Promise((r) => setTimeout(r, 8000).unref());
    void Promise.race([stopAll(), cap]).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A hung step must not hang the run: give up loudly.
  const watchdog = setTimeout(() => {
    console.error(`${name}: still running after ${timeLimitMs} ms; giving up`);
    process.exit(1);
  }, timeLimitMs);
  watchdog.unref();
  return () => {
    clearTimeout(watchdog);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}
