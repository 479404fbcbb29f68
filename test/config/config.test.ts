import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  ConfigError,
  configWarnings,
  formatDuration,
  loadConfig,
  parseConfig,
  parseConfigText,
  parseDuration,
} from '../../src/config/index.js';

function problemsOf(text: string): readonly string[] {
  try {
    parseConfigText(text, 'test.toml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('durations', () => {
  it('reads units and sums', () => {
    assert.equal(parseDuration('29m'), 29 * 60_000);
    assert.equal(parseDuration('12h'), 12 * 3_600_000);
    assert.equal(parseDuration('40d'), 40 * 86_400_000);
    assert.equal(parseDuration('1h30m'), 90 * 60_000);
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('2w'), 14 * 86_400_000);
    assert.equal(parseDuration(' 10s '), 10_000);
  });
  it('refuses bare numbers, unknown units and junk', () => {
    for (const text of [
      '30',
      '',
      'm',
      '5 m',
      '5x',
      '-5m',
      '5m junk',
      '1e3s',
      `${'9'.repeat(70)}s`,
    ]) {
      assert.equal(parseDuration(text), null, text);
    }
  });
  it('formats with the largest units', () => {
    assert.equal(formatDuration(90 * 60_000), '1h30m');
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(86_400_000 + 1500), '1d1s500ms');
  });
});

describe('configuration', () => {
  it('has a default for every key', () => {
    const config = parseConfig({});
    assert.equal(config.store.url, 'sqlite:./var/mailgate.db');
    assert.equal(config.store.fail, 'open');
    assert.deepEqual(config.policyd.listen, ['inet:10027@127.0.0.1']);
    assert.equal(config.policyd.mode, 'postfix');
    assert.equal(config.greylist.enabled, true);
    assert.equal(config.greylist.period, 29 * 60_000);
    assert.equal(config.greylist.penalty, 10 * 60_000);
    assert.equal(config.greylist.max, 12 * 3_600_000);
    assert.equal(config.greylist.dnsbl_threshold, 1);
    assert.equal(config.greylist.dnswl_threshold, 1);
    assert.equal(config.greylist.rfc_threshold, 2);
    assert.equal(config.greylist.action, 'DEFER_IF_PERMIT greylisted, try again later');
    assert.equal(config.greylist.expire_passed, 40 * 86_400_000);
    assert.equal(config.greylist.expire_greylisted, 10 * 86_400_000);
    assert.equal(config.greylist.dns_budget, 10_000);
    assert.equal(config.store.timeout, 5_000);
    assert.equal(config.store.connect_timeout, 5_000);
    assert.equal(config.store.pool_size, 10);
    assert.equal(config.dns.servers, undefined);
    const longer = parseConfigText(
      '[policyd]\nrequest_timeout = "60s"\n[greylist]\ndns_budget = "30s"\n',
      'x',
    );
    assert.equal(longer.greylist.dns_budget, 30_000);
  });

  it('reads the documented example keys', () => {
    const config = parseConfigText(
      `
[dns]
servers = ["127.0.0.1:53"]
[store]
url = "postgres://mailgate@db.example:5432/mailgate"
fail = "tempfail"
[policy]
listen = ["inet:10027@127.0.0.1", "unix:/run/mailgate/policy.sock"]
mode = "exim"
socket_mode = "0660"
[greylist]
enabled = true
period = "5m"
penalty = "1m"
max = "6h"
dnsbl = ["zone.example", { zone = "other.example", weight = 2, codes = ["127.0.0.2-127.0.0.11"] }]
dnswl = ["list.example"]
dnsbl_threshold = 2
dnswl_threshold = 1
rfc_threshold = 3
whitelist_recipients = "/etc/mailgate/whitelist_recipients"
whitelist_clients = "/etc/mailgate/whitelist_clients"
`,
      'example.toml',
    );
    assert.deepEqual(config.dns.servers, ['127.0.0.1:53']);
    assert.equal(config.store.fail, 'tempfail');
    assert.equal(config.policyd.mode, 'exim');
    assert.equal(config.policyd.socket_mode, 0o660);
    assert.equal(config.greylist.period, 300_000);
    assert.deepEqual(config.greylist.dnsbl, [
      { zone: 'zone.example', kind: 'dnsbl' },
      { zone: 'other.example', kind: 'dnsbl', weight: 2, codes: ['127.0.0.2-127.0.0.11'] },
    ]);
    assert.deepEqual(config.greylist.dnswl, [{ zone: 'list.example', kind: 'dnswl' }]);
    assert.equal(config.greylist.whitelist_clients, '/etc/mailgate/whitelist_clients');
  });

  it('reads [registry] with its services, codes in upper case', () => {
    const config = parseConfigText(
      '[registry]\nenabled = true\nzone = "Registry.Example"\n[registry.services.s1]\ngrades = { a = 9, B = 7 }\nweight = 5\n',
      'x',
    );
    assert.equal(config.registry.zone, 'registry.example');
    assert.deepEqual(config.registry.services, { S1: { grades: { A: 9, B: 7 }, weight: 5 } });
    assert.equal(config.registry.time_budget, 10_000);
    assert.deepEqual(
      config.registry.methods.map((m) => m.name),
      ['QR1', 'CSV', 'SPF'],
    );
  });

  it('names unknown keys, at the top and in tables', () => {
    assert.deepEqual(problemsOf('colour = "blue"\n'), ['colour: unknown key']);
    assert.deepEqual(problemsOf('[greylist]\nperod = "5m"\n'), ['greylist.perod: unknown key']);
    assert.deepEqual(problemsOf('[greylist]\ndnsbl = [{ zone = "a.example", wieght = 2 }]\n'), [
      'greylist.dnsbl[0].wieght: unknown key',
    ]);
  });

  it('names bad values with the key', () => {
    const cases: Array<[string, RegExp]> = [
      ['[greylist]\nperiod = "5"\n', /^greylist\.period: not a duration: "5"/],
      ['[greylist]\nperiod = 300\n', /^greylist\.period: /],
      ['[store]\nfail = "closed"\n', /^store\.fail: /],
      ['[store]\nurl = "mysql://x"\n', /^store\.url: must start with sqlite: or postgres:\/\//],
      ['[policyd]\nlisten = ["bogus"]\n', /^policyd\.listen\[0\]: listen spec "bogus"/],
      ['[policyd]\nlisten = []\n', /^policyd\.listen: /],
      ['[policyd]\nmode = "sendmail"\n', /^policyd\.mode: /],
      ['[policyd]\nsocket_mode = "rw"\n', /^policyd\.socket_mode: /],
      ['[dns]\nservers = ["not an address"]\n', /^dns\.servers\[0\]: /],
      ['[dns]\nattempts = 0\n', /^dns\.attempts: /],
      [
        '[greylist]\ndnsbl = [{ zone = "a.example", codes = ["10.0.0.1"] }]\n',
        /^greylist\.dnsbl: .*127\.0\.0\.0\/8/,
      ],
      ['[greylist]\nrfc_threshold = -1\n', /^greylist\.rfc_threshold: /],
      ['[greylist]\naction = "DEFER_IF_PERMIT a\\nb"\n', /^greylist\.action: must be one line/],
      ['[greylist]\nauto_whitelist_clients = 1.5\n', /^greylist\.auto_whitelist_clients: /],
      ['[greylist]\ndns_budget = "50ms"\n', /^greylist\.dns_budget: /],
      ['[store]\npool_size = 0\n', /^store\.pool_size: /],
      ['[store]\ntimeout = "1ms"\n', /^store\.timeout: /],
      ['hostname = "bad host"\n', /^hostname: /],
      ['[log]\nlevel = "loud"\n', /^log\.level: /],
      ['[registry]\nenabled = true\n', /^registry\.zone: required when registry\.enabled/],
      [
        '[registry]\nmethods = [{ name = "SID", max_queries = 3 }]\n',
        /^registry\.methods\[0\]\.name: /,
      ],
      [
        '[registry]\nmethods = [{ name = "SPF", max_queries = 3 }, { name = "SPF", max_queries = 9 }]\n',
        /^registry\.methods: a method is listed twice/,
      ],
      ['[registry.services."S 1"]\ngrades = { A = 9 }\nweight = 5\n', /^registry\.services/],
      [
        '[registry.services.S1]\ngrades = { A = "good" }\nweight = 5\n',
        /^registry\.services\.S1\.grades\.A: /,
      ],
      ['[registry]\nfilter = "drop"\n', /^registry\.filter: /],
      ['[registry]\nhelp = "see the site"\n', /^registry\.help: /],
    ];
    for (const [text, pattern] of cases) {
      const problems = problemsOf(text);
      assert.equal(problems.length, 1, `${text}: ${problems.join(' | ')}`);
      assert.match(problems[0] ?? '', pattern, text);
    }
  });

  it('warns about a registry check that trusts no rating service', () => {
    const bare = configWarnings(
      parseConfigText(
        '[registry]\nenabled = true\nzone = "registry.example"\nfilter = "quarantine"\n',
        'x',
      ),
    );
    assert.deepEqual(
      bare.map((w) => w.key),
      ['registry.services'],
    );
    assert.match(bare[0]?.problem ?? '', /every ID with a record is FILTER.*holds it/);
    const trusted = configWarnings(
      parseConfigText(
        '[registry]\nenabled = true\nzone = "registry.example"\n[registry.services.S1]\ngrades = { A = 9 }\nweight = 5\n',
        'x',
      ),
    );
    assert.deepEqual(trusted, []);
  });

  it('warns about a DNS budget the request timeout would cut short', () => {
    assert.deepEqual(configWarnings(parseConfig({})), []);
    for (const text of [
      '[greylist]\ndns_budget = "20s"\n',
      '[policyd]\nrequest_timeout = "5s"\n',
    ]) {
      const warnings = configWarnings(parseConfigText(text, 'x'));
      assert.equal(warnings.length, 1, text);
      assert.equal(warnings[0]?.key, 'greylist.dns_budget');
      assert.match(warnings[0]?.problem ?? '', /not shorter than policyd\.request_timeout/);
    }
    // The store's timeout after a full DNS budget must still fit in the request timeout.
    const hanging = configWarnings(parseConfigText('[store]\ntimeout = "15s"\n', 'x'));
    assert.deepEqual(
      hanging.map((w) => w.key),
      ['store.timeout'],
    );
    assert.match(hanging[0]?.problem ?? '', /follow(ing)? store\.fail/);
    const off = parseConfigText(
      '[policyd]\nrequest_timeout = "5s"\n[greylist]\nenabled = false\n',
      'x',
    );
    assert.deepEqual(configWarnings(off), []);
  });

  it('reports every problem at once', () => {
    const problems = problemsOf('[greylist]\nperiod = "x"\nmax = "y"\n[store]\nfail = "z"\n');
    assert.equal(problems.length, 3);
  });

  it('gives TOML syntax errors with file, line and column', () => {
    assert.throws(
      () => parseConfigText('[store]\nurl = \n', 'bad.toml'),
      (err: unknown) => err instanceof ConfigError && /^bad\.toml:2:\d+: /.test(err.message),
    );
  });

  describe('files', () => {
    let dir = '';
    after(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });
    it('loads a file, and names a file it cannot read', async () => {
      dir = await mkdtemp(join(tmpdir(), 'mailgate-config-'));
      const path = join(dir, 'mailgate.toml');
      await writeFile(path, '[greylist]\nperiod = "1m"\n');
      assert.equal((await loadConfig(path)).greylist.period, 60_000);
      assert.equal((await loadConfig()).greylist.period, 29 * 60_000);
      await assert.rejects(loadConfig(join(dir, 'missing.toml')), (err: unknown) => {
        return (
          err instanceof ConfigError && err.message.includes('missing.toml: cannot read: ENOENT')
        );
      });
    });
  });
});

describe('[reputation]', () => {
  it('has a default for every key', () => {
    assert.deepEqual(parseConfig({}).reputation, {
      enabled: true,
      half_life: 30 * 86_400_000,
      min_score: 0.5,
      min_confidence: 0.5,
      observations_for_confidence: 10,
      flush_interval: 1_000,
      greylist_skip: false,
      cbv_skip: false,
    });
  });

  it('reads every key', () => {
    const config = parseConfigText(
      `[reputation]
enabled = false
half_life = "7d"
min_score = -0.25
min_confidence = 0.9
observations_for_confidence = 2.5
flush_interval = "250ms"
greylist_skip = true
cbv_skip = true
`,
      'reputation.toml',
    );
    assert.deepEqual(config.reputation, {
      enabled: false,
      half_life: 7 * 86_400_000,
      min_score: -0.25,
      min_confidence: 0.9,
      observations_for_confidence: 2.5,
      flush_interval: 250,
      greylist_skip: true,
      cbv_skip: true,
    });
  });

  it('names bad values with the key', () => {
    const cases: Array<[string, RegExp]> = [
      ['half_life = "30"', /^reputation\.half_life: not a duration: "30"/],
      ['half_life = "59m"', /^reputation\.half_life: 59m is out of range \(1h to 3650d\)/],
      ['half_life = "3651d"', /^reputation\.half_life: 3651d is out of range/],
      ['min_score = 1.5', /^reputation\.min_score: /],
      ['min_score = -2', /^reputation\.min_score: /],
      ['min_score = "high"', /^reputation\.min_score: /],
      ['min_confidence = 1', /^reputation\.min_confidence: /],
      ['min_confidence = -0.1', /^reputation\.min_confidence: /],
      ['observations_for_confidence = 0', /^reputation\.observations_for_confidence: /],
      ['flush_interval = "5ms"', /^reputation\.flush_interval: 5ms is out of range/],
      ['flush_interval = "2m"', /^reputation\.flush_interval: 2m is out of range/],
      ['greylist_skip = "yes"', /^reputation\.greylist_skip: /],
      ['cbv_skp = true', /^reputation\.cbv_skp: unknown key/],
    ];
    for (const [line, expected] of cases) {
      const problems = problemsOf(`[reputation]\n${line}\n`);
      assert.equal(problems.length, 1, `${line}: ${problems.join('; ')}`);
      assert.match(problems[0]!, expected, line);
    }
  });
});

describe('the shipped example', () => {
  it('etc/mailgate.toml is valid and its commented values are the defaults', async () => {
    const { readFile } = await import('node:fs/promises');
    const text = await readFile(new URL('../../etc/mailgate.toml', import.meta.url), 'utf8');
    assert.deepEqual(parseConfigText(text, 'etc/mailgate.toml'), parseConfig({}));
    // Uncommenting every key that holds a default gives the same configuration: the example
    // says the truth about the defaults. (Lines with example values are left commented.)
    const examples = new Set([
      'hostname',
      'servers',
      'url',
      'socket_mode',
      'dnsbl',
      'dnswl',
      'hello_blacklist',
      'authserv_id',
      'fallback_zone',
      'access_file',
      'templates',
      'postmaster',
      'helo_name',
      'zone',
      'help',
      'grades',
      'weight',
    ]);
    const uncommented = text.replace(/^#(\w+) = /gmu, (line, key: string) =>
      examples.has(key) || key.startsWith('whitelist_') ? line : `${key} = `,
    );
    assert.notEqual(uncommented, text);
    assert.deepEqual(parseConfigText(uncommented, 'uncommented'), parseConfig({}));
  });
});

describe('[http]', () => {
  it('is off by default, with metrics on once it listens', () => {
    assert.deepEqual(parseConfig({}).http, { listen: [], metrics: true, chart_hours: 3 });
  });

  it('listens on loopback and unix sockets without a token, beyond loopback only with one', () => {
    for (const listen of [
      'inet:9028@127.0.0.1',
      'inet6:9028@::1',
      'inet:9028@localhost',
      'unix:/run/mg.sock',
    ]) {
      assert.deepEqual(parseConfig({ http: { listen: [listen] } }).http.listen, [listen]);
    }
    for (const listen of ['inet:9028@0.0.0.0', 'inet:9028@192.0.2.1', 'inet6:9028@::']) {
      assert.throws(
        () => parseConfig({ http: { listen: ['inet:9028@127.0.0.1', listen] } }),
        /http\.listen\[1\]: listens beyond loopback, which needs http\.token/,
        listen,
      );
      const token = 'a-long-enough-token-1234';
      assert.equal(parseConfig({ http: { listen: [listen], token } }).http.token, token);
    }
  });

  it('wants a token of 16 printable characters or more, without blanks', () => {
    assert.throws(() => parseConfig({ http: { token: 'short' } }), /http\.token: /);
    assert.throws(() => parseConfig({ http: { token: 'has a blank in it ok' } }), /http\.token: /);
    assert.throws(() => parseConfig({ http: { chart_hours: 0 } }), /http\.chart_hours: /);
  });
});
