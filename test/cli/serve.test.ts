// `mailgate serve` as a process: --check, start-up, SIGHUP reload, SIGTERM stop.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';
import { policyClient, rcptRequest } from '../support/policy-client.js';
import { runCli } from '../support/run-cli.js';

const entry = fileURLToPath(new URL('../support/cli-entry.ts', import.meta.url));

let dns: FixtureDnsServer;
let dir: string;
before(async () => {
  dns = await startDnsServer({});
  dir = await mkdtemp(join(tmpdir(), 'mailgate-serve-cli-'));
});
after(async () => {
  await dns?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('mailgate serve --check', () => {
  it('exits 0 for a good file and 2 naming the key for a bad one', async () => {
    const good = join(dir, 'good.toml');
    await writeFile(good, '[greylist]\nperiod = "5m"\n');
    const ok = await runCli(['serve', '--check', '--config', good]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /configuration is valid/);
    assert.equal(ok.stderr, '');

    const doubtful = join(dir, 'doubtful.toml');
    await writeFile(doubtful, '[policyd]\nrequest_timeout = "5s"\n');
    const warned = await runCli(['serve', '--check', '--config', doubtful]);
    assert.equal(warned.code, 0, warned.stderr);
    assert.match(
      warned.stderr,
      /warning: greylist\.dns_budget: not shorter than policyd\.request_timeout \(5s\)/,
    );
    assert.match(warned.stdout, /configuration is valid/);

    const bad = join(dir, 'bad.toml');
    await writeFile(bad, '[greylist]\nperiod = "5"\n[polcy]\n');
    const no = await runCli(['serve', '--check', '--config', bad]);
    assert.equal(no.code, 2);
    assert.match(no.stderr, /greylist\.period: not a duration/);
    assert.match(no.stderr, /polcy: unknown key/);

    const missing = await runCli(['serve', '--check', '--config', join(dir, 'nope.toml')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.toml: cannot read: ENOENT/);
  });

  it('checks the access map and the DSN templates the file names', async () => {
    const access = join(dir, 'access');
    await writeFile(access, 'SPF-Neutral:aol.example REJECT\nSPF-Fail: MAYBE\n');
    const templates = join(dir, 'templates');
    await mkdir(templates, { recursive: true });
    await writeFile(join(templates, 'softfail.txt'), 'Subject: about %(subjct)s\n\nHello.\n');
    const config = join(dir, 'files.toml');
    await writeFile(
      config,
      `[spf]\naccess_file = "${access}"\n[cbv]\ntemplates = "${templates}"\n`,
    );
    const bad = await runCli(['serve', '--check', '--config', config]);
    assert.equal(bad.code, 2, bad.stdout);
    assert.match(bad.stderr, /access:2: .*MAYBE/);

    await writeFile(access, 'SPF-Neutral:aol.example REJECT\n');
    const warned = await runCli(['serve', '--check', '--config', config]);
    assert.equal(warned.code, 0, warned.stderr);
    assert.match(warned.stderr, /softfail\.txt: warning: .*subjct/);

    await writeFile(join(templates, 'neutral.txt'), 'no header here\n');
    const broken = await runCli(['serve', '--check', '--config', config]);
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /cbv\.templates: .*neutral\.txt/);
  });
});

describe('mailgate serve', () => {
  it('starts, reloads on SIGHUP, and stops cleanly on SIGTERM', async () => {
    const config = join(dir, 'serve.toml');
    const write = (action: string) =>
      writeFile(
        config,
        `[dns]\nservers = ["127.0.0.1:${dns.port}"]\n[store]\nurl = "sqlite:${join(dir, 'serve.db')}"\n` +
          `[policyd]\nlisten = ["inet:0@127.0.0.1"]\n[milter]\nlisten = ["inet:0@127.0.0.1"]\n# Greylisting is the subject here: no call-backs of the test senders.\n[cbv]\nenabled = false\n[greylist]\naction = "${action}"\n`,
      );
    await write('DEFER_IF_PERMIT first text');
    const child = spawn(process.execPath, ['--import', 'tsx', entry, 'serve', '--config', config], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: Record<string, unknown>[] = [];
    let partial = '';
    const waiters: Array<{ tag: string; resolve: (l: Record<string, unknown>) => void }> = [];
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      partial += chunk;
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const text of parts) {
        if (!text) continue;
        const line = JSON.parse(text) as Record<string, unknown>;
        lines.push(line);
        for (const w of waiters.filter((w) => w.tag === line.msg)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const waitFor = (tag: string) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const seen = lines.find((l) => l.msg === tag);
        if (seen) return resolve(seen);
        const timer = setTimeout(
          () => reject(new Error(`no "${tag}" line; stderr: ${stderr}`)),
          20_000,
        );
        waiters.push({
          tag,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
      });
    try {
      const started = await waitFor('started');
      const spec = (started.policy as string[])[0] ?? '';
      const port = Number(/^inet:(\d+)@/.exec(spec)?.[1]);
      assert.ok(port > 0, spec);
      const client = await policyClient(port);
      const request = rcptRequest({ helo_name: 'windowsxp.local' });
      assert.equal(await client.ask(request), 'DEFER_IF_PERMIT first text');

      await write('DEFER_IF_PERMIT second text');
      child.kill('SIGHUP');
      await waitFor('config-reloaded');
      assert.equal(
        await client.ask({ ...request, recipient: 'another@example.net' }),
        'DEFER_IF_PERMIT second text',
      );

      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
      assert.ok(lines.some((l) => l.msg === 'stopped'));
      client.close();
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a storm of SIGHUPs during start-up and after neither kills nor wedges it', async () => {
    const config = join(dir, 'storm.toml');
    await writeFile(
      config,
      `[dns]\nservers = ["127.0.0.1:${dns.port}"]\n[store]\nurl = "sqlite:${join(dir, 'storm.db')}"\n` +
        '[policyd]\nlisten = ["inet:0@127.0.0.1"]\n[milter]\nlisten = ["inet:0@127.0.0.1"]\n# Greylisting is the subject here: no call-backs of the test senders.\n[cbv]\nenabled = false\n',
    );
    const child = spawn(process.execPath, ['--import', 'tsx', entry, 'serve', '--config', config], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal })),
    );
    let storm: NodeJS.Timeout | undefined;
    const sent = { count: 0 };
    // The first line comes from inside the daemon's start-up, after mailgate took SIGHUP over
    // (before that, Node's default action, terminate, is not ours to change). From then on a
    // burst of SIGHUPs every millisecond, through the moment start-up ends and the daemon runs.
    const listening = new Promise<void>((resolve) => {
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
        if (!storm && stdout.includes('\n')) {
          storm = setInterval(() => {
            for (let i = 0; i < 20; i++) {
              sent.count++;
              child.kill('SIGHUP');
            }
          }, 1);
        }
        if (stdout.includes('"msg":"started"')) resolve();
      });
    });
    try {
      await Promise.race([
        listening,
        exited.then(({ code, signal }) => {
          throw new Error(`serve ended at start (code ${code}, signal ${signal}): ${stderr}`);
        }),
      ]);
      await new Promise((resolve) => setTimeout(resolve, 500));
      clearInterval(storm);
      assert.ok(sent.count > 50, `only ${sent.count} signals sent`);
      child.kill('SIGTERM');
      const end = await exited;
      assert.deepEqual(end, { code: 0, signal: null }, stderr);
      assert.match(stdout, /"msg":"stopped"/);
    } finally {
      clearInterval(storm);
      child.kill('SIGKILL');
    }
  });
});
