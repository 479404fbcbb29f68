/**
 * The status page in headless Chromium, as a postmaster sees it: it loads under its own
 * Content-Security-Policy with no console error, its chart has a bar for the decisions logged,
 * hostile text shows as text, the search form finds a client by its address (carrying the token
 * along), the older link pages on, and a screenshot is kept.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createHttpServer, PAGE_SIZE } from '../../src/http/index.js';
import { openStore } from '../../src/store/index.js';
import { skipUnlessBrowser, startBrowser } from '../support/browser.js';
import { baseUrl, decision, keptLogger, sourceOver } from './helpers.js';

const TOKEN = 'browser-token-0123456789';
const HOSTILE_HELO = `<img src=x onerror="document.title='owned'">`;
const TARGET_IP = '192.0.2.77';
const BULK = 70;

describe('status page in a browser', { timeout: 120_000 }, () => {
  test('loads cleanly, charts, searches, pages and is screenshotted', async (t) => {
    if (skipUnlessBrowser(t)) return;
    const dir = await mkdtemp(join(tmpdir(), 'mailgate-status-browser-'));
    const store = await openStore(`sqlite:${join(dir, 'status.db')}`);
    t.after(async () => {
      await store.close();
      // The screenshot stays for a person to look at; the database goes.
      await rm(join(dir, 'status.db'), { force: true });
      await rm(join(dir, 'status.db-wal'), { force: true });
      await rm(join(dir, 'status.db-shm'), { force: true });
    });

    const now = Date.now();
    const writes: Promise<void>[] = [];
    for (let i = 0; i < BULK; i++) {
      writes.push(
        store.logDecision(
          decision({
            time: now - 30_000 - i * 45_000,
            client: `198.51.100.${i}`,
            sender: `bulk${i}@example.org`,
            action: ['pass', 'greylist', 'reject'][i % 3]!,
            reason: 'known',
          }),
        ),
      );
    }
    writes.push(
      store.logDecision(
        decision({
          time: now - 10_000,
          client: TARGET_IP,
          helo: HOSTILE_HELO,
          sender: 'alice@example.com',
          recipient: 'bob@example.net',
          action: 'tempfail',
          reason: 'dns-timeout',
          tags: ['TEMPFAIL', 'SPF temperror'],
        }),
      ),
    );
    await Promise.all(writes);
    const logged = BULK + 1;

    const log = keptLogger();
    const server = createHttpServer({
      source: sourceOver(store),
      logger: log.logger,
      token: TOKEN,
    });
    const [bound] = await server.listen(['inet:0@127.0.0.1']);
    t.after(() => server.close(1000));
    const browser = await startBrowser({ width: 1280, height: 1400 });
    t.after(() => browser.close());

    await browser.open(`${baseUrl(bound!)}/?token=${TOKEN}`);
    assert.equal(await browser.title(), 'mailgate on mx1.example.net');
    assert.deepEqual(await browser.consoleErrors(), [], 'no console errors on load');

    // The chart: one bar per verdict and minute, their counts adding up to what was logged.
    const bars = await browser.findAll('#decisions-chart rect.bar');
    assert.ok(bars.length > 0, 'the chart has bars');
    let charted = 0;
    for (const bar of bars) charted += Number(await browser.attribute(bar, 'data-count'));
    assert.equal(charted, logged);

    // Hostile text is text: shown as sent, and nothing in it ran.
    const rows = await browser.findAll('#decisions tr.decision');
    assert.equal(rows.length, PAGE_SIZE);
    const heloCell = await browser.find(`#decisions tr.decision td:nth-child(5)`);
    assert.equal(await browser.text(heloCell), HOSTILE_HELO);
    assert.equal(await browser.title(), 'mailgate on mx1.example.net');
    assert.equal((await browser.findAll('#decisions img')).length, 0);

    const screenshot = join(dir, 'status-page.png');
    const png = await browser.screenshot(screenshot);
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], 'a PNG');
    assert.ok((await readFile(screenshot)).length > 10_000, 'a screenshot with something in it');
    t.diagnostic(`status page screenshot: ${screenshot}`);

    // Searching by IP finds that decision and no other, and keeps the token.
    const box = await browser.find('#q');
    await browser.type(box, TARGET_IP);
    await browser.click(await browser.find('#search-submit'));
    await browser.waitFor('#clear');
    const url = new URL(await browser.url());
    assert.equal(url.searchParams.get('q'), TARGET_IP);
    assert.equal(url.searchParams.get('token'), TOKEN);
    const found = await browser.findAll('#decisions tr.decision');
    assert.equal(found.length, 1);
    const clientCell = await browser.find('#decisions tr.decision td:nth-child(4)');
    assert.equal(await browser.text(clientCell), TARGET_IP);
    assert.equal(await browser.property(await browser.find('#q'), 'value'), TARGET_IP);

    // Back to all lines, then one page older.
    await browser.click(await browser.find('#clear'));
    await browser.waitFor('#older');
    await browser.click(await browser.find('#older'));
    await browser.waitFor('#newest');
    const older = await browser.findAll('#decisions tr.decision');
    assert.equal(older.length, logged - PAGE_SIZE);
    assert.equal(new URL(await browser.url()).searchParams.get('token'), TOKEN);

    await browser.screenshot(join(dir, 'status-page-older.png'));
    assert.deepEqual(await browser.consoleErrors(), [], 'no console errors after navigating');
    assert.equal(
      log.records().filter((r) => r['msg'] === 'http-request-failed').length,
      0,
      'the browser asked for nothing the server refused',
    );
  });
});
