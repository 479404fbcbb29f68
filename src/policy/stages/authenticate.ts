/**
 * End of message, the message checks: DKIM and ARC results of incoming mail, DMARC over them
 * and SPF, and what the DMARC policy asks (refuse, hold, mark); our DKIM signature for our own
 * mail. Runs before the call-back owed since MAIL FROM: a message DMARC refuses needs none.
 *
 * DNS trouble refuses nothing for good: where the policy would refuse on a result that DNS
 * trouble made (p=reject and a key lookup or the record timed out), the answer is a tempfail;
 * everywhere else the trouble is written in Authentication-Results and the message goes on.
 */
import { arcAuthResults } from '../../checks/arc/index.js';
import type { ArcResult } from '../../checks/arc/types.js';
import { dkimAuthResults } from '../../checks/dkim/auth-results.js';
import type { DkimSignatureResult } from '../../checks/dkim/types.js';
import { checkDmarc, dmarcAuthResults } from '../../checks/dmarc/index.js';
import type { DmarcInput, DmarcResult, DmarcSpfInput } from '../../checks/dmarc/types.js';
import { fieldValue, type HeaderField } from '../../checks/message/index.js';
import { systemClock } from '../../dns/clock.js';
import type { Clock } from '../../dns/types.js';
import type { DmarcResultRow } from '../../store/types.js';
import { resultClause } from '../auth-results.js';
import { type Decision, type DecisionHeader, deferral, refuse } from '../decision.js';
import type { MessageCheckResults } from '../message-checks.js';
import type { PolicyServices } from '../services.js';
import type { PolicySession } from '../session.js';
import type { DmarcPolicySettings, PolicySettings } from '../settings.js';

/** What the message checks add to the end of message. */
export interface Authentication {
  /** A refusal or tempfail the DMARC policy asks for. */
  decision?: Decision;
  /** Authentication-Results clauses, rendered: dkim, dmarc, arc. */
  clauses: string[];
  /** Fields for the top of the message (our DKIM-Signature). */
  headers: DecisionHeader[];
  /** Log words. */
  tags: string[];
  /** The ARC chain as it came, for our seal's cv=. */
  arc?: ArcResult;
}

/**
 * @example
 * const auth = await authenticate(session, settings, services);
 * if (auth.decision) return auth.decision;
 */
export async function authenticate(
  session: PolicySession,
  settings: PolicySettings,
  services: PolicyServices,
): Promise<Authentication> {
  const checks = session.transaction.message;
  const out: Authentication = { clauses: [], headers: [], tags: [] };
  if (!checks || !settings.auth) return out;
  const results = await checks.finish();
  if (checks.role === 'outgoing') {
    if (results.signature) {
      out.headers.push(decisionHeader(results.signature, 'top'));
      out.tags.push(`DKIM signed ${signedAs(results.signature)}`);
    } else if (results.unsigned) {
      out.tags.push(`DKIM not signed: ${results.unsigned}`);
    }
    return out;
  }
  const dkim = results.dkim ?? [];
  const metrics = services.metrics;
  if (metrics) {
    if (results.unverified) metrics.check('dkim', 'policy');
    else if (results.dkim && dkim.length === 0) metrics.check('dkim', 'none');
    for (const signature of results.unverified ? [] : dkim) metrics.check('dkim', signature.result);
    if (results.arc) metrics.check('arc', results.arc.cv);
  }
  if (results.unverified) {
    out.clauses.push(
      resultClause({ method: 'dkim', result: 'policy', reason: results.unverified }),
    );
    out.tags.push(`not verified: ${results.unverified}`);
  } else if (results.dkim) {
    for (const clause of dkimAuthResults(dkim)) out.clauses.push(resultClause(clause));
    // An unsigned message is the common case: the header says dkim=none, the log nothing.
    if (dkim.length > 0) out.tags.push(dkimTag(dkim));
  }
  const dmarcSettings = settings.auth.dmarc;
  if (dmarcSettings && !results.unverified) {
    const input: DmarcInput = {
      from: (session.transaction.fields?.list ?? []).filter((f) => f.key === 'from'),
      dkim: dkim.map((r) => ({ domain: r.domain, result: r.result, selector: r.selector })),
    };
    const spf = await spfInput(session);
    if (spf) input.spf = spf;
    const dmarc = await checkDmarc(input, dmarcSettings.check, {
      resolver: session.facts.services.resolver,
      ...(services.clock ? { clock: services.clock } : {}),
    });
    metrics?.check('dmarc', dmarc.result);
    out.clauses.push(resultClause(dmarcAuthResults(dmarc)));
    const applied = applyDmarc(dmarc, dmarcSettings, dkim, input.spf, results);
    out.tags.push(...applied.tags);
    if (applied.decision) out.decision = applied.decision;
    if (applied.quarantine) session.transaction.quarantine = applied.quarantine;
    if (applied.header) out.headers.push(applied.header);
    if (dmarcSettings.record && services.dmarcReports && dmarc.domain && dmarc.record) {
      services.dmarcReports.record(
        reportRow(dmarc, applied, session.facts.client.ip, input, services.clock ?? systemClock),
      );
    }
  }
  if (results.arc) {
    out.arc = results.arc;
    out.clauses.push(
      resultClause(arcAuthResults(results.arc, { remoteIp: session.facts.client.ip })),
    );
    if (results.arc.cv !== 'none') out.tags.push(`ARC ${results.arc.cv}`);
  }
  return out;
}

/** One evaluation as an aggregate report (RFC 9990) needs it. */
function reportRow(
  dmarc: DmarcResult,
  applied: AppliedDmarc,
  sourceIp: string,
  input: DmarcInput,
  clock: Clock,
): DmarcResultRow {
  const record = dmarc.record!;
  const row: DmarcResultRow = {
    time: clock.now(),
    sourceIp,
    headerFrom: dmarc.domain!,
    disposition: applied.disposition,
    result: dmarc.result,
    spfAligned: dmarc.spfAligned,
    dkimAligned: dmarc.dkimAligned,
    dkim: input.dkim.map((r) => ({
      domain: r.domain,
      result: r.result,
      ...(r.selector ? { selector: r.selector } : {}),
    })),
    published: {
      p: record.p,
      ...(record.sp ? { sp: record.sp } : {}),
      ...(record.np ? { np: record.np } : {}),
      adkim: record.adkim,
      aspf: record.aspf,
      testing: dmarc.testing,
      ...(record.psd ? { psd: record.psd } : {}),
    },
  };
  if (dmarc.policyDomain) row.policyDomain = dmarc.policyDomain;
  if (applied.override) row.override = applied.override;
  if (input.spf) {
    row.envelopeFrom = input.spf.domain;
    row.spf = { ...input.spf };
  }
  return row;
}

/** What the DMARC policy makes of a result. */
interface AppliedDmarc {
  decision?: Decision;
  quarantine?: string;
  header?: DecisionHeader;
  /** RFC 9990's policy override reason, when we did not apply the policy. */
  override?: 'trusted_forwarder' | 'local_policy';
  /** What was applied: none, quarantine or reject. */
  disposition: 'none' | 'quarantine' | 'reject';
  tags: string[];
}

function applyDmarc(
  dmarc: DmarcResult,
  settings: DmarcPolicySettings,
  dkim: readonly DkimSignatureResult[],
  spf: DmarcSpfInput | undefined,
  results: MessageCheckResults,
): AppliedDmarc {
  const domain = dmarc.domain ?? '';
  // No record is the common case: the header says dmarc=none, the log nothing.
  const tags =
    dmarc.result === 'none' ? [] : [`DMARC ${dmarc.result}${domain ? ` ${domain}` : ''}`];
  if (dmarc.result === 'temperror') {
    // The policy could not be learnt, or a lookup it rests on failed. A domain known to ask
    // for rejection gets a tempfail; otherwise nothing is refused on a guess.
    if (dmarc.policy === 'reject' && settings.reject && dmarc.record) {
      return { decision: dmarcTempfail(domain, dmarc.reason), disposition: 'none', tags };
    }
    return { disposition: 'none', tags: [...tags, dmarc.reason] };
  }
  // A permerror with a disposition is a From of several domains, one of which fails: RFC 9989
  // section 11.5 applies the strictest policy among them, as for a failure.
  if ((dmarc.result !== 'fail' && dmarc.result !== 'permerror') || dmarc.disposition === 'none') {
    return { disposition: 'none', tags };
  }
  const sealer = trustedSealer(results.arc, settings.trustedArcSealers);
  if (sealer) {
    return {
      override: 'trusted_forwarder',
      disposition: 'none',
      tags: [...tags, `policy ${dmarc.disposition} overridden: ARC pass sealed by ${sealer}`],
    };
  }
  if (dmarc.disposition === 'reject' && settings.reject) {
    if (dnsTrouble(dmarc, dkim, spf)) {
      return {
        decision: dmarcTempfail(domain, 'a failure that DNS trouble may have made'),
        disposition: 'none',
        tags,
      };
    }
    return {
      decision: refuse(
        'dmarc-reject',
        550,
        '5.7.1',
        `message refused: it fails the DMARC policy of ${domain}`,
        ['REJECT', `DMARC fail ${domain} p=reject`],
      ),
      disposition: 'reject',
      tags,
    };
  }
  // A reject policy we do not enforce is handled as quarantine, as OpenDMARC does with
  // RejectFailures off.
  if (settings.quarantine === 'quarantine') {
    return {
      quarantine: `DMARC policy of ${domain}: ${dmarc.disposition}`,
      disposition: 'quarantine',
      tags: [...tags, `policy ${dmarc.disposition}: held`],
    };
  }
  return {
    header: { name: 'X-DMARC-Quarantine', value: domain },
    disposition: 'quarantine',
    tags: [...tags, `policy ${dmarc.disposition}: marked`],
  };
}

/** Refusing for now what the policy would refuse, when DNS trouble leaves the result in doubt. */
function dmarcTempfail(domain: string, why: string): Decision {
  return deferral(
    'dmarc-temperror',
    451,
    '4.7.5',
    `DMARC policy of ${domain} cannot be checked now, try again later`,
    ['TEMPFAIL', `DMARC temperror ${domain}`, why],
  );
}

/**
 * Whether a failure may be DNS trouble's making: an SPF temperror, or a DKIM signature of a
 * domain that could align whose key lookup failed.
 */
function dnsTrouble(
  dmarc: DmarcResult,
  dkim: readonly DkimSignatureResult[],
  spf: DmarcSpfInput | undefined,
): boolean {
  if (spf?.result === 'temperror') return true;
  const from = dmarc.domain;
  const org = dmarc.organizationalDomain ?? from;
  if (!from) return false;
  return dkim.some(
    (r) =>
      r.result === 'temperror' &&
      (r.domain === from ||
        (org !== undefined && (r.domain === org || r.domain.endsWith(`.${org}`)))),
  );
}

/** The first sealer of a passing chain we trust, by its d=. */
function trustedSealer(arc: ArcResult | undefined, trusted: readonly string[]): string | undefined {
  if (arc?.cv !== 'pass' || trusted.length === 0) return undefined;
  const wanted = new Set(trusted.map((d) => d.toLowerCase()));
  return arc.sealers.find((s) => s.result === 'pass' && wanted.has(s.domain))?.domain;
}

/** SPF as DMARC reads it: MAIL FROM's result, or the HELO's for a null sender. */
async function spfInput(session: PolicySession): Promise<DmarcSpfInput | undefined> {
  const { facts } = session;
  if (facts.sender === undefined) return undefined;
  if (facts.sender === '') {
    const helo = await facts.heloSpf();
    return { domain: helo.domain, result: helo.result, scope: 'helo' };
  }
  const spf = await facts.spf();
  if (spf.identity === 'helo') return { domain: spf.domain, result: spf.result, scope: 'helo' };
  return { domain: spf.domain, result: spf.result, scope: 'mfrom' };
}

/** A field of ours as the decision carries it: the value without the space after the colon. */
export function decisionHeader(field: HeaderField, position: 'top' | 'bottom'): DecisionHeader {
  return { name: field.name, value: fieldValue(field).replace(/^ /u, ''), position };
}

function signedAs(field: HeaderField): string {
  const value = fieldValue(field).replace(/\s+/gu, '');
  const d = /(?:^|;)d=([^;]*)/u.exec(value)?.[1] ?? '';
  const s = /(?:^|;)s=([^;]*)/u.exec(value)?.[1] ?? '';
  return `d=${d} s=${s}`;
}

function dkimTag(results: readonly DkimSignatureResult[]): string {
  return `DKIM ${results.map((r) => `${r.result}${r.domain ? `:${r.domain}` : ''}`).join(',')}`;
}
