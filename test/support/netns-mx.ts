/**
 * A remote MX that a real call-back can reach: SMTP servers (test/support/netns-mx-server.ts)
 * running inside a network namespace of their own, on 10.250.0.2, joined to this machine by a
 * veth pair whose host side is 10.250.0.1/30. The daemon, in the root namespace, counts every
 * address of its interfaces and loopback as its own, and never calls an MX there (the fraud rules
 * of docs/cbv.md); 10.250.0.2 is on no interface of the root namespace, so it is called like any
 * remote host, and nothing leaves the machine. The ports inside the namespace are its own: the
 * servers listen on fixed ones, which the daemon's `[cbv] port` names.
 *
 * - The namespace has a fixed name (NAMESPACE) and the host side of the veth too (HOST_LINK): a
 *   run that was killed outright may have left both, and `startNamespaceMx` deletes them first
 *   (so two runs at once on one machine would clash: the addresses are fixed as well).
 *   The servers' process reads its stdin and ends with it, so none outlives the test process.
 * - `close()` ends the servers' process and deletes the namespace (which takes the veth pair
 *   with it); an exit hook does the same for a test that never got there.
 * - Root only (with CAP_NET_ADMIN and CAP_SYS_ADMIN, which a container may withhold), and `ip`
 *   (iproute2): `whyNoNamespaceMx()` says what is missing.
 *
 * @example
 * const mx = await startNamespaceMx([{ kind: 'smtp', port: 2525 }]);
 * try {
 *   const before = await mx.snapshot();
 *   // ... something calls 10.250.0.2:2525 ...
 *   const after = await mx.snapshot();
 *   after.connections - before.connections  // conversations in between
 * } finally {
 *   await mx.close();
 * }
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { NamespaceMxServer, NamespaceMxSpec } from './netns-mx-server.js';
import { findProgram } from './programs.js';

export type { NamespaceMxServer } from './netns-mx-server.js';

export const NAMESPACE = 'mailgate-test-mx';
/** The veth pair: HOST_LINK in the root namespace, NAMESPACE_LINK inside. */
export const HOST_LINK = 'mgtestmx0';
const NAMESPACE_LINK = 'mgtestmx1';
/** The MX's address, inside the namespace. */
export const MX_ADDRESS = '10.250.0.2';
/** This machine's side of the veth. */
export const HOST_ADDRESS = '10.250.0.1';
const PREFIX = 30;

const SERVER_SCRIPT = fileURLToPath(new URL('./netns-mx-server.ts', import.meta.url));
const START_TIMEOUT_MS = 15_000;
const SNAPSHOT_TIMEOUT_MS = 5_000;

/** What the fixture MX has seen, all its servers together. */
export interface MxSnapshot {
  /** Connections accepted so far. */
  connections: number;
  /** Every command line received so far, in order (`MAIL FROM:<>`, ...). */
  commands: string[];
}

export interface NamespaceMx {
  readonly namespace: string;
  readonly address: string;
  /** What the servers have seen so far (asked of their process, see netns-mx-server.ts). */
  snapshot(): Promise<MxSnapshot>;
  /** Ends the servers and deletes the namespace. Safe to call twice. */
  close(): Promise<void>;
}

function ip(args: string[]): { ok: boolean; out: string } {
  const run = spawnSync(findProgram('ip') ?? 'ip', args, { encoding: 'utf8' });
  return {
    ok: !run.error && run.status === 0,
    out: (run.error?.message ?? `${run.stdout}${run.stderr}`).trim(),
  };
}

/**
 * Why the fixture MX cannot run here (e.g. `ip (iproute2, not installed)`), or undefined when it
 * can.
 */
export function whyNoNamespaceMx(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces (Linux only)';
  if (process.getuid?.() !== 0) return 'root (making a network namespace needs it)';
  const lacking = lackingCapabilities();
  if (lacking.length) {
    const them = lacking.length > 1 ? 'them' : 'it';
    return `${lacking.join(' and ')} (root here lacks ${them}: a container?)`;
  }
  if (!findProgram('ip')) return 'ip (iproute2, not installed)';
  const probe = ip(['netns', 'list']);
  if (!probe.ok) return `a working \`ip netns\` (${probe.out})`;
  return undefined;
}

/** The capabilities making a namespace and a veth pair take that this process lacks. */
function lackingCapabilities(): string[] {
  let effective: bigint;
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    effective = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? '0'}`);
  } catch {
    return [];
  }
  const needed: [string, bigint][] = [
    ['CAP_NET_ADMIN', 12n],
    ['CAP_SYS_ADMIN', 21n],
  ];
  return needed.filter(([, bit]) => ((effective >> bit) & 1n) === 0n).map(([name]) => name);
}

/** Deletes the namespace and the host side of the veth, if there; quiet when they are not. */
function removeNamespace(): void {
  ip(['netns', 'delete', NAMESPACE]);
  // Normally gone with the namespace; it stays while a process keeps the namespace alive.
  ip(['link', 'delete', HOST_LINK]);
}

function makeNamespace(): void {
  const steps: string[][] = [
    ['netns', 'add', NAMESPACE],
    ['link', 'add', HOST_LINK, 'type', 'veth', 'peer', 'name', NAMESPACE_LINK, 'netns', NAMESPACE],
    ['addr', 'add', `${HOST_ADDRESS}/${PREFIX}`, 'dev', HOST_LINK],
    ['link', 'set', HOST_LINK, 'up'],
    ['-n', NAMESPACE, 'addr', 'add', `${MX_ADDRESS}/${PREFIX}`, 'dev', NAMESPACE_LINK],
    ['-n', NAMESPACE, 'link', 'set', NAMESPACE_LINK, 'up'],
    ['-n', NAMESPACE, 'link', 'set', 'lo', 'up'],
  ];
  for (const step of steps) {
    const run = ip(step);
    if (!run.ok) {
      removeNamespace();
      throw new Error(`netns mx: ip ${step.join(' ')} failed: ${run.out}`);
    }
  }
}

// What the exit hook cleans up: a test that died before close().
let live: ChildProcessWithoutNullStreams | undefined;
let exitHook = false;
function cleanUpNow(): void {
  live?.kill('SIGKILL');
  live = undefined;
  removeNamespace();
}
function watch(child: ChildProcessWithoutNullStreams): void {
  live = child;
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    if (live) cleanUpNow();
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      if (live) cleanUpNow();
      // Other hooks (the Postfix rig's) raise the signal again themselves; without them, do it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

/**
 * Makes the namespace (deleting a leftover one first) and starts the servers in it; resolves
 * once they listen. Throws, after cleaning up, when a step fails.
 */
export async function startNamespaceMx(servers: NamespaceMxServer[]): Promise<NamespaceMx> {
  removeNamespace();
  makeNamespace();
  const spec: NamespaceMxSpec = { address: MX_ADDRESS, servers };
  const tsx = import.meta.resolve('tsx');
  const child = spawn(
    findProgram('ip') ?? 'ip',
    [
      'netns',
      'exec',
      NAMESPACE,
      process.execPath,
      '--import',
      tsx,
      SERVER_SCRIPT,
      JSON.stringify(spec),
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  watch(child);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const waiting = new Map<number, (s: MxSnapshot) => void>();
  let onReady: ((error?: Error) => void) | undefined;
  createInterface({ input: child.stdout }).on('line', (line) => {
    let message: { ready?: number[]; error?: string; snapshot?: number } & Partial<MxSnapshot>;
    try {
      message = JSON.parse(line);
    } catch {
      return;
    }
    if (message.ready) onReady?.();
    else if (message.error) onReady?.(new Error(`netns mx: ${message.error}`));
    else if (message.snapshot !== undefined) {
      waiting.get(message.snapshot)?.({
        connections: message.connections ?? 0,
        commands: message.commands ?? [],
      });
      waiting.delete(message.snapshot);
    }
  });

  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.stdin.end();
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
      if (live === child) live = undefined;
      removeNamespace();
    })();
    return closed;
  };

  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`netns mx: no servers within ${START_TIMEOUT_MS} ms`)),
        START_TIMEOUT_MS,
      );
      onReady = (error) => {
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      };
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`netns mx: the servers' process exited (${child.exitCode})`));
      });
    });
  } catch (error) {
    await close();
    throw new Error(`${(error as Error).message}\n${stderr}`, { cause: error });
  }

  let asked = 0;
  return {
    namespace: NAMESPACE,
    address: MX_ADDRESS,
    snapshot() {
      const n = ++asked;
      return new Promise<MxSnapshot>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(n);
          reject(new Error(`netns mx: no snapshot within ${SNAPSHOT_TIMEOUT_MS} ms\n${stderr}`));
        }, SNAPSHOT_TIMEOUT_MS);
        waiting.set(n, (s) => {
          clearTimeout(timer);
          resolve(s);
        });
        child.stdin.write('snapshot\n');
      });
    },
    close,
  };
}
