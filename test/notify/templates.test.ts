import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  builtinTemplates,
  checkTemplate,
  DSN_TEMPLATE_NAMES,
  loadTemplates,
  parseTemplate,
  TemplateError,
} from '../../src/notify/index.js';
import { expandPlaceholders, unknownPlaceholders } from '../../src/notify/placeholders.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mailgate-templates-'));
});
after(() => rm(dir, { recursive: true, force: true }));

async function templateDir(files: Record<string, string | Buffer>): Promise<string> {
  const d = await mkdtemp(join(dir, 'set-'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(d, name), text);
  return d;
}

test('five built-in templates, each with a Subject, each clean under checkTemplate', () => {
  const templates = builtinTemplates();
  assert.deepEqual(Object.keys(templates).sort(), [...DSN_TEMPLATE_NAMES].sort());
  for (const name of DSN_TEMPLATE_NAMES) {
    const t = templates[name];
    assert.equal(t.source, 'built-in');
    assert.ok(
      t.headers.some((h) => h.name === 'Subject'),
      name,
    );
    assert.deepEqual(checkTemplate(t), [], name);
    assert.match(t.body, /%\(rcpt\)s/, name);
    assert.match(t.body, /%\(receiver\)s/, name);
  }
});

test('each built-in says plainly whether the message must be sent again', () => {
  const templates = builtinTemplates();
  for (const name of ['strike3', 'softfail', 'neutral', 'permerror'] as const) {
    assert.match(templates[name].body, /WARNING ONLY/, name);
    assert.match(
      templates[name].body,
      /do\s+not\s+need\s+to\s+send\s+it\s+again|do not need to send your message again/i,
      name,
    );
  }
  assert.match(templates.quarantine.body, /NOT been delivered/);
  assert.match(templates.quarantine.body, /do not simply send it again/);
  assert.match(templates.permerror.body, /%\(perm_error\)s/);
  assert.match(templates.softfail.headers[0]!.value, /%\(result\)s/);
});

test('parseTemplate reads headers, folded lines, CRLF and a BOM', () => {
  const t = parseTemplate(
    '\ufeffSubject: SPF %(result)s\r\n  for %(sender)s\r\nX-Note: kept\r\n\r\nHello\r\n%(rcpt)s\r\n',
    'softfail',
    'softfail.txt',
  );
  assert.deepEqual(t.headers, [
    { name: 'Subject', value: 'SPF %(result)s for %(sender)s' },
    { name: 'X-Note', value: 'kept' },
  ]);
  assert.equal(t.body, 'Hello\n%(rcpt)s\n');
});

test('a template without Subject, blank line or sound header lines names its file', () => {
  const bad: [string, RegExp][] = [
    ['X-Other: a\n\nbody\n', /bad\.txt: no Subject header/],
    ['Subject: a\nbody without a blank line', /bad\.txt: no blank line/],
    ['Subject: a\nnot a header\n\nbody', /bad\.txt: line 2: not a header field/],
    [' folded first\nSubject: a\n\nbody', /bad\.txt: line 1: continuation/],
    ['Bad Name: a\nSubject: a\n\nbody', /bad\.txt: line 1: not a header field/],
  ];
  for (const [text, message] of bad) {
    assert.throws(
      () => parseTemplate(text, 'bad', 'bad.txt'),
      (err: unknown) => {
        assert.ok(err instanceof TemplateError);
        assert.equal(err.file, 'bad.txt');
        assert.match(err.message, message);
        return true;
      },
    );
  }
});

test('loadTemplates: built-ins, overridden by the files present in the directory', async () => {
  assert.equal((await loadTemplates()).neutral.source, 'built-in');
  const d = await templateDir({
    'softfail.txt':
      'To: %(sender)s\nFrom: postmaster@%(receiver)s\nSubject: Site softfail\n\nOur words.\n',
    'fail.txt': 'not one of ours, never read',
    README: 'ignored',
  });
  const templates = await loadTemplates(d);
  assert.equal(templates.softfail.source, join(d, 'softfail.txt'));
  assert.equal(templates.softfail.body, 'Our words.\n');
  assert.equal(templates.neutral.source, 'built-in');
  // A bms.py-style template's own To and From are reported, not used.
  assert.deepEqual(
    checkTemplate(templates.softfail).map((p) => [p.kind, p.detail.split(':')[0]]),
    [
      ['ignored-header', 'To'],
      ['ignored-header', 'From'],
    ],
  );
});

test('loadTemplates: a bad, unreadable or non-UTF-8 file is an error naming it', async () => {
  const noSubject = await templateDir({ 'neutral.txt': 'X-A: b\n\nbody\n' });
  await assert.rejects(loadTemplates(noSubject), (err: unknown) => {
    assert.ok(err instanceof TemplateError);
    assert.equal(err.file, join(noSubject, 'neutral.txt'));
    assert.match(err.message, /neutral\.txt: no Subject header/);
    return true;
  });
  const latin1 = await templateDir({
    'strike3.txt': Buffer.from('Subject: caf\xe9\n\nx\n', 'latin1'),
  });
  await assert.rejects(loadTemplates(latin1), /strike3\.txt: not UTF-8 text/);
  const directory = await templateDir({});
  await mkdir(join(directory, 'permerror.txt'));
  await assert.rejects(
    loadTemplates(directory),
    /permerror\.txt: cannot read the template \(EISDIR\)/,
  );
  const big = await templateDir({ 'quarantine.txt': `Subject: a\n\n${'x'.repeat(70_000)}` });
  await assert.rejects(loadTemplates(big), /quarantine\.txt: larger than/);
  await assert.rejects(
    loadTemplates(join(dir, 'no-such-dir')),
    /no-such-dir: cannot read the template directory \(ENOENT\)/,
  );
  if (process.getuid?.() !== 0) {
    const locked = await templateDir({ 'softfail.txt': 'Subject: a\n\nb\n' });
    await chmod(join(locked, 'softfail.txt'), 0o000);
    await assert.rejects(
      loadTemplates(locked),
      /softfail\.txt: cannot read the template \(EACCES\)/,
    );
  }
});

test('checkTemplate reports placeholders that will be left as written', () => {
  const t = parseTemplate(
    'Subject: %(subjct)s\nX-Id: %(sender)r\n\nHi %(sender)s, 100%% sure, %(nope)s and %(rcpt)s\n',
    'x',
    'x.txt',
  );
  assert.deepEqual(
    checkTemplate(t).map((p) => [p.kind, p.detail]),
    [
      [
        'unknown-placeholder',
        'Subject: %(subjct)s is not a known placeholder; it is left as written',
      ],
      ['unknown-placeholder', 'X-Id: %(sender)r is not a known placeholder; it is left as written'],
      [
        'unknown-placeholder',
        'body line 1: %(nope)s is not a known placeholder; it is left as written',
      ],
    ],
  );
});

test('placeholders: %(name)s filled, %% a percent sign, the rest as written', () => {
  const text = 'a %(sender)s b %(other)s c %% d %(rcpt)x e %(sender s';
  assert.equal(
    expandPlaceholders(text, (name) => `<${name}>`),
    'a <sender> b %(other)s c % d %(rcpt)x e %(sender s',
  );
  assert.deepEqual(unknownPlaceholders(text), ['%(other)s', '%(rcpt)x']);
});
