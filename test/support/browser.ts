/**
 * A real browser for the tests of generated pages (the HTML report, the status page): Debian's
 * Chromium, headless, driven through its chromedriver with the W3C WebDriver protocol over plain
 * HTTP (Node's fetch). A page is checked the way a postmaster would see it: loaded, its elements
 * read, its forms filled in, its console errors collected and a screenshot kept.
 *
 * scripts/pretest-debian.sh installs chromium and chromium-driver as root; without them the
 * tests skip, loudly, naming what is missing (skipUnlessBrowser).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import type { TestContext } from 'node:test';
import { findProgram, missingRequirements, skipUnlessAvailable } from './programs.js';

/** The key under which WebDriver names an element reference (fixed by the W3C protocol). */
const ELEMENT_KEY = 'element-6066-11e4-a52e-4f735466cecf';

/** An element of the page, as WebDriver refers to it. */
export interface BrowserElement {
  readonly [ELEMENT_KEY]: string;
}

/** A console message the page logged (what chromedriver keeps of it). */
export interface ConsoleEntry {
  /** `SEVERE` for console.error and uncaught errors, `WARNING`, `INFO`, ... */
  level: string;
  message: string;
  /** `console-api`, `javascript`, `network`, ... */
  source?: string;
  timestamp: number;
}

/** A WebDriver command failed: `error` is the protocol's error code (`no such element`, ...). */
export class WebDriverError extends Error {
  override readonly name = 'WebDriverError';
  constructor(
    readonly command: string,
    readonly error: string,
    message: string,
  ) {
    super(`${command}: ${error}: ${message}`);
  }
}

export interface BrowserOptions {
  /** The window size in CSS pixels (default 1280 × 1024); screenshots have this size. */
  width?: number;
  height?: number;
  /** How long chromedriver may take to start and Chromium to open (default 30 s). */
  startTimeoutMs?: number;
}

/**
 * What the browser tests need and lack (Chromium, chromedriver), described; empty when both are
 * installed.
 *
 * @example
 * if (browserMissing().length > 0) console.error('no browser:', browserMissing().join(', '));
 */
export function browserMissing(): string[] {
  return missingRequirements(['chromium']);
}

/**
 * True when Chromium and chromedriver are installed.
 *
 * @example
 * if (!browserAvailable()) return;
 */
export function browserAvailable(): boolean {
  return browserMissing().length === 0;
}

/**
 * Skips the test, loudly (stderr and the test report), when Chromium or chromedriver is
 * missing; returns true when it skipped.
 *
 * @example
 * test('the report renders', async (t) => {
 *   if (skipUnlessBrowser(t)) return;
 *   const browser = await startBrowser();
 *   t.after(() => browser.close());
 * });
 */
export function skipUnlessBrowser(t: TestContext): boolean {
  return skipUnlessAvailable(t, ['chromium']);
}

/**
 * Starts chromedriver on a port of its choosing and opens a headless Chromium session. Close it
 * with `close()` (a test's `t.after`), which ends the session and the driver.
 *
 * @example
 * const browser = await startBrowser();
 * await browser.open('http://127.0.0.1:8080/');
 * assert.equal(await browser.text(await browser.find('h1')), 'mailgate');
 * await browser.close();
 */
export async function startBrowser(options: BrowserOptions = {}): Promise<Browser> {
  const chromium = findProgram('chromium');
  const chromedriver = findProgram('chromedriver');
  if (!chromium || !chromedriver) {
    throw new Error(`cannot start a browser: missing ${browserMissing().join(', ')}`);
  }
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const { child, port } = await startDriver(chromedriver, timeoutMs);
  const base = `http://127.0.0.1:${port}`;
  try {
    const width = options.width ?? 1280;
    const height = options.height ?? 1024;
    const created = (await command(base, 'POST', '/session', {
      capabilities: {
        alwaysMatch: {
          browserName: 'chrome',
          'goog:chromeOptions': {
            binary: chromium,
            // Tests run as root, where Chromium's sandbox cannot start; /dev/shm is small in
            // containers.
            args: [
              '--headless=new',
              '--no-sandbox',
              '--disable-gpu',
              '--disable-dev-shm-usage',
              '--no-first-run',
              '--no-default-browser-check',
              `--window-size=${width},${height}`,
            ],
          },
          'goog:loggingPrefs': { browser: 'ALL' },
        },
      },
    })) as { sessionId?: string };
    if (typeof created?.sessionId !== 'string') {
      throw new Error(`chromedriver created no session: ${JSON.stringify(created)}`);
    }
    return new Browser(base, created.sessionId, child);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

/**
 * A headless Chromium session (made by `startBrowser`). Every method is one or two WebDriver
 * commands; elements are references into the page shown now.
 *
 * @example
 * await browser.open(url);
 * const input = await browser.find('input[name=q]');
 * await browser.type(input, '192.0.2.1');
 * await browser.submit(input);
 * const rows = await browser.findAll('table tbody tr');
 * assert.deepEqual(await browser.consoleErrors(), []);
 * await browser.screenshot(join(dir, 'page.png'));
 */
export class Browser {
  readonly #base: string;
  readonly #session: string;
  readonly #driver: ChildProcess;
  /** Console entries read so far: chromedriver hands each one out only once. */
  readonly #console: ConsoleEntry[] = [];
  #closed = false;

  constructor(base: string, session: string, driver: ChildProcess) {
    this.#base = base;
    this.#session = session;
    this.#driver = driver;
  }

  /** Loads a URL and waits until the page has loaded. */
  async open(url: string): Promise<void> {
    await this.#command('POST', '/url', { url });
  }

  /** The address of the page shown now. */
  async url(): Promise<string> {
    return (await this.#command('GET', '/url')) as string;
  }

  /** The page's title. */
  async title(): Promise<string> {
    return (await this.#command('GET', '/title')) as string;
  }

  /** The first element matching a CSS selector; rejects (`no such element`) when there is none. */
  async find(css: string): Promise<BrowserElement> {
    return (await this.#command('POST', '/element', {
      using: 'css selector',
      value: css,
    })) as BrowserElement;
  }

  /** Every element matching a CSS selector, in document order (maybe none). */
  async findAll(css: string): Promise<BrowserElement[]> {
    return (await this.#command('POST', '/elements', {
      using: 'css selector',
      value: css,
    })) as BrowserElement[];
  }

  /**
   * The first element matching a CSS selector once there is one (after a form's submission has
   * loaded the next page, say), polling until `timeoutMs` (default 5 s).
   */
  async waitFor(css: string, timeoutMs = 5_000): Promise<BrowserElement> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = await this.findAll(css);
      if (found[0]) return found[0];
      if (Date.now() > deadline) {
        throw new WebDriverError('waitFor', 'timeout', `no element matches ${css}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** The element's rendered text (as a reader sees it: hidden text is left out). */
  async text(element: BrowserElement): Promise<string> {
    return (await this.#command('GET', `/element/${elementId(element)}/text`)) as string;
  }

  /** An attribute's value as written in the markup, or null when it has none. */
  async attribute(element: BrowserElement, name: string): Promise<string | null> {
    return (await this.#command(
      'GET',
      `/element/${elementId(element)}/attribute/${encodeURIComponent(name)}`,
    )) as string | null;
  }

  /** A DOM property's current value (an input's `value` after typing, `checked`, ...). */
  async property(element: BrowserElement, name: string): Promise<unknown> {
    return this.#command(
      'GET',
      `/element/${elementId(element)}/property/${encodeURIComponent(name)}`,
    );
  }

  /** Types text into an input or text area, as keystrokes. */
  async type(element: BrowserElement, text: string): Promise<void> {
    await this.#command('POST', `/element/${elementId(element)}/value`, { text });
  }

  /** Clears an input or text area. */
  async clear(element: BrowserElement): Promise<void> {
    await this.#command('POST', `/element/${elementId(element)}/clear`, {});
  }

  /** Clicks the element (scrolled into view first, as WebDriver does). */
  async click(element: BrowserElement): Promise<void> {
    await this.#command('POST', `/element/${elementId(element)}/click`, {});
  }

  /**
   * Submits a form (or the form an element is in) as pressing Enter would: its submit event
   * fires and its constraints are checked. WebDriver has no command for it, so a script does it.
   */
  async submit(element: BrowserElement): Promise<void> {
    await this.executeScript(
      'const el = arguments[0]; const form = el.form ?? el.closest("form") ?? el;' +
        'if (!(form instanceof HTMLFormElement)) throw new Error("not in a form");' +
        'form.requestSubmit();',
      [element],
    );
  }

  /** Runs a script's body in the page with `arguments`; returns what it returns (as JSON). */
  async executeScript(script: string, args: readonly unknown[] = []): Promise<unknown> {
    return this.#command('POST', '/execute/sync', { script, args });
  }

  /** Every console entry the page logged since the session began, at all levels. */
  async consoleEntries(): Promise<ConsoleEntry[]> {
    const fresh = (await this.#command('POST', '/se/log', { type: 'browser' })) as ConsoleEntry[];
    this.#console.push(...fresh);
    return [...this.#console];
  }

  /**
   * The console errors (level SEVERE: console.error, uncaught exceptions, resources that failed
   * to load) since the session began.
   */
  async consoleErrors(): Promise<ConsoleEntry[]> {
    return (await this.consoleEntries()).filter((entry) => entry.level === 'SEVERE');
  }

  /** Saves a PNG screenshot of the window; returns its bytes. */
  async screenshot(path: string): Promise<Buffer> {
    const base64 = (await this.#command('GET', '/screenshot')) as string;
    const png = Buffer.from(base64, 'base64');
    await writeFile(path, png);
    return png;
  }

  /** Ends the session and stops chromedriver (and so Chromium). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await command(this.#base, 'DELETE', `/session/${this.#session}`, undefined, 10_000);
    } catch {
      // The driver is stopped below in any case.
    }
    await stopDriver(this.#driver);
  }

  #command(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    if (this.#closed) return Promise.reject(new Error('the browser is closed'));
    return command(this.#base, method, `/session/${this.#session}${path}`, body);
  }
}

function elementId(element: BrowserElement): string {
  const id = element[ELEMENT_KEY];
  if (typeof id !== 'string') throw new TypeError('not a WebDriver element reference');
  return encodeURIComponent(id);
}

/** One WebDriver command: JSON in, `value` out; a protocol error becomes a WebDriverError. */
async function command(
  base: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
  timeoutMs = 60_000,
): Promise<unknown> {
  const response = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let parsed: { value?: unknown };
  try {
    parsed = JSON.parse(text) as { value?: unknown };
  } catch {
    throw new WebDriverError(`${method} ${path}`, `http ${response.status}`, text.slice(0, 500));
  }
  const value = parsed.value as { error?: unknown; message?: unknown } | null | undefined;
  if (!response.ok || (value && typeof value === 'object' && typeof value.error === 'string')) {
    throw new WebDriverError(
      `${method} ${path}`,
      typeof value?.error === 'string' ? value.error : `http ${response.status}`,
      typeof value?.message === 'string' ? value.message : text.slice(0, 500),
    );
  }
  return parsed.value;
}

/** Starts chromedriver on port 0 and reads the port it took from its first lines. */
function startDriver(
  path: string,
  timeoutMs: number,
): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, ['--port=0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`chromedriver did not start within ${timeoutMs} ms: ${output}`));
    }, timeoutMs);
    const onData = (chunk: string) => {
      output += chunk;
      const m = /started successfully on port (\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        // Keep draining its output so that it never blocks on a full pipe.
        child.stdout?.removeListener('data', onData);
        child.stdout?.resume();
        resolve({ child, port: Number(m[1]) });
      }
    };
    child.stdout?.setEncoding('utf8').on('data', onData);
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`chromedriver exited (${code ?? signal}) before it listened: ${output}`));
    });
  });
}

/** SIGTERM, then SIGKILL when it has not gone within 5 s. */
function stopDriver(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
