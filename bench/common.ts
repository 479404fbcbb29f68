/**
 * What the benchmarks share: settings from `--name=value` or the environment, a process's CPU
 * time, free ports and readiness probes on loopback, a seeded PRNG for workloads, and the
 * printing of figures.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';

/** A setting from `--name=value`, else the environment variable, else the fallback. */
export function setting(name: string, env: string, fallback: string): string {
  const prefix = `--${name}=`;
  const arg = process.argv.slice(2).find((a) => a.startsWith(prefix));
  return arg?.slice(prefix.length) ?? process.env[env] ?? fallback;
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
