/**
 * End of message: the message checks (DKIM, DMARC, ARC; our signature), the call-back or DSN
 * owed since MAIL FROM, then the headers — Received-SPF at
 * the top, one Authentication-Results with our authserv-id (SPF for MAIL FROM and for the HELO,
 * and the clauses earlier stages decided, such as the registry's),
 * X-Guessed-SPF and X-Greylist as decided earlier, a Sender when asked — and the removal of
 * Authentication-Results fields that claim our authserv-id: those came from outside and lie.
 */
import { authenticationResults, authResultsClause } from '../../checks/spf/header.js';
import { isForgedAuthResults } from '../auth-results.js';
import { type Decision, type DecisionHeader, proceed } from '../decision.js';
import { stripBrackets } from '../facts.js';
import type { PolicyServices } from '../services.js';
import type { PolicySession } from '../session.js';
import type { PolicySettings } from '../settings.js';
import { authenticate, decisionHeader } from './authenticate.js';
import { verify } from './verify.js';

/**
 * @example
 * const decision = await eomStage(session, settings, services);
 * decision.headers  // [{ name: 'Received-SPF', ... }, { name: 'Authentication-Results', ... }]
 */
export async function eomStage(
  session: PolicySession,
  settings: PolicySettings,
  services: PolicyServices,
): Promise<Decision> {
  const { facts, transaction } = session;
  const auth = await authenticate(session, settings, services);
  if (auth.decision) return auth.decision;
  const verifiedTags: string[] = [];
  if (transaction.verification) {
    const verified = await verify(session, services, transaction.verification);
    if (verified.verdict !== 'continue') return verified;
    verifiedTags.push(...verified.tags);
  }
  const headers: DecisionHeader[] = [...transaction.headers];
  const spfChecked = headers.some((h) => h.name === 'Received-SPF');
  const decided = [...(transaction.authResults ?? []), ...auth.clauses];
  let ourAuthResults: string | undefined;
  if (spfChecked || decided.length > 0) {
    const clauses: string[] = [];
    if (spfChecked) {
      const [spf, heloSpf] = await Promise.all([facts.spf(), facts.heloSpf()]);
      clauses.push(authResultsClause(spf));
      if (spf.identity !== 'helo') clauses.push(authResultsClause(heloSpf));
    }
    clauses.push(...decided);
    ourAuthResults = authenticationResults(settings.authservId, clauses);
    headers.push({ name: 'Authentication-Results', value: ourAuthResults });
  }
  headers.push(...auth.headers);
  const sealed = transaction.message?.seal(
    settings.authservId,
    ourAuthResults ?? authenticationResults(settings.authservId, []),
    auth.arc?.cv ?? 'none',
  );
  // ARC-Seal first: the set goes on top, in the order RFC 8617 shows it.
  for (const field of sealed ?? []) headers.push(decisionHeader(field, 'top'));
  if (settings.spf.supplySender && facts.sender) {
    const sender = supplySender(facts.headers, facts.sender);
    if (sender) headers.push(sender);
  }
  const removeHeaders: Array<{ name: string; index: number }> = [];
  let index = 0;
  for (const header of facts.headers) {
    if (header.name.toLowerCase() !== 'authentication-results') continue;
    index += 1;
    if (isForgedAuthResults(header.value, [settings.authservId])) {
      removeHeaders.push({ name: header.name, index });
    }
  }
  const tags = [
    'eom',
    ...auth.tags,
    ...(sealed?.length ? ['ARC sealed'] : []),
    ...verifiedTags,
    ...(removeHeaders.length
      ? [`removed ${removeHeaders.length} forged Authentication-Results`]
      : []),
  ];
  const decision: Decision = {
    ...proceed('eom', headers, tags),
    ...(removeHeaders.length ? { removeHeaders } : {}),
  };
  if (transaction.quarantine !== undefined) {
    // Held for the administrator (Postfix's hold queue); the headers still say why.
    return {
      ...decision,
      verdict: 'quarantine',
      reply: { code: 250, xcode: '2.7.0', text: transaction.quarantine },
      reason: 'quarantine',
      tags: [...tags, 'QUARANTINE'],
    };
  }
  return decision;
}

/**
 * A Sender field from MAIL FROM, when the message has none and its From domain is another: mail
 * readers then show "sent by ... on behalf of ...".
 */
function supplySender(
  received: readonly { name: string; value: string }[],
  sender: string,
): DecisionHeader | null {
  if (received.some((h) => h.name.toLowerCase() === 'sender')) return null;
  const from = received.find((h) => h.name.toLowerCase() === 'from');
  if (!from) return null;
  const senderDomain = sender.slice(sender.lastIndexOf('@') + 1).toLowerCase();
  const addresses = from.value.match(/[^\s<>"@,;:()]+@([A-Za-z0-9.-]+)/gu) ?? [];
  const fromDomain = addresses[0]?.slice(addresses[0].lastIndexOf('@') + 1).toLowerCase();
  if (!fromDomain || fromDomain === senderDomain) return null;
  const bare = stripBrackets(sender);
  // The address came from the client: only a plain address goes into a header.
  if (!/^[\x21-\x7e]{1,254}$/u.test(bare) || /[<>"\\]/u.test(bare)) return null;
  return { name: 'Sender', value: `<${bare}>` };
}
