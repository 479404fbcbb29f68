/**
 * The authentication methods a registry record can offer, each as a function of the session's
 * facts giving a final action or CONTINUE: QR1 (the record's own netblocks), CSV (the CSA check
 * of the HELO name) and SPF (with the best identity known: MAIL FROM, else the HELO).
 */
import { type IpAddress, inNetworks } from '../../dns/address.js';
import type { Clock, Resolver } from '../../dns/types.js';
import { checkCsa } from '../csa/index.js';
import { checkSpf, receivedSpf } from '../spf/index.js';
import type { RegistryRecord } from './record.js';
import type { RegistryAction, RegistryHeader, RegistryMethodName, RegistryReply } from './types.js';

/** What one method concluded. */
export interface MethodOutcome {
  action: RegistryAction;
  /** The result word as the Authent header shows it (`PASS`, `FAIL`, `pass`, `softfail`, ...). */
  result: string;
  /** The RFC 8601 result word for Authentication-Results. */
  authResult: string;
  reply: RegistryReply;
  /** The method's headers after Authent (Received-SPF). */
  headers: RegistryHeader[];
  queries: number;
}

/** Everything a method may read. */
export interface MethodContext {
  ip: IpAddress;
  ipText: string;
  id: string;
  helo: string;
  sender: string | undefined;
  record: RegistryRecord;
  /** The most DNS queries the receiver allows this method. */
  maxQueries: number;
  /** Milliseconds left of the check's budget. */
  timeLeft: number;
  resolver: Resolver;
  clock: Clock;
  receiver: string;
}

/** The label a method has in the Authent header (the versioned names checkHelo.py wrote). */
export const AUTHENT_LABEL: Record<RegistryMethodName, string> = {
  QR1: 'QR1',
  CSV: 'CSV1',
  SPF: 'SPF1',
};

/**
 * Run one method.
 *
 * @example
 * const outcome = await runMethod('QR1', context);
 * outcome.action  // 'ACCEPT' when the client is in the record's netblocks
 */
export function runMethod(name: RegistryMethodName, ctx: MethodContext): Promise<MethodOutcome> {
  switch (name) {
    case 'QR1':
      return Promise.resolve(qr1(ctx));
    case 'CSV':
      return csv(ctx);
    case 'SPF':
      return spf(ctx);
  }
}

function qr1(ctx: MethodContext): MethodOutcome {
  const blocks = ctx.ip.family === 4 ? ctx.record.ip4 : ctx.record.ip6;
  // Netblocks of the other family only say nothing about this client: the next method decides.
  if (blocks.length === 0) {
    return outcome('CONTINUE', 'NONE', 'none', 250, '2.7.0', `no IPv${ctx.ip.family} netblocks`);
  }
  if (inNetworks(ctx.ip, blocks)) {
    return outcome('ACCEPT', 'PASS', 'pass', 250, '2.7.0', 'Sender OK');
  }
  return outcome(
    'REJECT',
    'FAIL',
    'fail',
    550,
    '5.7.1',
    `Sending MTA '${ctx.ipText}' not authorized by '${ctx.id}'`,
  );
}

async function csv(ctx: MethodContext): Promise<MethodOutcome> {
  const r = await checkCsa(
    { ip: ctx.ipText, helo: ctx.helo },
    {
      resolver: ctx.resolver,
      clock: ctx.clock,
      limits: { queries: ctx.maxQueries, timeBudgetMs: Math.max(1, ctx.timeLeft) },
    },
  );
  const q = r.queries;
  switch (r.result) {
    case 'pass':
      return outcome('ACCEPT', r.result, 'pass', 250, '2.7.0', 'Sender CSV OK', [], q);
    case 'none':
    case 'neutral':
      return outcome(
        'FILTER',
        r.result,
        r.result,
        250,
        '2.7.0',
        `CSA ${r.result} for '${ctx.id}': delivery uncertain`,
        [],
        q,
      );
    case 'fail':
      return outcome('REJECT', r.result, 'fail', r.reply.code, r.reply.xcode, r.reply.text, [], q);
    case 'tempfail':
      // CSA's own reply already says to try again later.
      return outcome('TEMPFAIL', r.result, 'temperror', 451, '4.4.3', r.reply.text, [], q);
  }
}

async function spf(ctx: MethodContext): Promise<MethodOutcome> {
  const r = await checkSpf(
    { ip: ctx.ipText, sender: ctx.sender ?? '', helo: ctx.helo },
    {
      resolver: ctx.resolver,
      clock: ctx.clock,
      limits: { queries: ctx.maxQueries, timeBudgetMs: Math.max(1, ctx.timeLeft) },
      receiver: ctx.receiver,
    },
  );
  const headers = [{ name: 'Received-SPF', value: receivedSpf(r, { receiver: ctx.receiver }) }];
  const q = r.queries;
  switch (r.result) {
    case 'pass':
      return outcome('ACCEPT', r.result, 'pass', 250, '2.7.0', 'sender SPF verified', headers, q);
    case 'softfail':
      return outcome(
        'FILTER',
        r.result,
        r.result,
        250,
        '2.7.0',
        'domain in transition',
        headers,
        q,
      );
    case 'neutral':
    case 'none':
      return outcome(
        'FILTER',
        r.result,
        r.result,
        250,
        '2.7.0',
        `SPF ${r.result} for ${r.domain}: delivery uncertain`,
        headers,
        q,
      );
    case 'fail':
    case 'permerror':
      return outcome(
        'REJECT',
        r.result,
        r.result,
        r.reply.code,
        r.reply.xcode,
        r.reply.text,
        headers,
        q,
      );
    case 'temperror':
      return outcome(
        'TEMPFAIL',
        r.result,
        r.result,
        451,
        '4.7.24',
        `${r.reply.text}. Try again later.`,
        headers,
        q,
      );
  }
}

function outcome(
  action: RegistryAction,
  result: string,
  authResult: string,
  code: number,
  xcode: string,
  text: string,
  headers: RegistryHeader[] = [],
  queries = 0,
): MethodOutcome {
  return { action, result, authResult, reply: { code, xcode, text }, headers, queries };
}
