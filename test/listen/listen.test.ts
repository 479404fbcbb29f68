import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { lstat, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  formatListenSpec,
  ListenSpecError,
  listenOn,
  parseListenSpec,
  SocketPathError,
} from '../../src/listen/index.js';

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

describe('parseListenSpec', () => {
  test('the forms MTAs write', () => {
    assert.deepEqual(parseListenSpec('inet:8891@0.0.0.0'), {
      kind: 'inet',
      host: '0.0.0.0',
      port: 8891,
    });
    assert.deepEqual(parseListenSpec('inet:8891@localhost'), {
      kind: 'inet',
      host: 'localhost',
      port: 8891,
    });
    assert.deepEqual(parseListenSpec('INET:25@mx.example.org'), {
      kind: 'inet',
      host: 'mx.example.org',
      port: 25,
    });
    assert.deepEqual(parseListenSpec('inet6:8891@::'), { kind: 'inet6', host: '::', port: 8891 });
    assert.deepEqual(parseListenSpec('inet6:8891@[2001:db8::1]'), {
      kind: 'inet6',
      host: '2001:db8::1',
      port: 8891,
    });
    assert.deepEqual(parseListenSpec('unix:/run/mailgate/milter.sock'), {
      kind: 'unix',
      path: '/run/mailgate/milter.sock',
    });
    assert.deepEqual(parseListenSpec('local:relative.sock'), {
      kind: 'unix',
      path: 'relative.sock',
    });
  });

  test('a missing host is loopback, not every interface', () => {
    assert.deepEqual(parseListenSpec('inet:8891'), { kind: 'inet', host: '127.0.0.1', port: 8891 });
    assert.deepEqual(parseListenSpec('inet6:8891'), { kind: 'inet6', host: '::1', port: 8891 });
  });

  test('errors name the problem', () => {
    const cases: Array<[string, RegExp]> = [
      ['', /empty/],
      ['8891', /no "TYPE:" prefix/],
      ['tcp:8891', /unknown type "tcp"/],
      ['inet:', /the port is missing/],
      ['inet:@127.0.0.1', /the port is missing/],
      ['inet:smtp@127.0.0.1', /the port "smtp" is not a number/],
      ['inet:70000', /the port 70000 is out of range/],
      ['inet:25@', /the host after "@" is empty/],
      ['inet:25@::1', /is an IPv6 address; use inet6:/],
      ['inet6:25@192.0.2.1', /is an IPv4 address; use inet:/],
      ['inet:25@bad host', /is not an address or host name/],
      ['unix:', /the socket path is empty/],
      [`unix:/${'x'.repeat(120)}`, /longer than 107 bytes/],
    ];
    for (const [spec, pattern] of cases) {
      assert.throws(
        () => parseListenSpec(spec),
        (err: unknown) =>
          err instanceof ListenSpecError &&
          pattern.test(err.message) &&
          err.message.includes(JSON.stringify(spec)),
        spec,
      );
    }
  });

  test('formatListenSpec writes specs back', () => {
    for (const spec of ['inet:8891@127.0.0.1', 'inet6:25@::1', 'unix:/run/x.sock']) {
      assert.equal(formatListenSpec(parseListenSpec(spec)), spec);
    }
  });
});

describe('listenOn', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'listen-test-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('inet:0@127.0.0.1 binds an ephemeral port and says which', async () => {
    const server = createServer();
    const bound = await listenOn(server, 'inet:0@127.0.0.1');
    assert.equal(bound.kind, 'inet');
    assert.ok(bound.kind === 'inet' && bound.port > 0);
    assert.equal(bound.spec, `inet:${(server.address() as { port: number }).port}@127.0.0.1`);
    await closeServer(server);
  });

  test('a unix socket gets its mode', async () => {
    const path = join(dir, 'mode.sock');
    const server = createServer();
    const bound = await listenOn(server, `unix:${path}`, { socketMode: 0o600 });
    assert.equal(bound.spec, `unix:${path}`);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    await closeServer(server);
    await assert.rejects(
      listenOn(createServer(), `unix:${path}`, { socketMode: 0o10000 }),
      RangeError,
    );
  });

  test('a stale socket left by a killed process is removed', async () => {
    const path = join(dir, 'stale.sock');
    const child = spawn(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    await new Promise((resolve) => child.on('exit', resolve));
    assert.ok((await lstat(path)).isSocket(), 'the killed process left its socket behind');
    const server = createServer((socket) => socket.end('hello'));
    await listenOn(server, `unix:${path}`);
    const greeting = await new Promise<string>((resolve, reject) => {
      const socket = connect(path);
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk;
      });
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    assert.equal(greeting, 'hello');
    await closeServer(server);
  });

  test('a regular file is never removed', async () => {
    const path = join(dir, 'precious.txt');
    await writeFile(path, 'keep me');
    await assert.rejects(
      listenOn(createServer(), `unix:${path}`),
      (err: unknown) =>
        err instanceof SocketPathError && /exists and is not a socket/.test(err.message),
    );
    assert.equal(await readFile(path, 'utf8'), 'keep me');
  });

  test('a live socket is never removed', async () => {
    const path = join(dir, 'live.sock');
    const owner = createServer((socket) => socket.end());
    await listenOn(owner, `unix:${path}`);
    await assert.rejects(
      listenOn(createServer(), `unix:${path}`),
      (err: unknown) =>
        err instanceof SocketPathError && /in use by a running process/.test(err.message),
    );
    await new Promise<void>((resolve, reject) => {
      const socket = connect(path, () => {
        socket.destroy();
        resolve();
      });
      socket.on('error', reject);
    });
    await closeServer(owner);
  });
});
