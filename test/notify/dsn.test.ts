import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createResolver } from '../../src/dns/index.js';
import {
  builtinTemplates,
  type ComposeDsnInput,
  composeDsn,
  createSmtpClient,
  type DsnSettings,
  type NotifyServices,
  parseTemplate,
  sendDsn,
} from '../../src/notify/index.js';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';
import { type Mx, startMx } from './support.js';

const templates = builtinTemplates();
const DATE = new Date(Date.UTC(2025, 6, 1, 12, 0, 5));

const base = (extra: Partial<ComposeDsnInput> = {}): ComposeDsnInput => ({
  template: templates.softfail,
  values: {
    rcpt: ['one@ours.test', 'two@ours.test'],
    subject: 'Quarterly report',
    result: 'softfail',
    spf_result: 'softfail (mx.ours.test: domain of sender.test does not designate 192.0.2.9)',
  },
  from: 'postmaster@mx.ours.test',
  to: 'jo@sender.test',
  receiver: 'mx.ours.test',
  date: DATE,
  messageId: '<dsn.1@mx.ours.test>',
  ...extra,
});

/** Header lines (folded lines kept apart) and the body of a composed message. */
function split(message: Buffer): { head: string[]; fields: [string, string][]; body: string } {
  const text = message.toString('utf8');
  const end = text.indexOf('\r\n\r\n');
  assert.ok(end > 0, 'a blank line ends the header');
  const head = text.slice(0, end).split('\r\n');
  const fields: [string, string][] = [];
  for (const line of head) {
    if (/^[ \t]/.test(line)) fields[fields.length - 1]![1] += line;
    else fields.push([line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()]);
  }
  return { head, fields, body: text.slice(end + 4) };
}

test('a DSN has the header fields of an automatic reply and a 7bit text body', () => {
  const message = composeDsn(base());
  const { fields, body } = split(message);
  assert.deepEqual(fields, [
    ['From', 'postmaster@mx.ours.test'],
    ['To', 'jo@sender.test'],
    ['Subject', 'Possible forgery of your address (SPF softfail)'],
    ['Date', 'Tue, 01 Jul 2025 12:00:05 +0000'],
    ['Message-ID', '<dsn.1@mx.ours.test>'],
    ['Auto-Submitted', 'auto-replied'],
    ['MIME-Version', '1.0'],
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Content-Transfer-Encoding', '7bit'],
  ]);
  assert.match(body, /\r\n {2}Subject: Quarterly report\r\n/);
  assert.match(body, /\r\n {4}one@ours\.test\r\n {4}two@ours\.test\r\n/, 'recipients in a column');
  assert.match(body, /giving jo@sender\.test as its sender/);
  assert.ok(!/(^|[^\r])\n/.test(message.toString()), 'CRLF line ends only');
  assert.ok(message.toString().endsWith('\r\n'));
  const generated = split(composeDsn(base({ messageId: undefined }))).fields;
  assert.match(generated.find(([n]) => n === 'Message-ID')![1], /^<[0-9a-f-]{36}@mx\.ours\.test>$/);
});

test('hostile values reach neither a header nor a body line unsafely, and are bounded', () => {
  const crlfSubject = `Hello\r\nBcc: victim@else.test\r\n\r\nInjected body\u0000${'s'.repeat(1_000)}`;
  const template = parseTemplate(
    'Subject: Re: %(subject)s for %(rcpt)s\nX-Sender: %(sender)s\n\n%(subject)s\n  %(rcpt)s\nEnd %(sender)s\n',
    'hostile',
    'hostile.txt',
  );
  const rcpt = [
    'a@ours.test\r\nBcc: victim@else.test',
    'b\u0000@ours.test\u2028line\u202e',
    ...Array.from({ length: 58 }, (_, i) => `r${i}@ours.test`),
  ];
  const message = composeDsn(
    base({
      template,
      values: { rcpt, subject: crlfSubject, sender: 'evil\r\nTo: victim@else.test' },
    }),
  );
  const { head, fields, body } = split(message);
  for (const line of head) {
    assert.match(line, /^[\x20-\x7e]*$/, line);
    assert.ok(line.length <= 998);
  }
  assert.deepEqual(
    fields.map(([name]) => name),
    [
      'From',
      'To',
      'Subject',
      'Date',
      'Message-ID',
      'Auto-Submitted',
      'X-Sender',
      'MIME-Version',
      'Content-Type',
      'Content-Transfer-Encoding',
    ],
  );
  assert.ok(!fields.some(([name]) => /^(bcc|cc)$/i.test(name)));
  assert.equal(fields.find(([n]) => n === 'To')![1], 'jo@sender.test');
  const lines = body.split('\r\n');
  for (const line of lines) {
    assert.ok(!/[\x00-\x1f\x7f\u2028\u202e]/.test(line), JSON.stringify(line));
    assert.ok(line.length <= 998);
  }
  assert.ok(
    lines.includes('Hello??Bcc: victim@else.test????Injected body?'.padEnd(197, 's') + '...'),
  );
  assert.equal(lines.filter((l) => /^ {2}r\d+@ours\.test$/.test(l)).length, 48, '50 listed in all');
  assert.ok(lines.includes('  (and 10 more)'));
  assert.ok(lines.includes('End evil??To: victim@else.test'));
});

test('non-ASCII goes quoted-printable in the body and as encoded words in a header', () => {
  const template = parseTemplate(
    'Subject: Warnung: Grüße\n\nBetreff: %(subject)s\n',
    'de',
    'de.txt',
  );
  const message = composeDsn(base({ template, values: { subject: 'Größe \u20ac 100' } }));
  const { fields, body } = split(message);
  assert.match(message.toString(), /^[\x00-\x7f]*$/, 'the message is ASCII on the wire');
  assert.equal(fields.find(([n]) => n === 'Subject')![1], '=?utf-8?B?V2FybnVuZzogR3LDvMOfZQ==?=');
  assert.equal(fields.find(([n]) => n === 'Content-Transfer-Encoding')![1], 'quoted-printable');
  const decoded = Buffer.from(
    body
      .replace(/=\r\n/g, '')
      .replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(Number.parseInt(h, 16))),
    'latin1',
  ).toString('utf8');
  assert.equal(decoded, 'Betreff: Größe \u20ac 100\r\n');
});

test('a template cannot choose the From, To or Auto-Submitted of a DSN', () => {
  const template = parseTemplate(
    'To: %(sender)s\nFrom: postmaster@%(receiver)s\nCc: someone@else.test\nSubject: SPF %(result)s\nAuto-Submitted: auto-generated (configuration error)\n\nbody\n',
    'bms',
    'softfail.txt',
  );
  const { fields } = split(composeDsn(base({ template })));
  assert.equal(fields.find(([n]) => n === 'From')![1], 'postmaster@mx.ours.test');
  assert.equal(fields.filter(([n]) => n === 'To').length, 1);
  assert.equal(fields.find(([n]) => n === 'Auto-Submitted')![1], 'auto-replied');
  assert.ok(!fields.some(([n]) => n === 'Cc'));
});

test('composeDsn refuses addresses and ids it could not write safely', () => {
  assert.throws(() => composeDsn(base({ to: 'jo@sender.test\r\nBcc: x@y.test' })), TypeError);
  assert.throws(() => composeDsn(base({ from: '' })), TypeError);
  assert.throws(() => composeDsn(base({ messageId: '<a b@c>' })), TypeError);
});

// Delivery: the recipient domain's MX is a real smtp-server on loopback.
const ZONE = {
  'sender.test': [{ MX: [10, 'mx.sender.test'] }],
  'mx.sender.test': [{ A: '127.0.0.1' }],
  'nullmx.test': [{ MX: [0, '.'] }],
  'servfail.test': [{ RCODE: 'SERVFAIL' }],
  'ours.test': [{ MX: [10, 'mx.ours.test'] }],
  'mx.ours.test': [{ A: '127.0.0.1' }],
};

let dns: FixtureDnsServer;
const servers: Mx[] = [];
before(async () => {
  dns = await startDnsServer(ZONE);
});
after(() => Promise.all([dns.close(), ...servers.map((s) => s.close())]));

const services = (): NotifyServices => ({
  resolver: createResolver({ servers: [dns.address], timeout: 300, attempts: 1 }),
  smtp: createSmtpClient(),
});
async function sink(options: Parameters<typeof startMx>[0] = {}): Promise<Mx> {
  const mx = await startMx(options);
  servers.push(mx);
  return mx;
}
const settings = (port: number, extra: Partial<DsnSettings> = {}): DsnSettings => ({
  helo: 'mx.ours.test',
  ourNames: ['mx.ours.test'],
  ourAddresses: ['203.0.113.25'],
  allowAddresses: ['127.0.0.1'],
  port,
  timeoutMs: 5_000,
  hostTimeoutMs: 2_000,
  ...extra,
});

test('sendDsn delivers with the null sender, and the sink gets the message as composed', async () => {
  const mx = await sink({ starttls: true });
  const message = composeDsn(
    base({ values: { subject: 'x\r\nBcc: victim@else.test', rcpt: ['a@ours.test\r\nX: y'] } }),
  );
  const r = await sendDsn(message, 'jo@sender.test', services(), settings(mx.port));
  assert.equal(r.outcome, 'delivered', r.detail);
  assert.equal(r.reply?.code, 250);
  assert.equal(mx.deliveries.length, 1);
  const d = mx.deliveries[0]!;
  assert.equal(d.from, '', 'MAIL FROM:<>');
  assert.deepEqual(d.to, ['jo@sender.test']);
  assert.equal(d.secure, true, 'STARTTLS when offered');
  assert.equal(d.raw.toString(), message.toString());
  const { fields } = split(d.raw);
  assert.ok(fields.some(([n, v]) => n === 'Auto-Submitted' && v === 'auto-replied'));
  assert.ok(!fields.some(([n]) => n === 'Bcc' || n === 'X'));
});

test('sendDsn: a 5xx at RCPT or after DATA is rejected, a 4xx is tempfail', async () => {
  const message = composeDsn(base());
  const byRcpt = await sink({ rcpt: () => ({ code: 550, message: '5.1.1 no such user' }) });
  const rcpt = await sendDsn(message, 'jo@sender.test', services(), settings(byRcpt.port));
  assert.equal(rcpt.outcome, 'rejected');
  assert.deepEqual(rcpt.reply, { code: 550, text: '5.1.1 no such user' });
  assert.equal(rcpt.attempts[0]!.stage, 'rcpt');
  assert.equal(byRcpt.deliveries.length, 0);

  const byData = await sink({ data: { code: 554, message: '5.7.1 content refused' } });
  const data = await sendDsn(message, 'jo@sender.test', services(), settings(byData.port));
  assert.equal(data.outcome, 'rejected');
  assert.equal(data.attempts[0]!.stage, 'data');
  assert.equal(data.reply?.code, 554);

  const busy = await sink({ rcpt: () => ({ code: 451, message: '4.3.0 try later' }) });
  const later = await sendDsn(message, 'jo@sender.test', services(), settings(busy.port));
  assert.equal(later.outcome, 'tempfail');
  assert.equal(later.attempts[0]!.code, 451);
});

test('sendDsn: DNS outcomes and our own MX decide without a conversation', async () => {
  const mx = await sink();
  const message = composeDsn(base());
  const cases: [string, string, string][] = [
    ['jo@nullmx.test', 'rejected', 'null-mx'],
    ['jo@absent.test', 'rejected', 'no-domain'],
    ['jo@servfail.test', 'tempfail', 'tempfail'],
    ['jo@ours.test', 'rejected', 'fraud'],
    ['jo@sender.test\r\n', 'rejected', 'invalid'],
  ];
  for (const [to, outcome, cause] of cases) {
    const r = await sendDsn(message, to, services(), settings(mx.port));
    assert.deepEqual([r.outcome, r.cause], [outcome, cause], to);
    assert.equal(r.attempts.length, 0);
  }
  assert.equal(mx.connections, 0);
});
