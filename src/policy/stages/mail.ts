/**
 * MAIL FROM: who may use which domain (internal clients ours, outsiders not ours), banned local
 * parts, then SPF for clients that are neither internal nor trusted, with the per-result policy
 * and, for senders with no SPF record, three strikes. A call-back or DSN the policy asks for is
 * owed until the message is known (end of message, or RCPT at the policy server).
 */
import { receivedSpf } from '../../checks/spf/header.js';
import type { SpfResult } from '../../checks/spf/types.js';
import { spfEvent } from '../../reputation/events.js';
import { logValue } from '../../text/index.js';
import { type Decision, deferral, proceed, refuse } from '../decision.js';
import { observe, type PolicySession } from '../session.js';
import { inDomains, type PolicySettings } from '../settings.js';
import { spfPolicy } from '../spf-policy.js';
import { owe } from './owe.js';
import { registryStage } from './registry.js';
import { threeStrikes } from './three-strikes.js';

/**
 * @example
 * session.facts.startMail('jo@example.com');
 * const decision = await mailStage(session, settings);
 */
export async function mailStage(
  session: PolicySession,
  settings: PolicySettings,
): Promise<Decision> {
  const { facts } = session;
  if (facts.helo === undefined || facts.helo.trim() === '') {
    return refuse('no-helo', 550, '5.7.1', 'HELO or EHLO required before MAIL', [
      'REJECT',
      'no HELO',
    ]);
  }
  const classification = facts.addressClass();
  const sender = facts.sender ?? '';
  const domain = facts.senderDomain;
  const shown = logValue(sender, 254);
  const internalDomains = settings.internalDomains;
  if (classification.class === 'INTERNAL') {
    if (sender !== '' && internalDomains.length > 0 && !inDomains(domain, internalDomains)) {
      return refuse(
        'internal-foreign-domain',
        550,
        '5.7.1',
        `MAIL FROM ${shown} is not one of our domains: your computer may be infected`,
        ['REJECT', 'internal sender with a foreign domain'],
      );
    }
    return proceed('internal', [], ['mail from', 'INTERNAL']);
  }
  if (classification.class === 'TRUSTED') return proceed('trusted', [], ['mail from', 'TRUSTED']);
  if (sender !== '' && internalDomains.length > 0 && inDomains(domain, internalDomains)) {
    return refuse(
      'internal-domain-forgery',
      550,
      '5.7.1',
      `forged MAIL FROM ${shown}: that domain is ours`,
      ['REJECT', 'forged internal domain'],
    );
  }
  if (sender !== '' && settings.bannedUsers.has(facts.senderLocalPart)) {
    return refuse(
      'banned-user',
      550,
      '5.7.1',
      `${shown} sends no mail: use the null sender for bounces`,
      ['REJECT', 'banned user'],
    );
  }
  if (await fromTrustedForwarder(session, settings)) {
    return proceed('trusted-forwarder', [], ['mail from', 'trusted forwarder']);
  }
  if (settings.registry) {
    const registry = await registryStage(session, settings.registry);
    if (registry.final) return registry.final;
    const decision = await senderPolicy(session, settings);
    return { ...decision, tags: [...decision.tags, ...registry.tags] };
  }
  return senderPolicy(session, settings);
}

/** SPF and what the policy makes of its result. */
async function senderPolicy(session: PolicySession, settings: PolicySettings): Promise<Decision> {
  const { facts } = session;
  const spf = await facts.spf();
  session.transaction.spfPolicy = true;
  session.transaction.spf = spf.result;
  observe(session, spfEvent(spf.result));
  const header = {
    name: 'Received-SPF',
    value: receivedSpf(spf, { receiver: settings.hostname }),
    position: 'top' as const,
  };
  session.transaction.headers.push(header);
  return applySpfPolicy(session, settings, spf);
}

/** A forwarder we trust, proved by an SPF pass for `postmaster@<forwarder>` from this client. */
async function fromTrustedForwarder(
  session: PolicySession,
  settings: PolicySettings,
): Promise<boolean> {
  for (const forwarder of settings.spf.trustedForwarders) {
    if ((await session.facts.forwarderSpf(forwarder)).result === 'pass') return true;
  }
  return false;
}

async function applySpfPolicy(
  session: PolicySession,
  settings: PolicySettings,
  spf: SpfResult,
): Promise<Decision> {
  const word = spf.result;
  // Lax processing: a record with a permanent error is judged by what it meant, and its owner is
  // told by DSN that it is broken.
  const judged = word === 'permerror' && settings.spf.lax && spf.laxResult ? spf.laxResult : word;
  const choice = await spfPolicy(judged, session.facts.senderDomain || spf.domain, settings.spf);
  const tags = [`SPF ${word}`, `policy ${choice.source}`];
  const action = choice.action;
  const mechanism = spf.mechanism ? ` (${logValue(spf.mechanism, 100)})` : '';
  switch (action.kind) {
    case 'OK':
      if (judged !== word && settings.callback.enabled) {
        session.transaction.verification = {
          kind: 'DSN',
          template: 'permerror',
          reason: 'spf-lax',
        };
      }
      return proceed(`spf-${word}`, [], ['mail from', ...tags]);
    case 'REJECT': {
      // The check's own refusal when it has one (fail); ours for what it would let through.
      const r =
        spf.reply.code >= 500
          ? spf.reply
          : { code: 550, xcode: '5.7.1', text: `SPF ${word}${mechanism}` };
      return refuse(`spf-${word}`, r.code, r.xcode, r.text, ['REJECT', ...tags]);
    }
    case 'ERROR':
      return refuse(`spf-${word}`, action.code, action.xcode, action.text, ['REJECT', ...tags]);
    case 'TEMPFAIL':
      return deferral(
        'spf-temperror',
        451,
        '4.4.3',
        `SPF temporary error: ${logValue(spf.problem ?? 'DNS failure', 200)}`,
        ['TEMPFAIL', ...tags],
      );
    case 'CBV':
    case 'DSN':
      return owe(
        session,
        settings,
        action.kind,
        action.kind === 'DSN' ? action.template : undefined,
        `spf-${word}`,
        tags,
      );
    case 'STRIKES':
      return threeStrikes(session, settings, spf, tags);
  }
}
