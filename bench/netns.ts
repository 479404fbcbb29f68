/**
 * A network namespace for a benchmark: its own loopback, and its own /etc/resolv.conf naming
 * 127.0.0.1 (`ip netns exec` bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf for
 * what it runs). A server that reads its DNS servers from /etc/resolv.conf and asks port 53 then
 * asks the benchmark's fixture DNS server listening on 127.0.0.1:53 in there, and nothing
 * outside; the machine's own /etc/resolv.conf is never touched.
 *
 * The benchmark re-runs itself inside the namespace (runInNamespace) and removes the namespace
 * when that run is over, however it ended; a namespace left by a run that was killed outright is
 * removed by the next run (removeStaleNamespaces). Root only.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Namespaces are named PREFIX-PID, PID the process that made it. */
const PREFIX = 'mailgate-bench';
const NETNS_ETC = '/etc/netns';
/** Whether this process made /etc/netns (then it removes it again once empty). */
let madeNetnsEtc = false;

function ip(args: string[]): { ok: boolean; out: string } {
  const run = spawnSync('ip', args, { encoding: 'utf8' });
  return {
    ok: !run.error && run.status === 0,
    out: (run.error?.message ?? `${run.stdout}${run.stderr}`).trim(),
  };
}

/** Why a namespace cannot be made here, or undefined when it can. */
export function whyNoNamespace(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces are Linux only';
  if (process.getuid?.() !== 0) return 'making a network namespace needs root';
  const probe = ip(['netns', 'list']);
  if (!probe.ok) return `\`ip netns\` does not work here (iproute2 missing?): ${probe.out}`;
  return undefined;
}

/** A name for a namespace of this process. */
export function namespaceName(): string {
  return `${PREFIX}-${process.pid}`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove namespaces (and their /etc/netns directories) of earlier runs whose process is gone;
 * names of other programs are left alone. Returns the names removed.
 */
export function removeStaleNamespaces(): string[] {
  const list = ip(['netns', 'list']);
  if (!list.ok) return [];
  const removed: string[] = [];
  for (const line of list.out.split('\n')) {
    const name = line.trim().split(/\s+/)[0] ?? '';
    const m = new RegExp(`^${PREFIX}-(\\d+)$`).exec(name);
    if (!m || alive(Number(m[1]))) continue;
    deleteNamespace(name);
    removed.push(name);
  }
  return removed;
}

/**
 * Make the namespace: loopback up, a resolv.conf naming 127.0.0.1, and the whole port range for
 * outgoing connections (each milter transaction is a connection of its own; the sysctl is the
 * namespace's, not the machine's). Throws, after removing what it made, when a step fails.
 *
 * @example
 * const name = namespaceName();
 * createNamespace(name);
 * try { ... } finally { deleteNamespace(name); }
 */
export function createNamespace(name: string): void {
  const made = ip(['netns', 'add', name]);
  if (!made.ok) throw new Error(`ip netns add ${name} failed: ${made.out}`);
  try {
    const etc = join(NETNS_ETC, name);
    if (!existsSync(NETNS_ETC)) madeNetnsEtc = true;
    mkdirSync(etc, { recursive: true });
    writeFileSync(
      join(etc, 'resolv.conf'),
      '# bench: the fixture DNS server, inside this network namespace only\nnameserver 127.0.0.1\n',
      { mode: 0o644 },
    );
    const up = ip(['-n', name, 'link', 'set', 'lo', 'up']);
    if (!up.ok) throw new Error(`bringing up lo in ${name} failed: ${up.out}`);
    const range = spawnSync(
      'ip',
      ['netns', 'exec', name, 'sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=1024 65535'],
      { encoding: 'utf8' },
    );
    if (range.status !== 0) {
      // Not fatal: the default range is enough for short runs.
      process.stderr.write(`note: could not widen the port range in ${name}: ${range.stderr}\n`);
    }
  } catch (err) {
    deleteNamespace(name);
    throw err;
  }
}

/** Remove the namespace and its /etc/netns directory. Safe to call more than once. */
export function deleteNamespace(name: string): void {
  ip(['netns', 'delete', name]);
  rmSync(join(NETNS_ETC, name), { recursive: true, force: true });
  if (madeNetnsEtc) {
    try {
      rmdirSync(NETNS_ETC);
      madeNetnsEtc = false;
    } catch {
      // Not empty: somebody else's namespaces use it too.
    }
  }
}

/**
 * Whether this process runs inside the namespace `name` with its resolv.conf in place; throws
 * with what is wrong otherwise (the benchmark must not measure against the machine's DNS).
 */
export function checkInsideNamespace(name: string): void {
  const here = ip(['netns', 'identify', String(process.pid)]);
  if (!here.ok || here.out !== name) {
    throw new Error(
      `expected to run in network namespace ${name}, but \`ip netns identify\` says "${here.out}"`,
    );
  }
  const resolv = readFileSync('/etc/resolv.conf', 'utf8');
  const servers = resolv
    .split('\n')
    .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
    .filter((s): s is string => s !== undefined);
  if (servers.join(',') !== '127.0.0.1') {
    throw new Error(
      `/etc/resolv.conf in namespace ${name} names ${servers.join(', ') || 'no server'}, not 127.0.0.1 alone`,
    );
  }
}

/**
 * Run `command args` inside the namespace with this process's stdio, and resolve to its exit
 * code (128 + signal number when a signal ended it). SIGINT and SIGTERM sent to this process are
 * passed on; a child that has not ended 15 s later is killed.
 */
export function runInNamespace(name: string, command: string, args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', name, command, ...args], { stdio: 'inherit' });
    let killer: NodeJS.Timeout | undefined;
    const pass = (signal: NodeJS.Signals) => () => {
      child.kill(signal);
      killer ??= setTimeout(() => child.kill('SIGKILL'), 15_000);
    };
    const onInt = pass('SIGINT');
    const onTerm = pass('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    const done = (code: number) => {
      clearTimeout(killer);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(code);
    };
    child.once('error', (err) => {
      process.stderr.write(`ip netns exec ${name}: ${err.message}\n`);
      done(1);
    });
    child.once('exit', (code, signal) => {
      const numbers: Partial<Record<NodeJS.Signals, number>> = {
        SIGINT: 2,
        SIGKILL: 9,
        SIGTERM: 15,
      };
      done(code ?? 128 + (signal ? (numbers[signal] ?? 0) : 0));
    });
  });
}
