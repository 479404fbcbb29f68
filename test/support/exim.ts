/**
 * Exim for interoperability tests, without a mail server: a configuration written into a
 * temporary directory, and SMTP sessions played with `exim -C CONF -bh ADDRESS` (host-checking
 * mode: the ACLs run as for a client at ADDRESS, the replies go to stdout, nothing is delivered).
 *
 * Debian's exim4 conflicts with postfix, so scripts/pretest-debian.sh unpacks exim4-daemon-light
 * into /opt/mailgate-test/exim4 instead of installing it; an installed exim4 is used when there
 * is one. `-C` with a configuration of our own is honoured only for root, so tests skip, loudly,
 * without root or without Exim.
 */

import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { findProgram, runProgram } from './programs.js';

/** Where scripts/pretest-debian.sh unpacks Exim. */
export const UNPACKED_EXIM = '/opt/mailgate-test/exim4/usr/sbin/exim4';

/** The Exim binary to use, or undefined. */
export function findExim(): string | undefined {
  try {
    accessSync(UNPACKED_EXIM, constants.X_OK);
    return UNPACKED_EXIM;
  } catch {
    return findProgram('exim4') ?? findProgram('exim');
  }
}

let unavailable: string | null | undefined;

/** Why Exim cannot be used here (e.g. `exim (not installed)`), or undefined when it can. */
export function eximUnavailable(): string | undefined {
  if (unavailable !== undefined) return unavailable ?? undefined;
  const exim = findExim();
  if (exim === undefined) {
    unavailable = `exim (not unpacked in ${UNPACKED_EXIM} nor installed)`;
  } else if (process.getuid?.() !== 0) {
    unavailable = 'root (exim honours -C with a configuration of our own only for root)';
  } else {
    // -bV fails when a library is missing or the compiled-in user does not exist.
    const run = spawnSync(exim, ['-C', '/dev/null', '-bV'], { encoding: 'utf8' });
    unavailable =
      run.status === 0
        ? null
        : `a working exim (${exim} -bV: ${(run.stderr || run.stdout || String(run.error)).trim().split('\n')[0]})`;
  }
  return unavailable ?? undefined;
}

/**
 * Skips the test, loudly, when Exim cannot run: a line on stderr and `t.skip('missing: ...')`.
 * Returns true when skipped.
 *
 * @example
 * test('exim asks the policy server', async (t) => {
 *   if (skipUnlessExim(t)) return;
 *   ...
 * });
 */
export function skipUnlessExim(t: TestContext): boolean {
  const why = eximUnavailable();
  if (why === undefined) return false;
  const message = `missing: ${why}`;
  console.error(`*** SKIPPED "${t.name}": ${message} — run scripts/pretest-debian.sh as root ***`);
  t.skip(message);
  return true;
}

/** One SMTP reply: its code and its lines' text (without the code). */
export interface SmtpReply {
  code: number;
  lines: string[];
}

/** What one `-bh` session showed. */
export interface HostCheck {
  /** Every SMTP reply, the greeting first. */
  replies: SmtpReply[];
  /** Exim's log lines (`LOG: ...` in host-checking mode), without the prefix. */
  log: string[];
  /** The ACL trace (`>>> ...` lines), without the prefix. */
  trace: string[];
  stdout: string;
  stderr: string;
  code: number | null;
}

export interface EximRigOptions {
  /**
   * Text for the ACL section, before the ACLs the rig adds: macros and ACLs of the configuration
   * under test.
   */
  acls: string;
  /** Statements of the RCPT ACL (`acl_smtp_rcpt`), e.g. `  require acl = mailgate_rcpt`. */
  rcpt: string;
  /**
   * Statements of a HELO ACL (`acl_smtp_helo`), e.g. `  require acl = mailgate_helo`; none: no
   * HELO ACL.
   */
  helo?: string;
  /** Lines for the main section, after the rig's own, e.g. `acl_smtp_helo = mailgate_helo`. */
  main?: string;
  /** An authenticators section's text (without `begin authenticators`); none: no AUTH. */
  authenticators?: string;
}

export interface HostCheckOptions {
  /** The client's address; default 192.0.2.1. */
  clientAddress?: string;
  /** The client's port; default 40000. */
  clientPort?: number;
  /** The client's host name, as if found in DNS; default mail.client.test. */
  clientName?: string;
  /** The address and port the client connected to; default 198.51.100.25 port 25. */
  serverAddress?: string;
  serverPort?: number;
  /** Macros, as `-DNAME=VALUE`: they override macros of the same name in the file. */
  defines?: Record<string, string>;
}

/** A session's SMTP conversation, as a client would write it. */
export interface Session {
  helo?: string;
  sender: string;
  recipients: string[];
  /** A message to send after the recipients (headers and body, LF or CRLF); none: no DATA. */
  message?: string;
}

/**
 * A temporary Exim configuration: its own spool and log directories (owned by `nobody`, the
 * user it runs as), no DNS (no host lookups), the ACLs under test, and a DATA ACL that logs the
 * message's header so that a test can see headers added by `add_header`.
 */
export class EximRig {
  private constructor(
    readonly dir: string,
    readonly config: string,
    private readonly exim: string,
  ) {}

  /**
   * Write the configuration. Call `remove()` when done.
   *
   * @example
   * const rig = await EximRig.create({ acls: snippet, rcpt: '  require acl = mailgate_rcpt' });
   * const result = await rig.session(
   *   { sender: 'a@b.test', recipients: ['c@d.test'] },
   *   { defines: { MAILGATE_POLICY: 'inet:127.0.0.1:41234' } },
   * );
   * result.replies.at(-2)  // { code: 250, lines: ['Accepted'] } — the RCPT reply
   */
  static async create(options: EximRigOptions): Promise<EximRig> {
    const exim = findExim();
    if (exim === undefined) throw new Error('exim not found; see eximUnavailable()');
    const dir = await mkdtemp(join(tmpdir(), 'mailgate-exim-'));
    // Exim works as nobody: it must reach its spool and log directories inside.
    await chmod(dir, 0o755);
    const nobody = userInfoOf('nobody');
    for (const sub of ['spool', 'log']) {
      await mkdir(join(dir, sub));
      if (nobody) await chown(join(dir, sub), nobody.uid, nobody.gid);
    }
    const config = join(dir, 'exim.conf');
    await writeFile(
      config,
      [
        'primary_hostname = mx.test',
        'exim_user = nobody',
        'exim_group = nogroup',
        `spool_directory = ${join(dir, 'spool')}`,
        `log_file_path = ${join(dir, 'log', '%slog')}`,
        // No DNS: the client has no host name, HELO is not verified.
        'host_lookup =',
        'acl_smtp_rcpt = rig_rcpt',
        'acl_smtp_data = rig_data',
        ...(options.helo !== undefined ? ['acl_smtp_helo = rig_helo'] : []),
        ...(options.main !== undefined ? [options.main] : []),
        '',
        'begin acl',
        '',
        options.acls,
        '',
        'rig_rcpt:',
        options.rcpt,
        '  accept',
        '',
        ...(options.helo !== undefined ? ['rig_helo:', options.helo, '  accept', ''] : []),
        'rig_data:',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: an Exim expansion, not a template
        '  warn log_message = rig header: ${sg{$message_headers_raw}{\\N\\n\\N}{|}}',
        '  accept',
        '',
        ...(options.authenticators ? ['begin authenticators', '', options.authenticators, ''] : []),
      ].join('\n'),
    );
    return new EximRig(dir, config, exim);
  }

  /**
   * Play raw SMTP command lines (CRLF is added) as a client.
   *
   * @example
   * const result = await rig.hostCheck(['EHLO a.test', 'MAIL FROM:<>', 'QUIT']);
   * result.replies[2]  // { code: 250, lines: ['OK'] }
   */
  async hostCheck(commands: readonly string[], options: HostCheckOptions = {}): Promise<HostCheck> {
    const defines = Object.entries(options.defines ?? {}).map(([n, v]) => `-D${n}=${v}`);
    const run = await runProgram(
      this.exim,
      [
        '-C',
        this.config,
        ...defines,
        // The client's host name as if looked up: Exim would otherwise ask DNS for it as soon
        // as an ACL mentions $sender_host_name.
        '-oMs',
        options.clientName ?? 'mail.client.test',
        // Exim writes an address and its port as ADDRESS.PORT.
        '-oMi',
        `${options.serverAddress ?? '198.51.100.25'}.${options.serverPort ?? 25}`,
        '-bh',
        `${options.clientAddress ?? '192.0.2.1'}.${options.clientPort ?? 40000}`,
      ],
      { input: commands.map((c) => `${c}\r\n`).join(''), timeoutMs: 60_000 },
    );
    const lines = `${run.stdout}\n${run.stderr}`.split('\n');
    return {
      replies: parseReplies(run.stdout),
      log: lines.filter((l) => l.startsWith('LOG: ')).map((l) => l.slice(5)),
      trace: lines.filter((l) => l.startsWith('>>> ')).map((l) => l.slice(4)),
      stdout: run.stdout,
      stderr: run.stderr,
      code: run.code,
    };
  }

  /**
   * Play raw SMTP command lines as a local client: `exim -bs`, SMTP on standard input with no
   * client address (as a local program submitting mail would). Nothing is delivered as long as
   * no message is sent. Exim writes its log to the rig's log file here; `log` holds the lines
   * this session added.
   *
   * @example
   * const result = await rig.localSmtp(['EHLO a.test', 'QUIT']);
   * result.replies[1]?.code  // 250
   */
  async localSmtp(
    commands: readonly string[],
    options: Pick<HostCheckOptions, 'defines'> = {},
  ): Promise<HostCheck> {
    const mainlog = join(this.dir, 'log', 'mainlog');
    const logged = await readFile(mainlog, 'utf8').catch(() => '');
    const defines = Object.entries(options.defines ?? {}).map(([n, v]) => `-D${n}=${v}`);
    const run = await runProgram(this.exim, ['-C', this.config, ...defines, '-bs'], {
      input: commands.map((c) => `${c}\r\n`).join(''),
      timeoutMs: 60_000,
    });
    const log = (await readFile(mainlog, 'utf8').catch(() => '')).slice(logged.length);
    return {
      replies: parseReplies(run.stdout),
      // Each line starts with the date and time.
      log: log
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => l.replace(/^\S+ \S+ /, '')),
      trace: [],
      stdout: run.stdout,
      stderr: run.stderr,
      code: run.code,
    };
  }

  /** An SMTP session: EHLO, MAIL, RCPT for each recipient, DATA when there is a message, QUIT. */
  session(session: Session, options: HostCheckOptions = {}): Promise<HostCheck> {
    const commands = [
      `EHLO ${session.helo ?? 'client.test'}`,
      `MAIL FROM:<${session.sender}>`,
      ...session.recipients.map((r) => `RCPT TO:<${r}>`),
    ];
    if (session.message !== undefined) {
      const body = session.message.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
      commands.push('DATA', `${body.replace(/\r\n$/, '')}\r\n.`);
    }
    commands.push('QUIT');
    return this.hostCheck(commands, options);
  }

  async remove(): Promise<void> {
    if (process.env['MAILGATE_KEEP_EXIM'] === '1') {
      console.error(`exim rig kept in ${this.dir}`);
      return;
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

function userInfoOf(name: string): { uid: number; gid: number } | undefined {
  const run = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (run.status !== 0 || gid.status !== 0) return undefined;
  return { uid: Number(run.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** SMTP replies in Exim's -bh stdout: `NNN-text` continues a reply, `NNN text` ends it. */
export function parseReplies(stdout: string): SmtpReply[] {
  const replies: SmtpReply[] = [];
  let lines: string[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    const match = /^([2-5][0-9]{2})([ -])(.*)$/.exec(line);
    if (!match) continue;
    lines.push(match[3]!);
    if (match[2] === ' ') {
      replies.push({ code: Number(match[1]), lines });
      lines = [];
    }
  }
  return replies;
}
