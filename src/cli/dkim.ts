/**
 * `mailgate dkim verify|sign|keygen`: DKIM for one message from the command line — its
 * signatures verified, the message signed with a key file, or a new key made with the TXT
 * record to publish.
 */
import { constants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { dkimAuthResults } from '../checks/dkim/auth-results.js';
import {
  generateKeyPair,
  isDnsName,
  loadSigningKey,
  signDkim,
  verifyDkim,
} from '../checks/dkim/index.js';
import type { DkimSignatureResult } from '../checks/dkim/types.js';
import { authenticationResults, resultClause } from '../policy/auth-results.js';
import { escapeForLog } from '../text/index.js';
import { readMessage } from './message-input.js';
import { resolverFromOptions } from './services.js';
import { UsageError } from './usage.js';

/** The authserv-id the command line writes: it speaks for no server. */
const CLI_AUTHSERV_ID = 'mailgate';

export function registerDkimCommand(program: Command): void {
  const dkim = program.command('dkim').description('DKIM: verify, sign, make keys');
  dkim
    .command('verify')
    .description('verify the DKIM signatures of a message (standard input without FILE)')
    .argument('[file]', 'the message')
    .option('--json', 'print one JSON object')
    .action(async (file: string | undefined, options: { json?: boolean }, command: Command) => {
      const message = await readMessage(file);
      const results = await verifyDkim(message, {}, { resolver: resolverFromOptions(command) });
      const authResults = authenticationResults(
        CLI_AUTHSERV_ID,
        dkimAuthResults(results).map(resultClause),
      );
      if (options.json) {
        process.stdout.write(
          `${JSON.stringify({ signatures: results.map(signatureJson), authResults })}\n`,
        );
        return;
      }
      if (results.length === 0) process.stdout.write('none: no DKIM signature\n');
      for (const r of results) process.stdout.write(`${signatureLine(r)}\n`);
    });
  dkim
    .command('sign')
    .description('print the message signed (standard input without FILE)')
    .argument('[file]', 'the message')
    .requiredOption('--domain <domain>', 'the signing domain (d=)')
    .requiredOption('--selector <selector>', 'the selector (s=)')
    .requiredOption('--key <file>', 'the private key, PEM (RSA or Ed25519)')
    .option('--canonicalization <c>', 'header/body: relaxed/relaxed (default), simple/simple, ...')
    .action(
      async (
        file: string | undefined,
        options: { domain: string; selector: string; key: string; canonicalization?: string },
      ) => {
        const pem = await readKeyFile(options.key);
        let key: ReturnType<typeof loadSigningKey>;
        try {
          key = loadSigningKey(options.domain, options.selector, pem);
        } catch (err) {
          throw new UsageError((err as Error).message);
        }
        const canonicalization = options.canonicalization ?? 'relaxed/relaxed';
        if (!/^(?:simple|relaxed)\/(?:simple|relaxed)$/u.test(canonicalization)) {
          throw new UsageError(
            `--canonicalization: not header/body of simple and relaxed: ${escapeForLog(canonicalization)}`,
          );
        }
        const message = await readMessage(file);
        process.stdout.write(
          signDkim(message, key, {
            canonicalization: canonicalization as 'relaxed/relaxed',
          }),
        );
      },
    );
  dkim
    .command('keygen')
    .description('make a signing key: write it to a file and print the TXT record to publish')
    .requiredOption('--selector <selector>', 'the selector (s=)')
    .requiredOption('--domain <domain>', 'the signing domain (d=)')
    .option('--type <type>', 'rsa or ed25519', 'rsa')
    .option('--bits <n>', 'RSA key size', '2048')
    .option('--out <file>', 'where to write the private key (default <selector>.<domain>.pem)')
    .action(
      async (options: {
        selector: string;
        domain: string;
        type: string;
        bits: string;
        out?: string;
      }) => {
        if (options.type !== 'rsa' && options.type !== 'ed25519') {
          throw new UsageError(`--type: rsa or ed25519, not ${escapeForLog(options.type)}`);
        }
        const bits = Number(options.bits);
        if (!Number.isInteger(bits) || bits < 1024 || bits > 8192) {
          throw new UsageError(`--bits: 1024 to 8192, not ${escapeForLog(options.bits)}`);
        }
        const domain = options.domain.toLowerCase().replace(/\.$/u, '');
        const selector = options.selector.toLowerCase();
        if (!isDnsName(domain) || !domain.includes('.')) {
          throw new UsageError(`--domain: not a domain name: ${escapeForLog(options.domain)}`);
        }
        if (!isDnsName(selector)) {
          throw new UsageError(`--selector: not a selector: ${escapeForLog(options.selector)}`);
        }
        const pair = generateKeyPair(options.type, bits);
        const out = options.out ?? `${selector}.${domain}.pem`;
        await writeNewFile(out, pair.privateKeyPem);
        process.stderr.write(`mailgate: private key written to ${escapeForLog(out)}\n`);
        process.stdout.write(
          `${txtRecord(`${selector}._domainkey.${domain}`, pair.publicKeyRecord)}\n`,
        );
      },
    );
}

/**
 * The record as a zone file line, its text cut into character-strings of at most 255 bytes.
 *
 * @example
 * txtRecord('s1._domainkey.example.com', 'v=DKIM1; k=ed25519; p=...')
 * // 's1._domainkey.example.com. IN TXT ( "v=DKIM1; k=ed25519; p=..." )'
 */
export function txtRecord(name: string, text: string): string {
  const strings: string[] = [];
  for (let at = 0; at < text.length; at += 255) strings.push(`"${text.slice(at, at + 255)}"`);
  return `${name}. IN TXT ( ${strings.join(' ')} )`;
}

async function readKeyFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--key: cannot read ${escapeForLog(path)}: ${(err as Error).message}`);
  }
}

/** A private key goes to a new file only readable by its owner; an existing one is kept. */
async function writeNewFile(path: string, text: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === 'EEXIST'
        ? `--out: ${escapeForLog(path)} exists; not overwriting a key`
        : `--out: cannot create ${escapeForLog(path)}: ${(err as Error).message}`,
    );
  }
  try {
    await handle.writeFile(text);
  } finally {
    await handle.close();
  }
}

function signatureJson(r: DkimSignatureResult): Record<string, unknown> {
  return {
    result: r.result,
    domain: r.domain,
    selector: r.selector,
    algorithm: r.algorithm,
    reason: r.reason,
    identity: r.identity,
    canonicalization: r.canonicalization,
    headerB: r.headerB,
    ...(r.bodyLength !== undefined ? { bodyLength: r.bodyLength } : {}),
    ...(r.keyBits !== undefined ? { keyBits: r.keyBits } : {}),
    testing: r.testing,
  };
}

function signatureLine(r: DkimSignatureResult): string {
  const parts = [
    r.result,
    `d=${r.domain || '?'}`,
    `s=${r.selector || '?'}`,
    `a=${r.algorithm || '?'}`,
  ];
  if (r.bodyLength !== undefined) parts.push(`l=${r.bodyLength}`);
  return escapeForLog(`${parts.join(' ')} (${r.reason})`);
}
