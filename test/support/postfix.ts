/**
 * A throwaway Postfix on loopback for end-to-end tests: its own config, queue and data
 * directories under a fresh temporary directory, smtpd on 127.0.0.1 and a free port, everything
 * relayed to an SMTP sink of ours (test/support/smtp-sink.ts), its log in a file. Nothing under
 * /etc is changed and a system Postfix, if any, is never touched: every command gets
 * `-c <our config directory>`.
 *
 * How it runs (see docs/integration/postfix.md for the parameters):
 * - `postfix -c DIR start` as root. Its integrity check (`post-install create-missing`) creates the
 *   queue directories with the owners Postfix wants (mail_owner `postfix`, setgid_group
 *   `postdrop`); we only make data_directory belong to mail_owner. `master -w` returns once the
 *   master has bound its listeners, so the rig is ready when the command exits 0. No terminal or
 *   syslog is needed: maillog_file (Postfix >= 3.4) goes through the postlog service.
 * - Not `postfix start-fg`, nor `start` under `script`: with maillog_file set, plain `start` needs
 *   no terminal and no syslog, and it is the only form that says when Postfix is ready (start-fg
 *   would leave us polling the port, and its master would belong to our process tree).
 * - A port taken between our probe and Postfix's bind makes `start` fail (`fatal: bind ... Address
 *   already in use` in the maillog); we retry with another port, up to five times.
 * - `stop()` runs `postfix -c DIR stop`, then waits up to 10 s until neither the master nor any
 *   process working in the queue directory is left, SIGKILLs what is (the master's process group
 *   first), closes the sink and removes the directory (kept with MAILGATE_KEEP_POSTFIX=1). Hooks
 *   on exit, SIGINT and SIGTERM kill any master still running, so a test that dies leaves no
 *   Postfix behind.
 *
 * @example
 * const rig = await startPostfix({ milter: 'inet:9999@127.0.0.1' });
 * try {
 *   const run = await rig.swaks(['--from', 'a@example.com', '--to', 'b@example.net']);
 *   const delivery = await rig.nextDelivery();
 * } finally {
 *   await rig.stop();
 * }
 */
import { spawn } from 'node:child_process';
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { chmod, chown, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findProgram, type ProgramRun, postfixVersion, runProgram } from './programs.js';
import { type Delivery, type NextOptions, type SmtpSink, startSmtpSink } from './smtp-sink.js';
import { parseSwaksTranscript, type SmtpExchange } from './smtp-transcript.js';

export interface PostfixOptions {
  /**
   * The milter for smtpd_milters, as MTAs write listen specs (`inet:PORT@HOST`,
   * `inet6:PORT@HOST`, `unix:/path`) or in Postfix's own form (`inet:HOST:PORT`). None when
   * undefined or empty.
   */
  milter?: string;
  /**
   * More main.cf parameters. One the rig sets already takes the rig's entry's place (never a
   * second entry: see mainCfText); a new one is added after the rig's.
   */
  main?: Record<string, string>;
  /** Default 30 s for `postfix start`. */
  startTimeoutMs?: number;
  /** Picks smtpd's port for each start attempt; default freePort. (The rig's own test uses it.) */
  choosePort?: () => Promise<number>;
}

/** One message in the Postfix queue, as `postqueue -j` describes it. */
export interface QueueEntry {
  queue_name: 'incoming' | 'active' | 'deferred' | 'hold' | 'maildrop' | string;
  queue_id: string;
  sender: string;
  recipients: { address: string; delay_reason?: string }[];
}

export interface SwaksRun extends ProgramRun {
  /** The dialogue as swaks printed it, one entry per command and its reply. */
  transcript: SmtpExchange[];
}

export interface PostfixRig {
  /** The temporary directory holding everything. */
  readonly dir: string;
  /** config_directory: pass as `-c` to postconf, postqueue, postsuper. */
  readonly configDir: string;
  readonly queueDir: string;
  readonly maillogPath: string;
  /** smtpd's port on 127.0.0.1. */
  readonly smtpPort: number;
  /** The smtpd_milters value as written to main.cf ('' for none). */
  readonly milter: string;
  readonly sink: SmtpSink;
  /** The next message relayed to the sink (see SmtpSink.next). */
  nextDelivery(options?: NextOptions): Promise<Delivery>;
  /** The whole maillog so far ('' before the first line). */
  maillog(): string;
  /** Waits until a maillog line matches, and returns it; rejects after the timeout (default 10 s). */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** The queue, from `postqueue -j`. */
  queue(): Promise<QueueEntry[]>;
  /** A parameter's value as configured (`postconf -h`, not expanded). */
  postconf(name: string): Promise<string>;
  /**
   * A queued message's header and body (`postcat -hb -q ID`) with CRLF line ends, e.g. a message
   * on hold that will never reach the sink.
   */
  postcat(queueId: string): Promise<string>;
  /** Runs swaks against smtpd (`--server 127.0.0.1:PORT` is added). */
  swaks(args: readonly string[], timeoutMs?: number): Promise<SwaksRun>;
  /** Stops Postfix and the sink, and removes the directory. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Converts a listen spec as Sendmail and mailgate write it to Postfix's milter syntax:
 * `inet:PORT@HOST` → `inet:HOST:PORT`, `inet6:PORT@HOST` → `inet:[HOST]:PORT`,
 * `local:/path` → `unix:/path`. Postfix forms pass unchanged.
 *
 * @example
 * toPostfixMilter('inet:8891@127.0.0.1'); // 'inet:127.0.0.1:8891'
 */
export function toPostfixMilter(spec: string): string {
  const sendmail = /^(inet6?):(\d+)@(.+)$/.exec(spec);
  if (sendmail) {
    const [, family, port, host] = sendmail as unknown as [string, string, string, string];
    const bare = host.replace(/^\[(.*)\]$/, '$1');
    return family === 'inet6' || bare.includes(':')
      ? `inet:[${bare}]:${port}`
      : `inet:${bare}:${port}`;
  }
  if (spec.startsWith('local:')) return `unix:${spec.slice('local:'.length)}`;
  return spec;
}

/** A port that was free on 127.0.0.1 a moment ago (bound to 0, read, released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** main.cf for the rig. Every value here is documented in docs/integration/postfix.md. */
function mainCf(dir: string, sinkPort: number, milter: string): [string, string][] {
  const [major = 0, minor = 0] = postfixVersion() ?? [];
  const level = major > 3 || (major === 3 && minor >= 6) ? '3.6' : '2';
  return [
    ['compatibility_level', level],
    ['queue_directory', join(dir, 'queue')],
    ['data_directory', join(dir, 'data')],
    ['mail_owner', 'postfix'],
    ['setgid_group', 'postdrop'],
    // Logging without syslog.
    ['maillog_file', join(dir, 'maillog')],
    ['maillog_file_prefixes', dir],
    // Who we are; loopback only, IPv4 only.
    ['myhostname', 'mx.mailgate.test'],
    ['mydomain', 'mailgate.test'],
    ['myorigin', '$myhostname'],
    ['inet_interfaces', '127.0.0.1'],
    ['inet_protocols', 'ipv4'],
    ['mynetworks', '127.0.0.0/8'],
    ['smtpd_banner', '$myhostname ESMTP mailgate test rig'],
    // No local delivery: every recipient goes to the sink through relayhost.
    ['mydestination', ''],
    ['local_recipient_maps', ''],
    ['local_transport', 'error:5.1.1 no local delivery in the test rig'],
    ['alias_maps', ''],
    ['alias_database', ''],
    ['relay_domains', ''],
    ['relayhost', `[127.0.0.1]:${sinkPort}`],
    ['smtpd_relay_restrictions', 'permit_mynetworks, reject'],
    ['smtpd_recipient_restrictions', 'permit_mynetworks, reject'],
    // Nothing touches DNS.
    ['smtp_dns_support_level', 'disabled'],
    ['smtp_host_lookup', 'native'],
    ['smtpd_peername_lookup', 'no'],
    ['smtp_tls_security_level', 'none'],
    ['smtpd_tls_security_level', 'none'],
    // Deliver at once; retry quickly if the sink hiccups.
    ['queue_run_delay', '1s'],
    ['minimal_backoff_time', '1s'],
    ['maximal_backoff_time', '2s'],
    ['biff', 'no'],
    ['append_dot_mydomain', 'no'],
    // The milter: the values docs/integration/postfix.md recommends.
    ['smtpd_milters', milter],
    ['non_smtpd_milters', ''],
    ['milter_protocol', '6'],
    ['milter_default_action', 'tempfail'],
    ['milter_macro_daemon_name', '$myhostname'],
    ['milter_connect_timeout', '10s'],
    ['milter_command_timeout', '10s'],
    ['milter_content_timeout', '30s'],
  ];
}

/**
 * main.cf's text: the rig's parameters with `extra`'s values in place of the rig's own, and
 * `extra`'s new ones after them. Never two entries of one name: Postfix takes the last, but every
 * process that reads the file logs "overriding earlier entry" for each duplicate through the
 * postlog socket, whose queue (net.unix.max_dgram_qlen, 10) a few of them per process can fill
 * before postlogd reads it; the master then blocks writing its log (deaf to SIGTERM as well) and
 * smtpd never greets.
 *
 * @example
 * mainCfText([['a', '1'], ['b', '2']], { b: '3', c: '4' }); // 'a = 1\nb = 3\nc = 4\n'
 */
export function mainCfText(
  own: readonly (readonly [string, string])[],
  extra: Readonly<Record<string, string>> = {},
): string {
  const params = new Map<string, string>();
  for (const [name, value] of own) params.set(name, value);
  for (const [name, value] of Object.entries(extra)) params.set(name, value);
  return [...params].map(([name, value]) => `${name} = ${value}\n`).join('');
}

/** master.cf: the services the rig needs, none chrooted (there is no chroot to set up). */
function masterCf(smtpPort: number): string {
  return [
    `127.0.0.1:${smtpPort} inet n - n - - smtpd`,
    'pickup    unix  n - n 60 1 pickup',
    'cleanup   unix  n - n -  0 cleanup',
    'qmgr      unix  n - n 300 1 qmgr',
    'rewrite   unix  - - n -  - trivial-rewrite',
    'bounce    unix  - - n -  0 bounce',
    'defer     unix  - - n -  0 bounce',
    'trace     unix  - - n -  0 bounce',
    'verify    unix  - - n -  1 verify',
    'flush     unix  n - n 1000? 0 flush',
    'proxymap  unix  - - n -  - proxymap',
    'smtp      unix  - - n -  - smtp',
    'relay     unix  - - n -  - smtp',
    'showq     unix  n - n -  - showq',
    'error     unix  - - n -  - error',
    'retry     unix  - - n -  - error',
    'discard   unix  - - n -  - discard',
    'anvil     unix  - - n -  1 anvil',
    'scache    unix  - - n -  1 scache',
    'postlog   unix-dgram n - n - 1 postlogd',
    '',
  ].join('\n');
}

// Masters still running, killed by the exit hook if a test never reached stop(): on a normal exit,
// an uncaught exception, or SIGINT/SIGTERM (which otherwise end Node without running exit hooks).
const running = new Set<number>();
let exitHook = false;
function killRunning(): void {
  for (const master of running) {
    try {
      process.kill(master, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}
function watchMaster(pid: number): void {
  running.add(pid);
  if (exitHook) return;
  exitHook = true;
  process.on('exit', killRunning);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killRunning();
      process.kill(process.pid, signal);
    });
  }
}

/** True while the process exists and is not a zombie (an exited child nobody reaped yet). */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

/** The running processes whose working directory is inside `dir` (Postfix daemons live in the queue directory). */
export function processesIn(dir: string): number[] {
  const found: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return found;
  }
  for (const entry of entries) {
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if ((cwd === dir || cwd.startsWith(`${dir}/`)) && isRunning(Number(entry)))
        found.push(Number(entry));
    } catch {
      // gone, or not ours to look at
    }
  }
  return found;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * After `postfix stop`: waits up to 10 s for the master and its daemons (every process working in
 * the queue directory) to exit, then SIGKILLs what is left, the master's process group first.
 */
async function endProcesses(masterPid: number, queueDir: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  const left = () => [
    ...(masterPid > 0 && isRunning(masterPid) ? [masterPid] : []),
    ...processesIn(queueDir),
  ];
  while (left().length > 0 && Date.now() < deadline) await sleep(50);
  const stragglers = left();
  if (stragglers.length === 0) return;
  console.error(`postfix rig: killing processes left after postfix stop: ${stragglers.join(' ')}`);
  for (const target of masterPid > 0 ? [-masterPid, ...stragglers] : stragglers) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** A user's uid and gid, from /etc/passwd (where the Debian package creates `postfix`), else `id`. */
async function uidGid(user: string): Promise<{ uid: number; gid: number }> {
  for (const line of safeRead('/etc/passwd').split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (name === user && uid && gid) return { uid: Number(uid), gid: Number(gid) };
  }
  const [uid, gid] = await Promise.all([
    runProgram('id', ['-u', user]),
    runProgram('id', ['-g', user]),
  ]);
  if (uid.code !== 0 || gid.code !== 0) throw new Error(`postfix rig: no user ${user}`);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Runs `postfix -c DIR <command>` with its output in a file (the daemon may keep stdio open). */
async function postfixCommand(
  dir: string,
  command: string,
  timeoutMs: number,
): Promise<{ code: number | null; output: string }> {
  const logPath = join(dir, `postfix-${command}.out`);
  const fd = openSync(logPath, 'w');
  try {
    const child = spawn(findProgram('postfix') ?? 'postfix', ['-c', join(dir, 'etc'), command], {
      stdio: ['ignore', fd, fd],
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.on('exit', (status) => {
        clearTimeout(timer);
        resolve(status);
      });
    });
    return { code, output: readFileSync(logPath, 'utf8') };
  } finally {
    closeSync(fd);
  }
}

/** Starts a Postfix for a test; see the module comment. */
export async function startPostfix(options: PostfixOptions = {}): Promise<PostfixRig> {
  const dir = mkdtempSync(join(tmpdir(), 'mailgate-postfix-'));
  let sink: SmtpSink | undefined;
  try {
    await chmod(dir, 0o755);
    const configDir = join(dir, 'etc');
    const queueDir = join(dir, 'queue');
    const dataDir = join(dir, 'data');
    await Promise.all([configDir, queueDir, dataDir].map((d) => mkdir(d, { mode: 0o755 })));
    const owner = await uidGid('postfix');
    await chown(dataDir, owner.uid, owner.gid);
    sink = await startSmtpSink();
    const milter = options.milter ? toPostfixMilter(options.milter) : '';
    const maillogPath = join(dir, 'maillog');

    let smtpPort = 0;
    let lastFailure = '';
    for (let attempt = 0; attempt < 5 && !smtpPort; attempt++) {
      const port = await (options.choosePort ?? freePort)();
      const main = mainCfText(mainCf(dir, sink.port, milter), options.main);
      writeFileSync(join(configDir, 'main.cf'), main);
      writeFileSync(join(configDir, 'master.cf'), masterCf(port));
      const start = await postfixCommand(dir, 'start', options.startTimeoutMs ?? 30_000);
      if (start.code === 0) {
        smtpPort = port;
        break;
      }
      const log = safeRead(maillogPath);
      lastFailure = `postfix start exited ${start.code}:\n${start.output}\n${log.split('\n').slice(-20).join('\n')}`;
      // Someone took the port between our probe and Postfix's bind: try another one.
      if (!/address already in use|bind .* port/i.test(start.output + log)) break;
    }
    if (!smtpPort) throw new Error(`postfix rig: cannot start Postfix in ${dir}\n${lastFailure}`);

    const masterPid = Number(safeRead(join(queueDir, 'pid', 'master.pid')).trim());
    if (masterPid > 0) watchMaster(masterPid);
    const postfixBin = findProgram('postfix') ?? 'postfix';
    const sinkReady = sink;
    let stopped: Promise<void> | undefined;

    const rig: PostfixRig = {
      dir,
      configDir,
      queueDir,
      maillogPath,
      smtpPort,
      milter,
      sink: sinkReady,
      nextDelivery: (next) => sinkReady.next(next),
      maillog: () => safeRead(maillogPath),
      async waitForLog(pattern, timeoutMs = 10_000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const line = safeRead(maillogPath)
            .split('\n')
            .find((l) => pattern.test(l));
          if (line !== undefined) return line;
          if (Date.now() > deadline) {
            throw new Error(
              `postfix rig: no maillog line matches ${pattern} within ${timeoutMs} ms`,
            );
          }
          await sleep(100);
        }
      },
      async queue() {
        const run = await runProgram('postqueue', ['-c', configDir, '-j']);
        if (run.code !== 0) throw new Error(`postqueue -j exited ${run.code}: ${run.stderr}`);
        return run.stdout
          .split('\n')
          .filter((l) => l.trim())
          .map((l) => JSON.parse(l) as QueueEntry);
      },
      async postconf(name) {
        const run = await runProgram('postconf', ['-c', configDir, '-h', name]);
        if (run.code !== 0)
          throw new Error(`postconf -h ${name} exited ${run.code}: ${run.stderr}`);
        return run.stdout.replace(/\n$/, '');
      },
      async postcat(queueId) {
        const run = await runProgram('postcat', ['-c', configDir, '-hb', '-q', queueId]);
        if (run.code !== 0)
          throw new Error(`postcat -q ${queueId} exited ${run.code}: ${run.stderr}`);
        return run.stdout.replace(/\r?\n/g, '\r\n');
      },
      swaks: (args, timeoutMs) => swaks(['--server', `127.0.0.1:${smtpPort}`, ...args], timeoutMs),
      stop() {
        stopped ??= (async () => {
          if (masterPid > 0 && isRunning(masterPid)) {
            await runProgram(postfixBin, ['-c', configDir, 'stop'], { timeoutMs: 20_000 });
          }
          await endProcesses(masterPid, queueDir);
          running.delete(masterPid);
          await sinkReady.close();
          removeDir(dir);
        })();
        return stopped;
      },
    };
    return rig;
  } catch (error) {
    // A half-started Postfix: stop whatever runs from our directory, then clean up.
    const pid = Number(safeRead(join(dir, 'queue', 'pid', 'master.pid')).trim());
    if (pid > 0 && isRunning(pid)) {
      await runProgram(findProgram('postfix') ?? 'postfix', ['-c', join(dir, 'etc'), 'stop'], {
        timeoutMs: 20_000,
      }).catch(() => undefined);
    }
    await endProcesses(pid, join(dir, 'queue'));
    await sink?.close();
    removeDir(dir);
    throw error;
  }
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Removes the rig's directory, unless MAILGATE_KEEP_POSTFIX=1 asks to keep it for a post-mortem. */
function removeDir(dir: string): void {
  if (process.env['MAILGATE_KEEP_POSTFIX'] === '1') {
    console.error(`postfix rig: kept ${dir} (MAILGATE_KEEP_POSTFIX=1)`);
    return;
  }
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Runs the real swaks with a timeout (default 60 s; swaks' own per-command timeout is 30 s) and
 * parses its transcript. Never rejects for an SMTP failure: the caller checks `code` (swaks exits
 * 23 for MAIL, 24 when no RCPT was accepted, 25 for DATA, 26 for the end of data) and the
 * transcript.
 *
 * @example
 * const run = await swaks(['--server', '127.0.0.1:2525', '--to', 'b@example.net']);
 */
export async function swaks(args: readonly string[], timeoutMs = 60_000): Promise<SwaksRun> {
  const run = await runProgram('swaks', args, { timeoutMs });
  return { ...run, transcript: parseSwaksTranscript(run.stdout) };
}
