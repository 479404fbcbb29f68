/**
 * The authentication methods a registry record can offer, each as a function of the session's
 * facts giving a final action or CONTINUE: QR1 (the record's own netblocks), CSV (the CSA check
 * of the HELO name) and SPF (with the best identity known: MAIL FROM, else the HELO).
 */
import { type IpAddress, inNetworks } from '../../dns/address.js';
import type { Clock, Resolver } from '../../dns/types.js';
import { type CsaResultWord, checkCsa } from '../csa/index.js';
import { checkSpf, receivedSpf, type SpfResultWord } from '../spf/index.js';
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
  const reply = (): RegistryReply => {
    switch (r.result) {
      case 'pass':
        return { code: 250, xcode: '2.7.0', text: 'Sender CSV OK' };
      case 'none':
      case 'neutral':
        return {
          code: 250,
          xcode: '2.7.0',
          text: `CSA ${r.result} for '${ctx.id}': delivery uncertain`,
        };
      case 'fail':
        return r.reply;
      case 'tempfail':
        // CSA's own reply already says to try again later.
        return { code: 451, xcode: '4.4.3', text: r.reply.text };
    }
  };
  return {
    action: CSV_ACTION[r.result],
    result: r.result,
    authResult: r.result === 'tempfail' ? 'temperror' : r.result,
    reply: reply(),
    headers: [],
    queries: r.queries,
  };
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
  const reply = (): RegistryReply => {
    switch (r.result) {
      case 'pass':
        return { code: 250, xcode: '2.7.0', text: 'sender SPF verified' };
      case 'softfail':
        return { code: 250, xcode: '2.7.0', text: 'domain in transition' };
      case 'neutral':
      case 'none':
        return {
          code: 250,
          xcode: '2.7.0',
          text: `SPF ${r.result} for ${r.domain}: delivery uncertain`,
        };
      case 'fail':
      case 'permerror':
        return r.reply;
      case 'temperror':
        return { code: 451, xcode: '4.7.24', text: `${r.reply.text}. Try again later.` };
    }
  };
  return {
    action: SPF_ACTION[r.result],
    result: r.result,
    authResult: r.result,
    reply: reply(),
    headers: [{ name: 'Received-SPF', value: receivedSpf(r, { receiver: ctx.receiver }) }],
    queries: r.queries,
  };
}

/** What each CSA result means for the registry (checkHelo.py's `_csv`). */
const CSV_ACTION: Record<CsaResultWord, RegistryAction> = {
  pass: 'ACCEPT',
  none: 'FILTER',
  neutral: 'FILTER',
  fail: 'REJECT',
  tempfail: 'TEMPFAIL',
};

/** What each SPF result means for the registry (checkHelo.py's `_spf`). */
const SPF_ACTION: Record<SpfResultWord, RegistryAction> = {
  pass: 'ACCEPT',
  softfail: 'FILTER',
  neutral: 'FILTER',
  none: 'FILTER',
  fail: 'REJECT',
  permerror: 'REJECT',
  temperror: 'TEMPFAIL',
};

function outcome(
  action: RegistryAction,
  result: string,
  authResult: string,
  code: number,
  xcode: string,
  text: string,
): MethodOutcome {
  // QR1's: it asks no DNS and adds no header of its own.
  return { action, result, authResult, reply: { code, xcode, text }, headers: [], queries: 0 };
}
