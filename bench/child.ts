/**
 * The benchmarks' child processes. Each server under test runs in its own child, so that its CPU
 * is its own and the client's is not: ChildServer starts one, waits until it listens, keeps the
 * last of what it said for error messages, and stops it. DnsFixture runs the fixture DNS server
 * (bench/dns-fixture-process.ts) the same way and speaks its line protocol, for the query counts
 * and CPU time the benchmarks report.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { canConnect, cpuSecondsOf } from './common.js';

/**
 * The last lines of a stream, and how many there were (blank lines are not counted).
 *
 * @example
 * const tail = new Tail();
 * tail.add('listening on inet:10027@127.0.0.1');
 * tail.count; // 1
 */
export class Tail {
  lines: string[] = [];
  count = 0;
  add(line: string): void {
    if (line.trim() === '') return;
    this.count++;
    this.lines.push(line);
    if (this.lines.length > 20) this.lines.shift();
  }
  get text(): string {
    return this.lines.join('\n');
  }
}

/**
 * Prints the warnings of a run, after a blank line, when there are any; first adds one for
 * each server that wrote anything (a peer that complains may be measuring its complaints), with
 * the last lines it wrote.
 *
 * @example
 * printWarnings(['the machine was shared'], servers.filter((s) => s.name !== 'null'));
 */
export function printWarnings(
  warnings: string[],
  servers: Iterable<{ name: string; stdout: Tail; stderr: Tail }>,
): void {
  for (const s of servers) {
    if (s.stdout.count + s.stderr.count > 0) {
      warnings.push(
        `${s.name} wrote ${s.stdout.count} line(s) to stdout and ${s.stderr.count} to stderr; the last:\n    ` +
          [...s.stderr.lines, ...s.stdout.lines].slice(-5).join('\n    '),
      );
    }
  }
  if (warnings.length) {
    console.log('');
    for (const w of warnings) console.log(`warning: ${w}`);
  }
}

/** How to run a server in a child process and tell when it is ready. */
export interface ChildServerOptions<Name extends string> {
  /** What the benchmark calls it, in its tables and error messages. */
  name: Name;
  command: string;
  args: string[];
  /** Its working directory; this process's when absent. */
  cwd?: string;
  /**
   * Ready once 127.0.0.1:port accepts a connection (a server told its port, which prints nothing
   * useful), or the unix socket at `path` does (then `listen` is `unix:PATH` and `port` 0), or
   * once it prints `listening on inet:PORT@HOST` on stdout (a server that chooses its own port
   * and says which).
   */
  ready: { port: number } | { path: string } | 'listening line';
  readyTimeoutMs: number;
  /** How long stop() waits after SIGTERM before SIGKILL; 3000 ms when absent. */
  stopGraceMs?: number;
}

const LISTENING = /^listening on (inet:(\d+)@[\d.]+)\s*$/;

/**
 * A server in a child process, with piped stdio: its exit, the tails of its stdout and stderr,
 * its CPU time, and a stop that closes stdin, sends SIGTERM, then SIGKILL after a grace period.
 *
 * @example
 * const server = await ChildServer.start({
 *   name: 'trivial',
 *   command: process.execPath,
 *   args: ['--import', 'tsx', 'bench/policy-null-server.ts', '--port=0', '--exit-on-stdin-eof'],
 *   ready: 'listening line',
 *   readyTimeoutMs: 20_000,
 * });
 * console.log(server.listen, server.cpuSeconds());
 * await server.stop();
 */
export class ChildServer<Name extends string = string> {
  readonly name: Name;
  readonly stdout = new Tail();
  readonly stderr = new Tail();
  readonly #child: ChildProcessByStdio<Writable, Readable, Readable>;
  readonly #stopGraceMs: number;
  readonly #exit: Promise<void>;
  readonly #closed: Promise<void>;
  #exited = false;
  #onLine: ((line: string) => void) | undefined;
  #port = 0;
  #listen = '';

  private constructor(options: ChildServerOptions<Name>) {
    this.name = options.name;
    this.#stopGraceMs = options.stopGraceMs ?? 3000;
    this.#child = spawn(options.command, options.args, {
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#child.stdin.on('error', () => {
      // The child went away; the exit handler reports it.
    });
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      this.stdout.add(line);
      this.#onLine?.(line);
    });
    createInterface({ input: this.#child.stderr }).on('line', (line) => this.stderr.add(line));
    this.#exit = new Promise((resolve) => {
      this.#child.once('exit', () => {
        this.#exited = true;
        resolve();
      });
    });
    this.#closed = new Promise((resolve) => this.#child.once('close', () => resolve()));
  }

  /**
   * Spawn it and wait until it listens. One that exits or does not listen in time is stopped, and
   * the error names it and shows what it said.
   */
  static async start<Name extends string>(
    options: ChildServerOptions<Name>,
  ): Promise<ChildServer<Name>> {
    const server = new ChildServer(options);
    try {
      if (options.ready === 'listening line') {
        const where = await server.#listeningLine(options.readyTimeoutMs);
        server.#listen = where.listen;
        server.#port = where.port;
      } else if ('path' in options.ready) {
        await server.#accepting(options.ready, options.readyTimeoutMs);
        server.#listen = `unix:${options.ready.path}`;
      } else {
        await server.#accepting(options.ready.port, options.readyTimeoutMs);
        server.#port = options.ready.port;
        server.#listen = `inet:${options.ready.port}@127.0.0.1`;
      }
      return server;
    } catch (err) {
      await server.stop();
      throw err;
    }
  }

  /** The port it listens on, on 127.0.0.1; 0 for a unix socket. */
  get port(): number {
    return this.#port;
  }

  /** Where it listens, as a listen spec: `inet:PORT@HOST` or `unix:PATH`. */
  get listen(): string {
    return this.#listen;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** What it said, for error messages: the tails of stderr, then stdout. */
  get said(): string {
    const parts = [this.stderr.text, this.stdout.text].filter(Boolean);
    return parts.length ? parts.join('\n') : '(nothing on stdout or stderr)';
  }

  /** CPU seconds (user + system) it has used so far, all threads; undefined off Linux. */
  cpuSeconds(): number | undefined {
    return cpuSecondsOf(this.#child.pid);
  }

  async #accepting(port: number | { path: string }, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.#exited) throw new Error(`${this.name} exited at start:\n${await this.#allSaid()}`);
      if (await canConnect(port)) return;
      if (Date.now() > deadline) {
        throw new Error(`${this.name} did not listen within ${timeoutMs} ms:\n${this.said}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  #listeningLine(timeoutMs: number): Promise<{ listen: string; port: number }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#onLine = undefined;
        reject(
          new Error(`${this.name}: no "listening on" line within ${timeoutMs} ms:\n${this.said}`),
        );
      }, timeoutMs);
      this.#onLine = (line) => {
        const m = LISTENING.exec(line);
        if (!m) return;
        clearTimeout(timer);
        this.#onLine = undefined;
        resolve({ listen: m[1]!, port: Number(m[2]) });
      };
      void this.#exit.then(async () => {
        const said = await this.#allSaid();
        // It said it listens after all (the line was still in the pipe), or the timer spoke.
        if (this.#onLine === undefined) return;
        clearTimeout(timer);
        this.#onLine = undefined;
        reject(new Error(`${this.name} exited at start:\n${said}`));
      });
    });
  }

  /**
   * What it said, once its pipes are drained: 'exit' can come before the last of stderr, which
   * is the part that says why. A grandchild holding the pipes open must not hang us, hence the cap.
   */
  async #allSaid(): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#closed, new Promise((r) => (timer = setTimeout(r, 500)))]);
    clearTimeout(timer);
    return this.said;
  }

  /** Close stdin, SIGTERM, and SIGKILL if it lingers. Safe to call more than once. */
  async stop(): Promise<void> {
    if (this.#exited) return;
    this.#child.stdin.end();
    this.#child.kill('SIGTERM');
    const killer = setTimeout(() => this.#child.kill('SIGKILL'), this.#stopGraceMs);
    await this.#exit;
    clearTimeout(killer);
  }

  /** Last resort from a synchronous exit handler. */
  killNow(): void {
    if (!this.#exited) this.#child.kill('SIGKILL');
  }
}

/** The fixture DNS server's counters since it started. */
export interface FixtureStats {
  queries: number;
  /** Its user + system CPU time. */
  cpuMicros: number;
}

/** The repository root: the fixture's working directory. */
const REPO = fileURLToPath(new URL('..', import.meta.url));

/**
 * The fixture DNS server (bench/dns-fixture-process.ts) in a child process, and its line
 * protocol: a `ready` line with its address first, then a `stats` line for each `stats` asked.
 * Its stderr is this process's, so whatever it says on the way out is seen.
 *
 * @example
 * const dns = await DnsFixture.start({ zoneFile: '/tmp/run/zone.json' });
 * const before = await dns.queries();
 * // … point resolvers at dns.address and run a round …
 * console.log((await dns.queries()) - before, 'queries');
 * await dns.stop();
 */
export class DnsFixture {
  readonly #child: ChildProcessByStdio<Writable, Readable, null>;
  readonly #lines: Interface;
  readonly #waiting: Array<(line: string) => void> = [];
  readonly #exit: Promise<void>;
  #exited = false;
  #address = '';

  private constructor(zoneFile: string | undefined, port: number | undefined) {
    // A fixed port takes the wrapper that binds it (bench/dns-fixture-on-port.ts); the plain
    // process takes an ephemeral one.
    const script = fileURLToPath(
      new URL(
        port === undefined ? './dns-fixture-process.ts' : './dns-fixture-on-port.ts',
        import.meta.url,
      ),
    );
    const zone = zoneFile === undefined ? [] : [`--zone-json=${zoneFile}`];
    const fixed = port === undefined ? [] : [`--port=${port}`];
    this.#child = spawn(process.execPath, ['--import', 'tsx', script, ...zone, ...fixed], {
      cwd: REPO,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.#exit = new Promise((resolve) => {
      this.#child.once('exit', () => {
        this.#exited = true;
        for (const waiter of this.#waiting.splice(0)) waiter('');
        resolve();
      });
    });
    this.#child.stdin.on('error', () => {
      // The child went away; the exit handler reports it.
    });
    this.#lines = createInterface({ input: this.#child.stdout });
    this.#lines.on('line', (line) => this.#waiting.shift()?.(line));
  }

  /**
   * Start the child and wait for its address. It serves the SPF benchmark's zone
   * (bench/zone.ts), or with `zoneFile` the zone in that file (ZoneData as JSON). It listens on
   * an ephemeral port of 127.0.0.1, or with `port` on that one (say 53, inside a network
   * namespace of the benchmark's own, for a resolver that asks port 53 only).
   */
  static async start(options: { zoneFile?: string; port?: number } = {}): Promise<DnsFixture> {
    const fixture = new DnsFixture(options.zoneFile, options.port);
    try {
      const ready = await fixture.#next(20_000);
      if (ready.type !== 'ready' || typeof ready.address !== 'string') {
        throw new Error(`fixture DNS process: unexpected first line ${JSON.stringify(ready)}`);
      }
      fixture.#address = ready.address;
      return fixture;
    } catch (err) {
      await fixture.stop();
      throw err;
    }
  }

  /** Where it answers: `127.0.0.1:PORT`, UDP and TCP. */
  get address(): string {
    return this.#address;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Queries received and CPU used by the server since it started. */
  async stats(): Promise<FixtureStats> {
    if (this.#exited) throw new Error('fixture DNS process has exited');
    const reply = this.#next(5000);
    this.#child.stdin.write('stats\n');
    const stats = await reply;
    if (stats.type !== 'stats')
      throw new Error(`fixture DNS process: bad reply ${JSON.stringify(stats)}`);
    return { queries: Number(stats.queries), cpuMicros: Number(stats.cpuMicros) };
  }

  /** Queries received since it started. */
  async queries(): Promise<number> {
    return (await this.stats()).queries;
  }

  #next(timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      if (this.#exited) {
        reject(new Error('fixture DNS process has exited'));
        return;
      }
      const timer = setTimeout(() => {
        const i = this.#waiting.indexOf(take);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(new Error(`fixture DNS process: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      const take = (line: string) => {
        clearTimeout(timer);
        if (line === '') {
          reject(new Error('fixture DNS process exited'));
          return;
        }
        try {
          resolve(JSON.parse(line) as Record<string, unknown>);
        } catch {
          reject(new Error(`fixture DNS process: not JSON: ${line}`));
        }
      };
      this.#waiting.push(take);
    });
  }

  /** Close stdin, send SIGTERM, and SIGKILL if it lingers. Safe to call more than once. */
  async stop(): Promise<void> {
    this.#lines.close();
    if (this.#exited) return;
    this.#child.stdin.end();
    this.#child.kill('SIGTERM');
    const killer = setTimeout(() => this.#child.kill('SIGKILL'), 3000);
    await this.#exit;
    clearTimeout(killer);
  }

  /** Last resort from a synchronous exit handler. */
  killNow(): void {
    if (!this.#exited) this.#child.kill('SIGKILL');
  }
}
