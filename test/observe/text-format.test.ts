// The text log format: representative lines, hostile values, errors, and a daemon started with
// `[log] format = "text"` whose standard output is read as text.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  createLogger,
  formatTextRecord,
  jsonLineToText,
  type LogFormat,
  setLogLevel,
} from '../../src/observe/index.js';
import { Daemon } from '../../src/serve/index.js';
import { writeDaemonConfig } from '../support/daemon-rig.js';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';
import { policyClient, rcptRequest } from '../support/policy-client.js';

const TIME = '2026-12-07T12:15:30.118Z';
const SHOWN_TIME = '2026-12-07 12:15:30.118';

/** The key=value pairs of a text line, unquoted and unescaped: what a reader would recover. */
function fieldsOf(line: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const m of line.matchAll(/(\S+)=("(?:[^"\\]|\\.)*"|[^\s"]*)/g)) {
    const raw = m[2]!;
    const text = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\"/g, '"') : raw;
    fields[m[1]!] = unescapeLog(text);
  }
  return fields;
}

/** escapeForLog undone. */
function unescapeLog(text: string): string {
  return text.replace(/\\(\\|x([0-9a-f]{2})|u\{([0-9a-f]+)\})/g, (_all, c, hex, code) =>
    c === '\\' ? '\\' : String.fromCodePoint(Number.parseInt(hex ?? code, 16)),
  );
}

/** A logger whose written lines the test can read, as they were written. */
function captureLogger(format: LogFormat, level = 'info') {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(line);
      done();
    },
  });
  return { logger: createLogger({ level, format, destination }), lines };
}

function decision(fields: Record<string, unknown>): Record<string, unknown> {
  return { level: 'info', time: TIME, name: 'mailgate', conn: 'm1a', ...fields };
}

describe('text log format: policy decisions', () => {
  it('writes a connect line as bms.py did, the other fields after it', () => {
    const line = formatTextRecord(
      decision({
        stage: 'connect',
        verdict: 'continue',
        reason: 'connect',
        tags: ['connect', 'EXTERNAL'],
        ip: '203.0.113.5',
        msg: 'connect',
      }),
    );
    assert.equal(
      line,
      `${SHOWN_TIME} info  [m1a] connect from [203.0.113.5] EXTERNAL stage=connect verdict=continue reason=connect`,
    );
  });

  it('writes a refusal as `REJECT: why: what`, the reply quoted', () => {
    const line = formatTextRecord(
      decision({
        stage: 'helo',
        verdict: 'reject',
        reason: 'numeric-helo',
        tags: ['REJECT', 'numeric hello name'],
        ip: '203.0.113.5',
        helo: '198.51.100.7',
        reply: '550 5.7.1 numeric hello name: 198.51.100.7',
        msg: 'REJECT',
      }),
    );
    assert.equal(
      line,
      `${SHOWN_TIME} info  [m1a] REJECT: numeric hello name: 198.51.100.7 stage=helo verdict=reject reason=numeric-helo ip=203.0.113.5 reply="550 5.7.1 numeric hello name: 198.51.100.7"`,
    );
  });

  it('shows the sender of a MAIL FROM line and the recipient of a greylisted RCPT', () => {
    const mail = formatTextRecord(
      decision({
        stage: 'mail',
        verdict: 'continue',
        reason: 'spf-pass',
        tags: ['mail from', 'SPF pass', 'policy default'],
        ip: '203.0.113.5',
        helo: 'mx.example.org',
        sender: 'jo@example.org',
        msg: 'mail from',
      }),
    );
    assert.equal(
      mail,
      `${SHOWN_TIME} info  [m1a] mail from <jo@example.org> SPF pass, policy default stage=mail verdict=continue reason=spf-pass ip=203.0.113.5 helo=mx.example.org`,
    );
    const rcpt = formatTextRecord(
      decision({
        stage: 'rcpt',
        verdict: 'tempfail',
        reason: 'greylisted',
        tags: ['GREYLIST', 'score'],
        ip: '203.0.113.5',
        sender: '',
        reply: '450 4.7.1 greylisted, try again later',
        recipient: 'bob@example.net',
        headers: ['Received-SPF', 'X-Greylist'],
        msg: 'GREYLIST',
      }),
    );
    assert.equal(
      rcpt,
      `${SHOWN_TIME} info  [m1a] GREYLIST: score: <bob@example.net> stage=rcpt verdict=tempfail reason=greylisted ip=203.0.113.5 sender="" reply="450 4.7.1 greylisted, try again later" headers=[Received-SPF,X-Greylist]`,
    );
  });

  it('keeps the tags as a field when one holds the separator, and a subject with a space', () => {
    const line = formatTextRecord(
      decision({
        stage: 'helo',
        verdict: 'reject',
        reason: 'csa-fail',
        tags: ['REJECT', 'CSA: not authorised'],
        helo: 'two words',
        msg: 'REJECT',
      }),
    );
    assert.equal(
      line,
      `${SHOWN_TIME} info  [m1a] REJECT: CSA: not authorised stage=helo verdict=reject reason=csa-fail tags="[REJECT,CSA: not authorised]" helo="two words"`,
    );
  });
});

describe('text log format: other lines', () => {
  it('writes the message first, then every field, nested objects flattened', () => {
    const line = formatTextRecord({
      level: 'info',
      time: TIME,
      name: 'mailgate',
      version: '1.4.0',
      config: '(defaults)',
      policy: ['inet:10027@127.0.0.1'],
      milter: [],
      greylist: true,
      scores: { helo: 2, dyn: 0, nested: { deep: null } },
      empty: {},
      msg: 'started',
    });
    assert.equal(
      line,
      `${SHOWN_TIME} info  started version=1.4.0 config=(defaults) policy=[inet:10027@127.0.0.1] milter=[] greylist=true scores.helo=2 scores.dyn=0 scores.nested.deep=null empty={}`,
    );
  });

  it('writes lists whose elements could run together as JSON', () => {
    const line = formatTextRecord({
      level: 'warn',
      time: TIME,
      problems: ['a, b', '', 'c'],
      rows: [{ line: 3 }],
      msg: 'whitelist reloaded',
    });
    const fields = fieldsOf(line);
    assert.deepEqual(JSON.parse(fields['problems']!), ['a, b', '', 'c']);
    assert.deepEqual(JSON.parse(fields['rows']!), [{ line: 3 }]);
    assert.match(line, /^\S+ \S+ warn {2}whitelist reloaded problems=/);
  });

  it('shows a name other than mailgate, and a time that does not parse as a field', () => {
    const line = formatTextRecord({ level: 30, time: 'soon', name: 'other', msg: 'x' });
    assert.equal(line, '- info  x time=soon name=other');
  });

  it('keeps a line that is not JSON, escaped', () => {
    assert.equal(jsonLineToText('not json\r\n'), 'not json\\x0d\n');
    assert.equal(jsonLineToText('[1,2]\n'), '[1,2]\n');
  });
});

describe('text log format: errors', () => {
  const err = {
    type: 'Error',
    message: 'connect ECONNREFUSED 127.0.0.1:5432',
    stack:
      'Error: connect ECONNREFUSED 127.0.0.1:5432\n    at one (a.js:1:1)\n    at two (b.js:2:2)',
    code: 'ECONNREFUSED',
  };

  it('shows an error by its type, message and stack, at every level, as the JSON line has it', () => {
    const warn = formatTextRecord({ level: 'warn', time: TIME, err, msg: 'store-close-failed' });
    assert.equal(
      warn,
      `${SHOWN_TIME} warn  store-close-failed err="Error: connect ECONNREFUSED 127.0.0.1:5432" err.code=ECONNREFUSED err.stack="at one (a.js:1:1) | at two (b.js:2:2)"`,
    );
    const error = formatTextRecord({ level: 'error', time: TIME, err, msg: 'store-open-failed' });
    assert.equal(
      error,
      `${SHOWN_TIME} error store-open-failed err="Error: connect ECONNREFUSED 127.0.0.1:5432" err.code=ECONNREFUSED err.stack="at one (a.js:1:1) | at two (b.js:2:2)"`,
    );
  });

  it('writes a real error through pino: message with its cause, and its stack', () => {
    const { logger, lines } = captureLogger('text');
    const failure = new TypeError('bad\r\nthing', { cause: new Error('inner') });
    logger.warn({ err: failure }, 'policy handler failed');
    logger.error({ err: failure }, 'policy handler failed');
    setLogLevel(logger, 'debug');
    logger.warn({ err: failure }, 'policy handler failed');
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, / err="TypeError: bad\\x0d\\x0athing: inner" err\.stack="at /);
    for (const line of lines) {
      const stack = fieldsOf(line)['err.stack'] ?? '';
      assert.ok(stack.startsWith('at '), line);
      assert.match(stack, / \| caused by: Error: inner \| at /);
    }
  });
});

describe('text log format: hostile values', () => {
  const hostile = 'evil\r\nX-Injected: yes\u0000 \u00e9\u{1f600} "quoted" a=b \\x0d';

  it('keeps every line one line, and every value recoverable', () => {
    const { logger, lines } = captureLogger('text');
    logger.warn(
      { helo: hostile, [`key ${hostile}`]: 'v', nested: { inner: hostile }, list: [hostile] },
      `policy-bad-request ${hostile}`,
    );
    assert.equal(lines.length, 1);
    const line = lines[0]!;
    assert.doesNotMatch(line, /[\r\n\0]|[^\x20-\x7e]/);
    const fields = fieldsOf(line);
    assert.equal(fields['helo'], hostile);
    assert.equal(fields['nested.inner'], hostile);
    assert.equal(fields['list'], `[${hostile}]`);
    // The `a=b` inside values and in the message never reads as a field of its own.
    assert.equal(fields['a'], undefined);
    assert.equal(
      Object.keys(fields).filter((k) => k.startsWith('key')).length,
      1,
      JSON.stringify(fields),
    );
  });

  it('cannot forge a field or a conn from a decision tag or subject', () => {
    const line = formatTextRecord(
      decision({
        stage: 'mail',
        verdict: 'continue',
        tags: ['mail from', 'SPF pass verdict=reject'],
        sender: 'jo@example.org\nverdict=reject',
        msg: 'mail from',
      }),
    );
    assert.doesNotMatch(line, /\n/);
    assert.equal(fieldsOf(line)['verdict'], 'continue');
    assert.match(
      line,
      /mail from <jo@example\.org\\x0averdict\\x3dreject> SPF pass verdict\\x3dreject/,
    );
  });
});

describe('text log format: the logger', () => {
  it('writes JSON by default, and the same fields as text', () => {
    const json = captureLogger('json');
    const text = captureLogger('text');
    const fields = {
      conn: 'm1a',
      stage: 'rcpt',
      verdict: 'tempfail',
      reason: 'greylisted',
      tags: ['GREYLIST', 'score'],
      ip: '192.0.2.10',
      recipient: 'bob@example.net',
      client: '192.0.2.10',
      delay: 300,
    };
    json.logger.info(fields, 'GREYLIST');
    text.logger.info(fields, 'GREYLIST');
    const record = JSON.parse(json.lines[0]!) as Record<string, unknown>;
    assert.equal(record['msg'], 'GREYLIST');
    const line = text.lines[0]!;
    // The text logger writes what the JSON line says, time aside (the two were made apart).
    assert.equal(line.slice(23), jsonLineToText(`${json.lines[0]}\n`).slice(23, -1));
    assert.match(
      line,
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} info {2}\[m1a\] GREYLIST: score: <bob@example\.net> /,
    );
    const shown = fieldsOf(line);
    for (const key of ['stage', 'verdict', 'reason', 'ip', 'client', 'delay']) {
      assert.equal(shown[key], String(record[key]), key);
    }
  });

  it('keeps the level filter, and the order of lines', () => {
    const { logger, lines } = captureLogger('text', 'warn');
    logger.info({}, 'dropped');
    for (let i = 0; i < 50; i += 1) logger.warn({ i }, 'kept');
    assert.equal(lines.length, 50);
    assert.deepEqual(
      lines.map((l) => fieldsOf(l)['i']),
      Array.from({ length: 50 }, (_, i) => String(i)),
    );
  });
});

describe('text log format: the daemon', () => {
  let dns: FixtureDnsServer;
  let dir: string;
  before(async () => {
    // A client on a DNS list, sending with SPF pass: greylisting is what decides.
    dns = await startDnsServer({
      '66.2.0.192.bl.test': [{ A: '127.0.0.2' }],
      'example.org': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }],
    });
    dir = await mkdtemp(join(tmpdir(), 'mailgate-text-log-'));
  });
  after(async () => {
    await dns?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function writeConfig(name: string, format: LogFormat): Promise<string> {
    return writeDaemonConfig(dir, name, {
      dnsPort: dns.port,
      hostname: 'mx1.mailgate.test',
      log: `level = "debug"\nformat = "${format}"`,
      rest: `[milter]
listen = ["inet:0@127.0.0.1"]
[policyd]
listen = ["inet:0@127.0.0.1"]
[greylist]
period = "1s"
penalty = "1s"
dnsbl = ["bl.test"]
`,
    });
  }

  it('writes text lines on standard output when [log] format = "text", flushed at exit', async () => {
    const path = await writeConfig('text', 'text');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('./daemon-child.ts', import.meta.url)), path],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    try {
      const port = await new Promise<number>((resolve, reject) => {
        child.stdout.setEncoding('utf8').on('data', (d: string) => {
          stdout += d;
          const m = / info {2}started .*policy=\[inet:(\d+)@127\.0\.0\.1\]/.exec(stdout);
          if (m) resolve(Number(m[1]));
        });
        void exited.then(() => reject(new Error(`the daemon exited: ${stdout}${stderr}`)));
      });
      const client = await policyClient(port);
      try {
        const request = rcptRequest({ client_address: '192.0.2.66', helo_name: 'a\u00e9' });
        assert.equal(await client.ask(request), 'DEFER_IF_PERMIT greylisted, try again later');
      } finally {
        client.close();
      }
      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
    } finally {
      clearTimeout(killer);
      child.kill('SIGKILL');
    }
    const lines = stdout.split('\n').filter((l) => l !== '');
    for (const line of lines) {
      assert.match(
        line,
        /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (trace|debug|info |warn |error|fatal) \S/,
      );
      assert.doesNotMatch(line, /[^\x20-\x7e]/);
    }
    const greylist = lines.find((l) => / greylist /.test(l) && / verdict=greylist /.test(l));
    assert.ok(greylist, stdout);
    assert.equal(fieldsOf(greylist)['ip'], '192.0.2.66');
    // The last line is written as the process exits: it was flushed, not lost.
    assert.match(lines.at(-1)!, / info {2}stopped$/);
  });

  it('reports a reload that changes the format as needing a restart', async () => {
    const path = await writeConfig('reload', 'json');
    const { logger, lines } = captureLogger('text', 'debug');
    const daemon = await Daemon.start({ configPath: path, logger });
    try {
      await writeConfig('reload', 'text');
      assert.equal(await daemon.reload(), true);
      const restart = lines.find((l) => / warn {2}config-restart-needed /.test(l));
      assert.ok(restart, lines.join('\n'));
      assert.match(restart, / keys=\[log\.format\]$/);
    } finally {
      await daemon.close();
    }
  });
});
