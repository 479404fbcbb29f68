/**
 * The sample milter (examples/sample-milter.ts) driven by OpenDKIM's `miltertest` (Debian package
 * miltertest), an MTA simulator independent of our own code: each Lua script under
 * test/milter/lua/ plays one behaviour (negotiation, macros, each end-of-message action, the
 * reject at MAIL FROM, the tempfail at RCPT TO) and fails by raising a Lua error.
 *
 * The sample milter runs as a child process on an ephemeral port; each script gets its address
 * as the Lua global `socket` (miltertest's `-D name=value`). When miltertest is not installed the
 * tests skip, saying so loudly (scripts/pretest-debian.sh installs it when run as root).
 *
 * miltertest keeps only the command byte of a reply before end of message, so the texts of the
 * custom replies at MAIL FROM and RCPT TO are checked here with our MilterClient instead.
 */
import assert from 'node:assert/strict';
import { type ChildProcessByStdio, spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MilterClient } from '../../src/milter/testing/index.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const luaDir = join(root, 'test', 'milter', 'lua');
const scripts = readdirSync(luaDir)
  .filter((f) => f.endsWith('.lua') && f !== 'common.lua')
  .sort();

/** miltertest's version line, or why it cannot run. */
function probeMiltertest(): { ok: true; version: string } | { ok: false; why: string } {
  const run = spawnSync('miltertest', ['-V'], { encoding: 'utf8', timeout: 10_000 });
  if (run.error) {
    const code = (run.error as NodeJS.ErrnoException).code;
    return {
      ok: false,
      why:
        code === 'ENOENT'
          ? 'miltertest is not installed (Debian package "miltertest"; scripts/pretest-debian.sh installs it as root)'
          : `miltertest cannot run: ${run.error.message}`,
    };
  }
  return { ok: true, version: run.stdout.trim() };
}

const probe = probeMiltertest();
const skip = probe.ok ? false : `SKIPPED: ${probe.why}`;
if (!probe.ok) {
  process.stderr.write(
    [
      '',
      '='.repeat(78),
      `test/milter/miltertest.test.ts: ${probe.why}.`,
      `The ${scripts.length} miltertest interop scripts under test/milter/lua/ are SKIPPED.`,
      '='.repeat(78),
      '',
    ].join('\n'),
  );
}

/** The sample milter in a child process. */
interface SampleMilter {
  child: ChildProcessByStdio<null, Readable, Readable>;
  socket: string;
  stderr: () => string;
  /** Lines it logged at level warn or error. */
  complaints: string[];
  exited: Promise<number | null>;
}

function startSampleMilter(): Promise<SampleMilter> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(root, 'examples', 'sample-milter.ts'), '--listen', 'inet:0@127.0.0.1'],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  let partial = '';
  const complaints: string[] = [];
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    // Keep the tail only: the sample milter logs every step.
    stderr = (stderr + d).slice(-20_000);
    const lines = (partial + d).split('\n');
    partial = lines.pop() ?? '';
    complaints.push(...lines.filter((line) => /^(warn|error)\b/.test(line)));
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return new Promise((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sample milter did not say "listening on" within 20 s; stderr:\n${stderr}`));
    }, 20_000);
    const onData = (d: string) => {
      stdout += d;
      const m = /^listening on (inet:\d+@[\d.]+)\s*$/m.exec(stdout);
      if (!m) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      // Keep draining stdout so the child never blocks on a full pipe.
      child.stdout.resume();
      resolve({ child, socket: m[1]!, stderr: () => stderr, complaints, exited });
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`sample milter exited early (${code ?? signal}); stderr:\n${stderr}`));
    });
  });
}

async function stopSampleMilter(m: SampleMilter): Promise<void> {
  if (m.child.exitCode !== null || m.child.signalCode !== null) return;
  m.child.kill('SIGTERM');
  const killer = setTimeout(() => m.child.kill('SIGKILL'), 5000);
  await m.exited;
  clearTimeout(killer);
}

interface MiltertestRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

function runMiltertest(script: string, socket: string): Promise<MiltertestRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'miltertest',
      ['-D', `socket=${socket}`, '-D', `lua_dir=${luaDir}`, '-s', join(luaDir, script)],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    const collect = (d: string) => {
      output += d;
    };
    child.stdout.setEncoding('utf8').on('data', collect);
    child.stderr.setEncoding('utf8').on('data', collect);
    // miltertest's own read timeout is 10 s per reply; this only guards against a hang.
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, output });
    });
  });
}

let milter: SampleMilter | undefined;

before(async () => {
  milter = await startSampleMilter();
});

after(async () => {
  if (milter) await stopSampleMilter(milter);
});

for (const script of scripts) {
  test(`miltertest ${script} against the sample milter`, { skip }, async () => {
    assert.ok(milter, 'the sample milter is not running');
    const run = await runMiltertest(script, milter.socket);
    assert.equal(
      run.status,
      0,
      `miltertest -s ${script} exited ${run.status ?? run.signal}:\n${run.output}\n` +
        `--- sample milter stderr (tail) ---\n${milter.stderr().slice(-4000)}`,
    );
    if (script === 'macros.lua') {
      // Each MAIL FROM's macros replaced the last one's: the milter saw both queue IDs in turn,
      // and the AUTH login, from getSymbol with the bare name.
      const log = milter.stderr();
      for (const id of ['4ABC1DEF', '4ABC2DEF']) {
        assert.match(log, new RegExp(`end of message .*queueId="${id}" login="jo"`));
      }
    }
  });
}

test('the custom reply texts, which miltertest cannot see', async () => {
  assert.ok(milter, 'the sample milter is not running');
  const client = await MilterClient.connect(milter.socket, { timeoutMs: 5000 });
  try {
    await client.negotiate();
    await client.connect('client.example.net', 'inet', 40000, '192.0.2.25');
    await client.helo('mail.client.example.net');
    const rejected = await client.mail('<reject@client.example.net>');
    assert.deepEqual(rejected, {
      verdict: 'reject',
      reply: {
        code: 550,
        xcode: '5.7.1',
        lines: ['rejected by sample', 'see docs'],
        text: '550-5.7.1 rejected by sample\r\n550 5.7.1 see docs',
      },
    });
    await client.abort();
    assert.deepEqual(await client.mail('<sender@client.example.net>'), { verdict: 'continue' });
    const later = await client.rcpt('<later@example.org>');
    assert.deepEqual(later, {
      verdict: 'tempfail',
      reply: { code: 451, xcode: '4.7.1', lines: ['try later'], text: '451 4.7.1 try later' },
    });
    await client.quit();
  } finally {
    await client.close();
  }
});

test('the sample milter is still up after every script, and logged no warning or error', () => {
  assert.ok(milter, 'the sample milter is not running');
  assert.equal(milter.child.exitCode, null, `sample milter exited:\n${milter.stderr()}`);
  assert.deepEqual(milter.complaints, []);
});
