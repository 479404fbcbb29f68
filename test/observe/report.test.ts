// The decision-log report over a real SQLite store filled through logDecision with lines as the
// policy engine and greylisting write them: every count is what was written, paging changes
// nothing, hostile names stay text in every format, and the HTML page renders in Chromium with
// the bars it should have and no console errors.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import {
  buildReport,
  type DecisionReport,
  renderHtml,
  renderJson,
  renderText,
} from '../../src/observe/index.js';
import { type Decision, openStore, type Store } from '../../src/store/index.js';
import { skipUnlessBrowser, startBrowser } from '../support/browser.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;
/** The report's period: one UTC day. */
const FROM = Date.UTC(2026, 11, 7, 0, 0, 0);
const TO = FROM + 24 * HOUR;
const HOSTILE = `\u001b[31m<script>alert(1)</script><img src=x onerror="alert(2)">'&\r\n`;

let dir: string;
let serial = 0;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mailgate-report-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function freshStore(): Promise<Store> {
  return openStore(`sqlite:${join(dir, `report-${++serial}.db`)}`);
}

/** A policy-engine line (it names its stage). */
function policy(at: number, fields: Partial<Decision> & Pick<Decision, 'action' | 'reason'>) {
  return {
    time: at,
    host: 'mx1.example.net',
    client: '192.0.2.1',
    sender: 'someone@example.org',
    recipient: 'bob@ours.example',
    stage: 'mail',
    tags: [],
    ...fields,
  } satisfies Decision;
}

/** A greylisting line (no stage). */
function grey(
  at: number,
  triplet: string,
  action: 'pass' | 'greylist',
  reason: string,
  delay?: number,
): Decision {
  const line: Decision = {
    time: at,
    host: 'mx1.example.net',
    client: `10.0.0.${triplet.charCodeAt(0)}`,
    sender: `${triplet.toLowerCase()}@sender.example`,
    recipient: 'bob@ours.example',
    action,
    reason,
    scores: { helo: 1 },
  };
  if (delay !== undefined) line.delay = delay;
  return line;
}

const h = (hour: number, minute = 0) => FROM + hour * HOUR + minute * MINUTE;

/** What was written: every line of the fixture, in no particular order. */
function fixture(): Decision[] {
  const lines: Decision[] = [];
  const repeat = (n: number, make: (i: number) => Decision) => {
    for (let i = 0; i < n; i++) lines.push(make(i));
  };
  // SPF fail: refused at MAIL FROM.
  repeat(3, (i) =>
    policy(h(1, i), {
      action: 'reject',
      reason: 'spf-fail',
      client: '203.0.113.9',
      helo: 'bad.example',
      sender: 'x@Spam.Example',
      tags: ['REJECT', 'SPF fail', 'policy default'],
    }),
  );
  repeat(2, (i) =>
    policy(h(2, i), {
      action: 'reject',
      reason: 'numeric-helo',
      stage: 'helo',
      client: '198.51.100.7',
      helo: '[198.51.100.7]',
      sender: 'a@spam.example',
      tags: ['REJECT', 'numeric hello name'],
    }),
  );
  lines.push(
    policy(h(3), {
      action: 'reject',
      reason: 'helo-self',
      stage: 'helo',
      client: '192.0.2.66',
      helo: HOSTILE,
      sender: `evil@${HOSTILE}`,
      tags: ['REJECT', 'spam from self'],
    }),
  );
  // Call-backs: two refused (one from the cache), one deferred for DNS, one accepted, one skipped.
  repeat(2, (i) =>
    policy(h(4, i), {
      action: 'reject',
      reason: 'cbv-rejected',
      stage: 'eom',
      client: '192.0.2.50',
      helo: 'mx.fake.example',
      sender: 'nobody@fake.example',
      tags: ['REJECT', 'CBV', 'spf-softfail', 'rejected', ...(i === 0 ? ['cached'] : [])],
    }),
  );
  lines.push(
    policy(h(5), {
      action: 'tempfail',
      reason: 'cbv-tempfail',
      stage: 'eom',
      tags: ['TEMPFAIL', 'CBV', 'spf-softfail', 'MX lookup for fake.example failed (timeout)'],
    }),
  );
  lines.push(
    policy(h(5, 30), {
      action: 'pass',
      reason: 'eom',
      stage: 'eom',
      tags: ['eom', 'CBV', 'spf-softfail', 'accepted'],
    }),
  );
  lines.push(
    policy(h(5, 40), {
      action: 'pass',
      reason: 'eom',
      stage: 'eom',
      tags: ['eom', 'CBV', 'spf-softfail', 'skipped: good standing', 'net:192.0.2.0/24'],
    }),
  );
  // DNS trouble, and a tempfail that is not DNS.
  repeat(2, (i) =>
    policy(h(6, i), {
      action: 'tempfail',
      reason: 'spf-temperror',
      tags: ['TEMPFAIL', 'SPF temperror', 'policy default'],
    }),
  );
  lines.push(
    policy(h(6, 10), {
      action: 'tempfail',
      reason: 'three-strikes-tempfail',
      tags: ['TEMPFAIL', 'SPF none', 'policy default', 'three strikes DNS failure'],
    }),
  );
  lines.push(
    policy(h(6, 20), {
      action: 'tempfail',
      reason: 'internal-error',
      stage: 'rcpt',
      tags: ['TEMPFAIL', 'internal error'],
    }),
  );
  // Delivered messages, one held.
  repeat(5, (i) =>
    policy(h(7, i), {
      action: 'pass',
      reason: 'eom',
      stage: 'eom',
      tags: ['eom', 'DKIM pass:example.org'],
    }),
  );
  lines.push(
    policy(h(7, 30), {
      action: 'quarantine',
      reason: 'quarantine',
      stage: 'eom',
      tags: ['eom', 'DMARC fail example.com', 'policy quarantine: held', 'QUARANTINE'],
    }),
  );
  // Greylisting. A: early retry, then passes after 20 minutes. B: 30 s. C: never comes back.
  // D: greylisted for DNS trouble, retries too early, never passes. E: 2 h, then known.
  // F: max-wait after 5 h. G: whitelisted, never greylisted. H: exactly 5 minutes. I: 59 s.
  // J: greylisted before the period, passes in it. K: passes only after the period.
  lines.push(grey(h(8), 'A', 'greylist', 'score'));
  lines.push(grey(h(8, 2), 'A', 'greylist', 'early-retry'));
  lines.push(grey(h(8, 20), 'A', 'pass', 'waited', 1200));
  lines.push(grey(h(9), 'B', 'greylist', 'score'));
  lines.push(grey(h(9) + 30_000, 'B', 'pass', 'waited', 30));
  lines.push(grey(h(10), 'C', 'greylist', 'dnsbl'));
  lines.push(grey(h(10, 30), 'D', 'greylist', 'dns-tempfail'));
  lines.push(grey(h(10, 35), 'D', 'greylist', 'early-retry'));
  lines.push(grey(h(11), 'E', 'greylist', 'score'));
  lines.push(grey(h(13), 'E', 'pass', 'waited', 7200));
  lines.push(grey(h(13, 30), 'E', 'pass', 'known'));
  lines.push(grey(h(12), 'F', 'greylist', 'score'));
  lines.push(grey(h(17), 'F', 'pass', 'max-wait', 18_000));
  lines.push(grey(h(14), 'G', 'pass', 'whitelist-client'));
  lines.push(grey(h(14, 10), 'H', 'greylist', 'score'));
  lines.push(grey(h(14, 15), 'H', 'pass', 'waited', 300));
  lines.push(grey(h(15), 'I', 'greylist', 'score'));
  lines.push(grey(h(15) + 59_000, 'I', 'pass', 'waited', 59));
  lines.push(grey(FROM - 5 * MINUTE, 'J', 'greylist', 'score'));
  lines.push(grey(FROM + 5 * MINUTE, 'J', 'pass', 'waited', 600));
  lines.push(grey(h(23, 50), 'K', 'greylist', 'score'));
  lines.push(grey(TO + 20 * MINUTE, 'K', 'pass', 'waited', 1800));
  // Just outside the period on either side: never counted.
  lines.push(
    policy(FROM - 1, { action: 'reject', reason: 'spf-fail', tags: ['REJECT', 'SPF fail'] }),
  );
  lines.push(policy(TO, { action: 'reject', reason: 'spf-fail', tags: ['REJECT', 'SPF fail'] }));
  return lines;
}

const inPeriod = (lines: Decision[]) => lines.filter((l) => l.time >= FROM && l.time < TO);
const names = (list: { name: string; count: number }[]) => list.map((c) => [c.name, c.count]);

describe('buildReport', () => {
  let store: Store;
  let report: DecisionReport;
  const written = fixture();

  before(async () => {
    store = await freshStore();
    // Shuffled, so that nothing depends on the order lines were written in.
    const shuffled = [...written].sort((a, b) => ((a.time * 7919) % 101) - ((b.time * 7919) % 101));
    await Promise.all(shuffled.map((line) => store.logDecision(line)));
    // What greylisting holds now: two triplets waiting, one passed; one client at the
    // auto-whitelist threshold and one below it.
    const key = (n: number) => ({ client: `10.9.9.${n}`, sender: 's@x.example', recipient: 'r@y' });
    await store.firstAttempt(key(1), 'greylisted', FROM);
    await store.firstAttempt(key(2), 'greylisted', FROM);
    await store.firstAttempt(key(3), 'greylisted', FROM);
    await store.recordPass(key(3), FROM + HOUR);
    for (let i = 0; i < 5; i++)
      await store.countClient('10.9.9.3', FROM + i * HOUR, FROM + i * HOUR);
    for (let i = 0; i < 2; i++)
      await store.countClient('10.9.9.4', FROM + i * HOUR, FROM + i * HOUR);
    report = await buildReport(store, { from: FROM, to: TO, whitelistAt: 5 });
  });
  after(() => store.close());

  it('counts every line of the period and nothing outside it', () => {
    assert.equal(report.from, FROM);
    assert.equal(report.to, TO);
    assert.equal(report.total, inPeriod(written).length);
    assert.equal(report.total, 41);
    assert.equal(report.policyLines, 21);
    assert.equal(report.greylistLines, 20);
  });

  it('counts verdicts, reasons and stages', () => {
    assert.deepEqual(names(report.actions), [
      ['pass', 16],
      ['greylist', 11],
      ['reject', 8],
      ['tempfail', 5],
      ['quarantine', 1],
    ]);
    const reason = (action: string, word: string) =>
      report.reasons.find((r) => r.action === action && r.reason === word)?.count;
    assert.equal(reason('reject', 'spf-fail'), 3);
    assert.equal(reason('reject', 'numeric-helo'), 2);
    assert.equal(reason('reject', 'cbv-rejected'), 2);
    assert.equal(reason('tempfail', 'spf-temperror'), 2);
    assert.equal(reason('pass', 'eom'), 7);
    assert.equal(reason('greylist', 'score'), 7);
    assert.equal(reason('greylist', 'early-retry'), 2);
    assert.equal(reason('pass', 'waited'), 6);
    assert.equal(reason('pass', 'max-wait'), 1);
    assert.equal(
      report.reasons.reduce((sum, r) => sum + r.count, 0),
      report.total,
    );
    assert.deepEqual(names(report.stages), [
      ['greylisting', 20],
      ['eom', 11],
      ['mail', 6],
      ['helo', 3],
      ['rcpt', 1],
    ]);
  });

  it('reads SPF results from tags and reasons, not from HELO SPF', () => {
    assert.equal(report.spf.lines, 11);
    assert.deepEqual(names(report.spf.results), [
      ['softfail', 5],
      ['fail', 3],
      ['temperror', 2],
      ['none', 1],
    ]);
  });

  it('counts call-back outcomes', () => {
    assert.equal(report.cbv.lines, 5);
    assert.equal(report.cbv.cached, 1);
    assert.deepEqual(names(report.cbv.outcomes), [
      ['CBV rejected', 2],
      ['CBV accepted', 1],
      ['CBV skipped (good standing)', 1],
      ['CBV tempfail', 1],
    ]);
  });

  it('histograms greylisting delays and finds triplets that never came back', () => {
    const g = report.greylisting;
    assert.equal(g.greylisted, 11);
    assert.equal(g.triplets, 9);
    // C and D never passed; K passed only after the period.
    assert.equal(g.neverRetried, 3);
    assert.equal(g.passedAfterWaiting, 7);
    assert.deepEqual(
      g.delays.buckets.map((b) => [b.label, b.count]),
      [
        ['<1m', 2],
        ['1–5m', 0],
        ['5–15m', 2],
        ['15–60m', 1],
        ['1–4h', 1],
        ['>4h', 1],
      ],
    );
    // Delays 30, 59, 300, 600, 1200, 7200, 18000: rank 4 and rank 7.
    assert.equal(g.delays.medianSeconds, 600);
    assert.equal(g.delays.p90Seconds, 18_000);
    assert.equal(g.delays.maxSeconds, 18_000);
  });

  it('lists the most rejected clients, HELO names and sender domains', () => {
    assert.equal(report.rejected.lines, 8);
    assert.deepEqual(names(report.rejected.clients), [
      ['203.0.113.9', 3],
      ['192.0.2.50', 2],
      ['198.51.100.7', 2],
      ['192.0.2.66', 1],
    ]);
    assert.deepEqual(names(report.rejected.helos).slice(0, 3), [
      ['bad.example', 3],
      ['[198.51.100.7]', 2],
      ['mx.fake.example', 2],
    ]);
    assert.equal(report.rejected.helos.length, 4);
    assert.deepEqual(names(report.rejected.senderDomains).slice(0, 2), [
      ['spam.example', 5],
      ['fake.example', 2],
    ]);
    assert.equal(report.rejected.senderDomains.length, 3);
  });

  it('counts DNS tempfails by reason', () => {
    assert.equal(report.dnsTempfails.total, 5);
    assert.deepEqual(names(report.dnsTempfails.reasons), [
      ['spf-temperror', 2],
      ['cbv-tempfail', 1],
      ['dns-tempfail', 1],
      ['three-strikes-tempfail', 1],
    ]);
  });

  it('counts decisions per hour by verdict, and SPF results per hour', () => {
    assert.equal(report.bucketMs, HOUR);
    const at = (hour: number, name: string) =>
      report.timeline.find((c) => c.bucket === h(hour) && c.name === name)?.count;
    assert.equal(at(1, 'reject'), 3);
    assert.equal(at(6, 'tempfail'), 4);
    assert.equal(at(7, 'pass'), 5);
    assert.equal(at(7, 'quarantine'), 1);
    assert.equal(at(8, 'greylist'), 2);
    assert.equal(at(8, 'pass'), 1);
    assert.equal(at(0, 'pass'), 1);
    assert.equal(
      report.timeline.reduce((sum, c) => sum + c.count, 0),
      report.total,
    );
    const expectedPairs = new Set(
      inPeriod(written).map((l) => `${Math.floor((l.time - FROM) / HOUR)} ${l.action}`),
    );
    assert.equal(report.timeline.length, expectedPairs.size);
    assert.deepEqual(
      report.spfTimeline.map((c) => [(c.bucket - FROM) / HOUR, c.name, c.count]),
      [
        [1, 'fail', 3],
        [4, 'softfail', 2],
        [5, 'softfail', 3],
        [6, 'temperror', 2],
        [6, 'none', 1],
      ],
    );
  });

  it('says what greylisting holds now', () => {
    assert.deepEqual(report.greylistNow, { waiting: 2, passed: 1, whitelisted: 1 });
  });

  it('gives the same report whatever the page size', async () => {
    for (const pageSize of [1, 3, 40, 41, 42]) {
      const paged = await buildReport(store, { from: FROM, to: TO, whitelistAt: 5, pageSize });
      assert.deepEqual(paged, report, `page size ${pageSize}`);
    }
  });

  it('renders JSON that reads back as the report', () => {
    const { fromIso, toIso, ...rest } = JSON.parse(renderJson(report)) as Record<string, unknown>;
    assert.equal(fromIso, '2026-12-07T00:00:00.000Z');
    assert.equal(toIso, '2026-12-08T00:00:00.000Z');
    assert.deepEqual(rest, report);
  });

  it('renders aligned text with hostile names escaped', () => {
    const text = renderText(report);
    assert.doesNotMatch(text, /[\u0000-\u0009\u000b-\u001f\u007f]/);
    assert.match(text, /^period {2}2026-12-07 00:00 UTC to 2026-12-08 00:00 UTC \(24h\)$/m);
    assert.match(text, /^ {2}reject +8 +19\.5%$/m);
    assert.match(text, /^ {2}203\.0\.113\.9 +3$/m);
    assert.match(text, /^ {2}never retried +3 +33\.3%$/m);
    assert.match(text, /^ {2}median delay +10m$/m);
    assert.match(text, /^ {2}>4h +1 +#+$/m);
    // The hostile HELO shows its escape as text, not as a terminal command.
    assert.match(text, /\\x1b\[31m/);
    // Numbers line up: every row of the verdicts table ends its count in the same column.
    const verdicts = text.split('\n\n').find((s) => s.startsWith('Verdicts'))!;
    const ends = verdicts
      .split('\n')
      .slice(2)
      .map((row) => /\d+(?= +\d+\.\d%$)/.exec(row)!)
      .map((m) => m.index + m[0].length);
    assert.equal(new Set(ends).size, 1);
  });

  it('renders HTML with every name from the log escaped', () => {
    const html = renderHtml(report);
    assert.ok(html.startsWith('<!doctype html>'));
    assert.equal((html.match(/<script/gi) ?? []).length, 0);
    assert.doesNotMatch(html, /<img/i);
    assert.match(
      html,
      /&lt;script&gt;alert\(1\)&lt;\/script&gt;&lt;img src=x onerror=&quot;alert\(2\)&quot;&gt;&#39;&amp;/,
    );
    assert.doesNotMatch(html, /[\u0000-\u0008\u000b-\u001f]/);
    // Nothing is fetched from anywhere.
    assert.doesNotMatch(html, /(?:src|href)=["']?(?:https?:)?\/\//i);
    assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
    assert.equal((html.match(/<svg /g) ?? []).length, 3);
  });

  it('loads in Chromium with no console errors and the expected bars', async (t) => {
    if (skipUnlessBrowser(t)) return;
    const shots = mkdtempSync(join(dir, 'browser-'));
    const file = join(shots, 'report.html');
    await writeFile(file, renderHtml(report));
    const browser = await startBrowser({ width: 1200, height: 2400 });
    t.after(() => browser.close());
    await browser.open(pathToFileURL(file).href);
    assert.match(await browser.title(), /^mailgate report: 2026-12-07 00:00 UTC/);
    const timelineBars = await browser.findAll('#chart-timeline rect.bar');
    assert.equal(timelineBars.length, report.timeline.length);
    const barTotal = await browser.executeScript(
      'return [...document.querySelectorAll("#chart-timeline rect.bar")]' +
        '.reduce((sum, bar) => sum + Number(bar.dataset.count), 0);',
    );
    assert.equal(barTotal, report.total);
    // Five of the six delay buckets have passes.
    assert.equal((await browser.findAll('#chart-delays rect.bar')).length, 5);
    // Four SPF results, one point per hour of the day each.
    assert.equal((await browser.findAll('#chart-spf circle.point')).length, 4 * 24);
    // The hostile HELO is text on the page, in the HELO table.
    const helos = await browser.findAll('#table-rejected-helos td.name');
    const shown = await Promise.all(helos.map((cell) => browser.text(cell)));
    assert.ok(
      shown.some((s) => s.includes('<script>alert(1)</script>')),
      shown.join(' | '),
    );
    assert.equal(
      await browser.executeScript('return document.querySelectorAll("script, img").length;'),
      0,
    );
    assert.equal(await browser.text(await browser.find('#card-total b')), String(report.total));
    assert.deepEqual(await browser.consoleErrors(), []);
    const png = join(shots, 'report.png');
    await browser.screenshot(png);
    assert.ok(statSync(png).size > 10_000);
  });
});

describe('buildReport edge cases', () => {
  it('keeps the ten most rejected, ties by name', async () => {
    const store = await freshStore();
    try {
      const writes: Promise<void>[] = [];
      for (let n = 1; n <= 12; n++) {
        for (let i = 0; i < n; i++) {
          writes.push(
            store.logDecision(
              policy(h(1), {
                action: 'reject',
                reason: 'spf-fail',
                client: `192.0.2.${n}`,
                helo: `h${n}.example`,
                sender: `u@d${n % 6}.example`,
              }),
            ),
          );
        }
      }
      await Promise.all(writes);
      const report = await buildReport(store, { from: FROM, to: TO });
      assert.deepEqual(
        report.rejected.clients.map((c) => c.count),
        [12, 11, 10, 9, 8, 7, 6, 5, 4, 3],
      );
      assert.equal(report.rejected.clients[0]!.name, '192.0.2.12');
      assert.equal(report.rejected.helos.length, 10);
      // d0: 6 + 12, d5: 5 + 11, d4: 4 + 10, ...: six domains, all kept.
      assert.deepEqual(names(report.rejected.senderDomains), [
        ['d0.example', 18],
        ['d5.example', 16],
        ['d4.example', 14],
        ['d3.example', 12],
        ['d2.example', 10],
        ['d1.example', 8],
      ]);
      assert.equal(report.greylistNow, undefined);
    } finally {
      await store.close();
    }
  });

  it('pages through more lines than one page holds, many at the same time', async () => {
    const store = await freshStore();
    try {
      const writes: Promise<void>[] = [];
      for (let i = 0; i < 10_001; i++) {
        writes.push(
          store.logDecision(
            policy(h(i % 3), { action: i % 2 ? 'pass' : 'reject', reason: 'x', tags: [] }),
          ),
        );
      }
      await Promise.all(writes);
      const report = await buildReport(store, { from: FROM, to: TO });
      assert.equal(report.total, 10_001);
      assert.deepEqual(names(report.actions), [
        ['reject', 5001],
        ['pass', 5000],
      ]);
      assert.equal(
        report.timeline.find((c) => c.bucket === h(0) && c.name === 'reject')?.count,
        1667,
      );
    } finally {
      await store.close();
    }
  });

  it('reports an empty period, and draws its charts as empty', async () => {
    const store = await freshStore();
    try {
      const report = await buildReport(store, { from: FROM, to: TO, whitelistAt: 5 });
      assert.equal(report.total, 0);
      assert.deepEqual(report.actions, []);
      assert.equal(report.greylisting.delays.medianSeconds, null);
      assert.deepEqual(report.greylistNow, { waiting: 0, passed: 0, whitelisted: 0 });
      const html = renderHtml(report);
      assert.equal((html.match(/no data/g) ?? []).length, 3);
      assert.match(renderText(report), /^Verdicts\n-+\n {2}\(none\)$/m);
    } finally {
      await store.close();
    }
  });

  it('uses longer buckets for long periods', async () => {
    const store = await freshStore();
    try {
      await store.logDecision(policy(FROM + HOUR, { action: 'pass', reason: 'eom' }));
      const report = await buildReport(store, { from: FROM, to: FROM + 30 * 24 * HOUR });
      assert.equal(report.bucketMs, 6 * HOUR);
      assert.deepEqual(report.timeline, [{ bucket: FROM, name: 'pass', count: 1 }]);
      assert.match(renderText(report), /^Decisions per 6 hours$/m);
    } finally {
      await store.close();
    }
  });
});
