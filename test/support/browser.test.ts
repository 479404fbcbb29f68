// The browser rig against a small page served by node:http: it loads, its elements are found
// and read, a form is filled in and submitted (and the server sees what was typed), a
// console.error is caught, and the screenshot is a PNG.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type Browser, skipUnlessBrowser, startBrowser, WebDriverError } from './browser.js';

const FORM_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rig page</title></head>
<body>
<h1 id="greeting">Hello, <span class="who">postmaster</span></h1>
<ul><li class="item">one</li><li class="item">two</li><li class="item">three</li></ul>
<form method="post" action="/submitted"><input name="q" id="q"><button id="go">Search</button></form>
<p id="clicked" data-state="no">not clicked</p>
<button id="toggle" onclick="document.getElementById('clicked').dataset.state = 'yes'">toggle</button>
<script>console.error('rig page says: broken ' + (1 + 1));</script>
</body></html>`;

/** A page server that answers the form with what was posted. */
async function servePages(): Promise<{ server: Server; url: string; posted: string[] }> {
  const posted: string[] = [];
  const server = createServer((request, response) => {
    if (request.method === 'POST' && request.url === '/submitted') {
      let body = '';
      request.setEncoding('utf8').on('data', (d: string) => {
        body += d;
      });
      request.on('end', () => {
        posted.push(body);
        const q = new URLSearchParams(body).get('q') ?? '';
        response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        response.end(
          `<!doctype html><title>result</title><p id="result">${q.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</p>`,
        );
      });
      return;
    }
    if (request.url === '/favicon.ico') {
      response.writeHead(204).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(FORM_PAGE);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/`, posted };
}

describe('test/support/browser', () => {
  it('loads a page, reads, types, submits, catches console errors, screenshots', async (t) => {
    if (skipUnlessBrowser(t)) return;
    const { server, url, posted } = await servePages();
    t.after(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          // Chromium keeps its connections alive; they would hold close() up.
          server.closeAllConnections();
        }),
    );
    const dir = await mkdtemp(join(tmpdir(), 'mailgate-browser-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const browser: Browser = await startBrowser({ width: 800, height: 600 });
    t.after(() => browser.close());

    await browser.open(url);
    assert.equal(await browser.title(), 'rig page');
    assert.equal(await browser.text(await browser.find('#greeting')), 'Hello, postmaster');
    const items = await browser.findAll('li.item');
    assert.deepEqual(await Promise.all(items.map((item) => browser.text(item))), [
      'one',
      'two',
      'three',
    ]);
    assert.deepEqual(await browser.findAll('.nothing-here'), []);
    await assert.rejects(browser.find('.nothing-here'), (error: unknown) => {
      assert.ok(error instanceof WebDriverError);
      assert.equal(error.error, 'no such element');
      return true;
    });

    const clicked = await browser.find('#clicked');
    assert.equal(await browser.attribute(clicked, 'data-state'), 'no');
    await browser.click(await browser.find('#toggle'));
    assert.equal(await browser.attribute(clicked, 'data-state'), 'yes');
    assert.equal(await browser.executeScript('return arguments[0] * 6;', [7]), 42);

    const errors = await browser.consoleErrors();
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.match(errors[0]!.message, /rig page says: broken 2/);

    const png = await browser.screenshot(join(dir, 'page.png'));
    const saved = await readFile(join(dir, 'page.png'));
    assert.deepEqual(saved, png);
    assert.ok((await stat(join(dir, 'page.png'))).size > 1000);
    assert.deepEqual([...saved.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    // The IHDR chunk gives the image's size: the window's, in device pixels.
    assert.equal(saved.readUInt32BE(16), 800);

    const input = await browser.find('#q');
    await browser.type(input, 'spf fail & more');
    assert.equal(await browser.property(input, 'value'), 'spf fail & more');
    await browser.submit(input);
    const result = await browser.waitFor('#result');
    assert.equal(await browser.text(result), 'spf fail & more');
    assert.deepEqual(posted, ['q=spf+fail+%26+more']);
    assert.match(await browser.url(), /\/submitted$/);

    // Errors are kept across calls and pages: the first page's is still there.
    assert.equal((await browser.consoleErrors()).length, 1);
    await browser.close();
    await assert.rejects(browser.title(), /closed/);
  });
});
