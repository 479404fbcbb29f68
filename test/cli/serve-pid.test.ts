// `mailgate serve --pid-file` and start-up failures, with the real CLI in a child process: the pid
// file appears with the child's pid and goes at SIGTERM or SIGINT, a second daemon on it is
// refused, a file that is no longer ours is left alone, and an address that cannot be bound is one
// line on stderr and a non-zero exit.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { processExists, readPidFile, refuseIfHeld, writePidFile } from '../../src/cli/pid-file.js';
import { describeListenFailure } from '../../src/cli/serve.js';
import { runCli } from '../support/run-cli.js';

const entry = fileURLToPath(new URL('../support/cli-entry.ts', import.meta.url));

let dir: string;
// A DNS "server" that never answers and counts what reaches it: start-up must not ask DNS.
let dns: UdpSocket;
let dnsPort = 0;
let dnsQueries = 0;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mailgate-serve-pid-'));
  dns = createSocket('udp4');
  dns.on('message', () => {
    dnsQueries += 1;
  });
  await new Promise<void>((resolve) => dns.bind(0, '127.0.0.1', resolve));
  dnsPort = dns.address().port;
});
after(async () => {
  dns?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A configuration whose doors listen where `listen` says (ephemeral ports by default). */
async function writeConfig(
  name: string,
  listen: { policyd?: string; milter?: string } = {},
): Promise<string> {
  const path = join(dir, `${name}.toml`);
  await writeFile(
    path,
    [
      '[dns]',
      `servers = ["127.0.0.1:${dnsPort}"]`,
      '[store]',
      `url = "sqlite:${join(dir, `${name}.db`)}"`,
      '[policyd]',
      `listen = ["${listen.policyd ?? 'inet:0@127.0.0.1'}"]`,
      '[milter]',
      `listen = ["${listen.milter ?? 'inet:0@127.0.0.1'}"]`,
      '',
    ].join('\n'),
  );
  return path;
}

interface Served {
  child: ChildProcess;
  /** Every JSON line on stdout so far. */
  lines: Array<Record<string, unknown>>;
  stderr(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

/** `mailgate serve ARGS` in a child process, resolved once it logged `started`. */
async function serve(args: string[]): Promise<Served> {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, 'serve', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  let partial = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const started = new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      partial += chunk;
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const text of parts) {
        if (!text) continue;
        const line = JSON.parse(text) as Record<string, unknown>;
        lines.push(line);
        if (line.msg === 'started') resolve();
      }
    });
    void exited.then((code) => reject(new Error(`serve exited (${code}) at start: ${stderr}`)));
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  void exited.then(() => clearTimeout(timer));
  await started;
  return { child, lines, stderr: () => stderr, exited };
}

/** The pid file's content once it is there; the daemon writes it just after `started`. */
async function pidFileOf(path: string): Promise<string> {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || Date.now() > deadline) throw err;
      await sleep(20);
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await readFile(path);
    return true;
  } catch {
    return false;
  }
}

/** A pid that named a process a moment ago and names none now. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((resolve) => child.on('close', resolve));
  assert.ok(child.pid !== undefined && !processExists(child.pid));
  return child.pid;
}

describe('mailgate serve --pid-file', () => {
  it('writes the pid once listening, asks no DNS at start, and removes it at SIGTERM', async () => {
    const config = await writeConfig('term');
    const pidPath = join(dir, 'term.pid');
    const queriesBefore = dnsQueries;
    const served = await serve(['--config', config, '--pid-file', pidPath]);
    try {
      assert.equal(await pidFileOf(pidPath), `${served.child.pid}\n`);
      // Written through a temporary file that was renamed: none is left beside it.
      assert.deepEqual(
        (await readdir(dir)).filter((name) => name.includes('term.pid')),
        ['term.pid'],
      );
      served.child.kill('SIGTERM');
      assert.equal(await served.exited, 0, served.stderr());
      assert.equal(await exists(pidPath), false);
      assert.ok(served.lines.some((l) => l.msg === 'stopped'));
      assert.equal(dnsQueries, queriesBefore, 'start-up sent DNS queries');
    } finally {
      served.child.kill('SIGKILL');
    }
  });

  it('refuses a second daemon on the same pid file, leaving the first one and its file', async () => {
    const pidPath = join(dir, 'shared.pid');
    const first = await serve(['--config', await writeConfig('first'), '--pid-file', pidPath]);
    try {
      const pid = String(first.child.pid);
      assert.equal(await pidFileOf(pidPath), `${pid}\n`);
      const second = await runCli([
        'serve',
        '--config',
        await writeConfig('second'),
        '--pid-file',
        pidPath,
      ]);
      assert.equal(second.code, 1, second.stderr);
      const lines = second.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, second.stderr);
      assert.match(
        lines[0]!,
        new RegExp(
          `^mailgate: pid file ${pidPath} names process ${pid} \\(node\\), which is running`,
        ),
      );
      // It stopped before listening: nothing on stdout.
      assert.equal(second.stdout, '');
      assert.equal(await readFile(pidPath, 'utf8'), `${pid}\n`);
      first.child.kill('SIGINT');
      assert.equal(await first.exited, 0, first.stderr());
      assert.equal(await exists(pidPath), false);
    } finally {
      first.child.kill('SIGKILL');
    }
  });

  it('replaces a stale file, and leaves one that another process wrote meanwhile', async () => {
    const pidPath = join(dir, 'stale.pid');
    await writeFile(pidPath, `${await deadPid()}\n`);
    const served = await serve(['--config', await writeConfig('stale'), '--pid-file', pidPath]);
    try {
      assert.equal(await pidFileOf(pidPath), `${served.child.pid}\n`);
      const other = `${await deadPid()}\n`;
      await writeFile(pidPath, other);
      served.child.kill('SIGTERM');
      assert.equal(await served.exited, 0, served.stderr());
      assert.equal(await readFile(pidPath, 'utf8'), other);
    } finally {
      served.child.kill('SIGKILL');
    }
  });

  it('fails in one line when the pid file cannot be written, and stops listening', async () => {
    const pidPath = join(dir, 'no-such-dir', 'mailgate.pid');
    const run = await runCli([
      'serve',
      '--config',
      await writeConfig('nodir'),
      '--pid-file',
      pidPath,
    ]);
    assert.equal(run.code, 1, run.stderr);
    assert.equal(
      run.stderr,
      `mailgate: cannot write the pid file ${pidPath}: no such file or directory\n`,
    );
    assert.ok(run.stdout.includes('"msg":"stopped"'), run.stdout);
  });
});

describe('mailgate serve: an address it cannot listen on', () => {
  let taken: Server;
  let port = 0;
  before(async () => {
    taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    port = (taken.address() as { port: number }).port;
  });
  after(() => new Promise<void>((resolve) => taken.close(() => resolve())));

  for (const door of ['milter', 'policyd'] as const) {
    it(`says which and why in one line, exits 1, and writes no pid file (${door})`, async () => {
      const config = await writeConfig(`taken-${door}`, { [door]: `inet:${port}@127.0.0.1` });
      const pidPath = join(dir, `taken-${door}.pid`);
      const run = await runCli(['serve', '--config', config, '--pid-file', pidPath]);
      assert.equal(run.code, 1, run.stderr);
      assert.equal(
        run.stderr,
        `mailgate: cannot listen on inet:${port}@127.0.0.1: address in use\n`,
      );
      // Whatever it logged on the way was not an error of its own.
      for (const text of run.stdout.split('\n').filter(Boolean)) {
        const line = JSON.parse(text) as { level: string };
        assert.equal(line.level, 'info', text);
      }
      assert.equal(await exists(pidPath), false);
    });
  }

  it('names the address as the configuration writes it (localhost, not what it resolved to)', async () => {
    // localhost may resolve to ::1 first: the port is taken there too, where this host has IPv6.
    const v6 = createServer();
    const v6Taken = await new Promise<boolean>((resolve) => {
      v6.once('error', () => resolve(false));
      v6.listen(port, '::1', () => resolve(true));
    });
    const config = await writeConfig('taken-localhost', { milter: `inet:${port}@localhost` });
    const run = await runCli(['serve', '--config', config]).finally(() => {
      if (v6Taken) v6.close();
    });
    assert.equal(run.code, 1, run.stderr);
    assert.equal(run.stderr, `mailgate: cannot listen on inet:${port}@localhost: address in use\n`);
  });

  it('a store it cannot open: the log line with its stack, then one line on standard error', async () => {
    // The database's directory would be under a regular file.
    await writeFile(join(dir, 'not-a-dir'), 'x');
    const config = await writeConfig('nostore');
    const text = (await readFile(config, 'utf8')).replace(
      /^url = .*$/mu,
      `url = "sqlite:${join(dir, 'not-a-dir', 'x.db')}"`,
    );
    await writeFile(config, text);
    const run = await runCli(['serve', '--config', config]);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /^mailgate: store open sqlite:\S+ failed: [^\n]+\n$/u);
    assert.match(run.stdout, /"msg":"store-open-failed"/u);
  });

  it('names a unix socket whose directory does not exist', async () => {
    const path = join(dir, 'missing', 'milter.sock');
    const run = await runCli([
      'serve',
      '--config',
      await writeConfig('nosock', { milter: `unix:${path}` }),
    ]);
    assert.equal(run.code, 1, run.stderr);
    assert.equal(
      run.stderr,
      `mailgate: cannot listen on unix:${path}: the directory ${join(dir, 'missing')} does not exist\n`,
    );
  });

  it('names a unix socket path held by a regular file', async () => {
    const path = join(dir, 'plain-file.sock');
    await writeFile(path, 'not a socket\n');
    const run = await runCli([
      'serve',
      '--config',
      await writeConfig('plain', { milter: `unix:${path}` }),
    ]);
    assert.equal(run.code, 1, run.stderr);
    assert.equal(
      run.stderr,
      `mailgate: cannot listen: ${path} exists and is not a socket; refusing to remove it\n`,
    );
    assert.equal(await readFile(path, 'utf8'), 'not a socket\n');
  });
});

describe('pid file and listen failure helpers', () => {
  it('reads a pid, nothing, or no pid', async () => {
    const path = join(dir, 'read.pid');
    assert.equal(readPidFile(path), null);
    for (const [text, pid] of [
      ['4711\n', 4711],
      [' 12 ', 12],
      ['', undefined],
      ['0\n', undefined],
      ['-1\n', undefined],
      ['12 13\n', undefined],
      ['mailgate\n', undefined],
    ] as const) {
      await writeFile(path, text);
      assert.equal(readPidFile(path), pid, JSON.stringify(text));
    }
  });

  it('does not refuse our own pid, a dead one or no pid; refuses a live other one', async () => {
    const path = join(dir, 'refuse.pid');
    refuseIfHeld(path);
    await writeFile(path, `${process.pid}\n`);
    refuseIfHeld(path);
    await writeFile(path, `${await deadPid()}\n`);
    refuseIfHeld(path);
    await writeFile(path, 'garbage');
    refuseIfHeld(path);
    await writeFile(path, `${process.pid}\n`);
    assert.throws(() => refuseIfHeld(path, process.pid + 1_000_000), {
      name: 'PidFileError',
      message: new RegExp(`names process ${process.pid} \\(node\\), which is running`),
    });
  });

  it('removes only a regular file that still names the writer', async () => {
    const sub = join(dir, 'remove');
    await mkdir(sub);
    const path = join(sub, 'x.pid');
    const mine = writePidFile(path, 4242);
    assert.equal(await readFile(path, 'utf8'), '4242\n');
    await writeFile(path, '4343\n');
    mine.remove();
    assert.equal(await readFile(path, 'utf8'), '4343\n');
    const again = writePidFile(path, 4242);
    again.remove();
    assert.equal(await exists(path), false);
    again.remove();
    // A symlink is not a pid file we wrote, whatever it points at.
    await writeFile(join(sub, 'target'), '4242\n');
    await symlink(join(sub, 'target'), path);
    writePidFile(join(sub, 'y.pid'), 4242);
    mine.remove();
    assert.equal(await readFile(path, 'utf8'), '4242\n');
    await rm(path);
    await rm(join(sub, 'target'));
    await rm(join(sub, 'y.pid'));
    await mkdir(path);
    writePidFile(join(sub, 'y.pid'), 4242).remove();
    assert.throws(() => writePidFile(path, 4242), { name: 'PidFileError' });
    assert.deepEqual((await readdir(sub)).sort(), ['x.pid']);
  });

  it('describes real listen failures, and nothing else', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as { port: number }).port;
    try {
      const failure = await new Promise<Error>((resolve) => {
        const second = createServer();
        second.once('error', resolve);
        second.listen(port, '127.0.0.1');
      });
      assert.equal(
        describeListenFailure(failure),
        `cannot listen on inet:${port}@127.0.0.1: address in use`,
      );
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
    const notHere = await new Promise<Error>((resolve) => {
      const server = createServer();
      server.once('error', resolve);
      server.listen(8891, '192.0.2.1');
    });
    assert.equal(
      describeListenFailure(notHere),
      'cannot listen on inet:8891@192.0.2.1: no interface of this host has that address',
    );
    const openFailure = await readFile(join(dir, 'none')).catch((err: Error) => err);
    assert.equal(describeListenFailure(openFailure), undefined);
    assert.equal(describeListenFailure(new Error('other')), undefined);
    assert.equal(describeListenFailure('text'), undefined);
  });
});
