/**
 * For tests that run Postfix the way a guide in docs/ says: the main.cf lines of a block in the
 * guide (so that the guide is what is tested), and waiting until the rig's smtpd greets.
 *
 * @example
 * const block = await guideBlock('docs/integration/postfix.md', /```\n([\s\S]*?)```/, 'the block');
 * const main = mainCfLines(block); // { smtpd_recipient_restrictions: '… check_policy_service …' }
 * await waitForBanner(rig.smtpPort);
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The first capture group of `pattern` in the guide at `path` (relative to the repository's
 * root); fails, saying the guide lacks `what`, when it does not match.
 *
 * @example
 * await guideBlock('docs/milter-policy.md', /main\.cf`\):\n\n((?: {4}.*\n)+)/, 'the main.cf block');
 */
export async function guideBlock(path: string, pattern: RegExp, what: string): Promise<string> {
  const guide = await readFile(new URL(`../../${path}`, import.meta.url), 'utf8');
  const block = pattern.exec(guide)?.[1];
  assert.ok(block, `${path} has ${what}`);
  return block;
}

/**
 * The `name = value` lines of a main.cf block (indented or not), by name; other lines are
 * passed over.
 *
 * @example
 * mainCfLines('    milter_protocol = 6\n    milter_default_action = tempfail\n');
 * // { milter_protocol: '6', milter_default_action: 'tempfail' }
 */
export function mainCfLines(block: string): Record<string, string> {
  const params: Record<string, string> = {};
  for (const line of block.split('\n')) {
    const m = /^ *(\w+) = (.*)$/.exec(line);
    if (m) params[m[1] as string] = m[2] as string;
  }
  return params;
}

/**
 * Waits until smtpd greets a fresh connection (a 220 line), for up to `timeoutMs`: the first
 * smtpd of a new master can take a while to start on a loaded machine, and swaks gives up after
 * 30 s of silence.
 *
 * @example
 * await waitForBanner(rig.smtpPort);
 */
export async function waitForBanner(port: number, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const greeted = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      let text = '';
      const done = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.setTimeout(Math.max(1000, deadline - Date.now()), () => done(false));
      socket.on('data', (chunk) => {
        text += String(chunk);
        if (/^220[ -]/m.test(text)) {
          socket.end('QUIT\r\n');
          done(true);
        }
      });
      socket.on('error', () => done(false));
    });
    if (greeted) return;
    if (Date.now() > deadline) {
      throw new Error(`smtpd on port ${port} sent no banner in ${timeoutMs} ms`);
    }
    await sleep(500);
  }
}
