// etc/mailgate.service: its hardening, a command line `mailgate serve` accepts, paths that agree
// with the example configuration of docs/install.md, and systemd's own verdict where systemd's
// tools are installed.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import { findProgram, runProgram } from '../support/programs.js';
import { runCli } from '../support/run-cli.js';
import { exampleConfig } from './install-doc.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const UNIT = join(root, 'etc', 'mailgate.service');

type Unit = Map<string, Array<[string, string]>>;

/**
 * A unit file as systemd reads it: sections of `key=value` lines (a key may repeat), `#` and
 * `;` comments, a backslash at the end of a line continuing it.
 */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Array<[string, string]> | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) {
      line = `${line.slice(0, -1)} ${lines[++i]!.trim()}`;
    }
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = [];
      unit.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(eq > 0 && section, `line ${i + 1} is not key=value in a section: ${line}`);
    section.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return unit;
}

/** Every value of a key in a section, in order. */
function values(unit: Unit, section: string, key: string): string[] {
  return (unit.get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);
}

/** The one value of a key; fails when it is missing or given twice. */
function only(unit: Unit, section: string, key: string): string {
  const found = values(unit, section, key);
  assert.equal(found.length, 1, `${section}.${key}: ${JSON.stringify(found)}`);
  return found[0]!;
}

let text: string;
let unit: Unit;
let argv: string[];
before(async () => {
  text = await readFile(UNIT, 'utf8');
  unit = parseUnit(text);
  argv = only(unit, 'Service', 'ExecStart').split(/\s+/);
});

describe('etc/mailgate.service', () => {
  it('runs mailgate serve as a plain, restartable service of its own user', () => {
    assert.equal(only(unit, 'Service', 'Type'), 'simple');
    assert.equal(only(unit, 'Service', 'User'), 'mailgate');
    assert.deepEqual(values(unit, 'Service', 'DynamicUser'), []);
    assert.equal(only(unit, 'Service', 'ExecReload'), '/bin/kill -HUP $MAINPID');
    assert.equal(only(unit, 'Service', 'Restart'), 'on-failure');
    assert.equal(only(unit, 'Install', 'WantedBy'), 'multi-user.target');
    assert.ok(argv[0]!.startsWith('/'), `ExecStart runs ${argv[0]}: systemd wants a full path`);
    assert.equal(argv[1], 'serve');
  });

  it('is hardened', () => {
    const yes = [
      'NoNewPrivileges',
      'ProtectHome',
      'PrivateTmp',
      'PrivateDevices',
      'ProtectKernelTunables',
      'ProtectKernelModules',
      'ProtectKernelLogs',
      'ProtectControlGroups',
      'ProtectClock',
      'ProtectHostname',
      'LockPersonality',
      'RestrictRealtime',
      'RestrictSUIDSGID',
      'RestrictNamespaces',
    ];
    for (const key of yes) assert.equal(only(unit, 'Service', key), 'yes', key);
    assert.equal(only(unit, 'Service', 'ProtectSystem'), 'strict');
    assert.equal(only(unit, 'Service', 'CapabilityBoundingSet'), '');
    const families = only(unit, 'Service', 'RestrictAddressFamilies').split(/\s+/);
    for (const family of ['AF_INET', 'AF_INET6', 'AF_UNIX']) assert.ok(families.includes(family));
    // AF_NETLINK is the one more: the host's own addresses are read over it.
    assert.deepEqual(
      families.filter((f) => !['AF_INET', 'AF_INET6', 'AF_UNIX'].includes(f)),
      ['AF_NETLINK'],
    );
    assert.ok(values(unit, 'Service', 'SystemCallFilter').includes('@system-service'));
    assert.equal(only(unit, 'Service', 'SystemCallArchitectures'), 'native');
  });

  it('leaves MemoryDenyWriteExecute unset, and says why', () => {
    assert.deepEqual(values(unit, 'Service', 'MemoryDenyWriteExecute'), []);
    const why = text.split('\n').filter((line) => line.startsWith('#') && /JIT/.test(line));
    assert.ok(why.length > 0 && /MemoryDenyWriteExecute/.test(text), 'a comment on V8 JIT');
  });

  it('writes only where the daemon keeps its state, its pid file and its sockets', () => {
    assert.equal(only(unit, 'Service', 'StateDirectory'), 'mailgate');
    assert.equal(only(unit, 'Service', 'RuntimeDirectory'), 'mailgate');
    const writable = values(unit, 'Service', 'ReadWritePaths').flatMap((v) => v.split(/\s+/));
    assert.ok(writable.includes('-/var/spool/postfix/mailgate'), writable.join(' '));
  });

  it('passes only options that mailgate serve --help lists, with the documented paths', async () => {
    const help = await runCli(['serve', '--help']);
    assert.equal(help.code, 0, help.stderr);
    const listed = new Set(
      [...help.stdout.matchAll(/(?:^|[\s,])(--[a-z][a-z-]*)/g)].map((m) => m[1]),
    );
    assert.ok(listed.has('--config') && listed.has('--pid-file'), help.stdout);
    const options = argv.slice(2).filter((arg) => arg.startsWith('-'));
    assert.ok(options.length >= 2, argv.join(' '));
    for (const option of options) assert.ok(listed.has(option), `${option} is not in --help`);
    const after = (option: string) => argv[argv.indexOf(option) + 1];
    assert.equal(after('--config'), '/etc/mailgate/mailgate.toml');
    assert.equal(after('--pid-file'), '/run/mailgate/mailgate.pid');
  });

  it("agrees with docs/install.md's example configuration", async () => {
    const config = parseToml(await exampleConfig()) as {
      store?: { url?: string };
      milter?: { listen?: string[] };
      policyd?: { listen?: string[] };
    };
    const state = `/var/lib/${only(unit, 'Service', 'StateDirectory')}/`;
    const url = config.store?.url ?? '';
    assert.ok(url.startsWith(`sqlite:${state}`), `the store ${url} is not under ${state}`);
    assert.equal(only(unit, 'Service', 'WorkingDirectory'), state.replace(/\/$/, ''));
    const writable = [
      `/run/${only(unit, 'Service', 'RuntimeDirectory')}/`,
      ...values(unit, 'Service', 'ReadWritePaths')
        .flatMap((v) => v.split(/\s+/))
        .map((p) => `${p.replace(/^-/, '')}/`),
    ];
    for (const spec of [...(config.milter?.listen ?? []), ...(config.policyd?.listen ?? [])]) {
      if (!spec.startsWith('unix:')) continue;
      const path = spec.slice('unix:'.length);
      assert.ok(
        writable.some((dir) => path.startsWith(dir)),
        `${path} is not writable by the unit`,
      );
    }
  });
});

describe('etc/mailgate.service, as systemd reads it', () => {
  let dir: string;
  let copy: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailgate-unit-'));
    // verify checks that ExecStart's program exists: a stand-in where the unit names one.
    const program = join(dir, 'mailgate');
    await writeFile(program, '#!/bin/sh\nexit 0\n');
    await chmod(program, 0o755);
    copy = join(dir, 'mailgate.service');
    await writeFile(copy, text.replace(`ExecStart=${argv[0]} `, `ExecStart=${program} `));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** systemd-analyze, or a loud skip when it is not installed. */
  function analyzer(t: TestContext): string | undefined {
    const path = findProgram('systemd-analyze');
    if (!path) {
      const message = 'missing: systemd-analyze (systemd)';
      console.error(`*** SKIPPED "${t.name}": ${message} ***`);
      t.skip(message);
    }
    return path;
  }

  it('passes systemd-analyze verify without a word about it', async (t) => {
    const path = analyzer(t);
    if (!path) return;
    const run = await runProgram(path, ['verify', copy]);
    const about = `${run.stdout}${run.stderr}`
      .split('\n')
      .filter((line) => line.includes('mailgate'));
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.deepEqual(about, []);
    // The check itself speaks up about a bad unit: a misspelt key, a missing program.
    const broken = join(dir, 'broken.service');
    await writeFile(broken, `${text.replace('ProtectSystem=', 'ProtectSytem=')}`);
    const complaint = await runProgram(path, ['verify', broken]);
    assert.match(complaint.stdout + complaint.stderr, /ProtectSytem/);
  });

  it('scores as well hardened in systemd-analyze security', async (t) => {
    const path = analyzer(t);
    if (!path) return;
    const run = await runProgram(path, ['security', '--offline=yes', '--threshold=25', copy]);
    if (/unrecognized option|unknown option/i.test(run.stderr)) {
      t.skip(`systemd-analyze security has no --offline here: ${run.stderr.trim()}`);
      return;
    }
    // The exposure is out of 10; the threshold is in tenths of it.
    const level = /Overall exposure level for \S+: ([0-9.]+)/.exec(run.stdout);
    assert.ok(level, run.stdout + run.stderr);
    assert.ok(Number(level[1]) <= 2.5, `exposure ${level[1]}`);
    assert.equal(run.code, 0, run.stderr);
  });
});
