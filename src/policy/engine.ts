/**
 * The engine: the stages in order over one session, each decision logged once with its tags,
 * and a stage that throws turned into a tempfail (logged with its stack) instead of a crash or
 * a silent accept. Doors call it; it knows no protocol.
 */
import { authorDomains } from '../checks/dmarc/from.js';
import { fieldFromParts, type HeaderField } from '../checks/message/index.js';
import { systemClock } from '../dns/clock.js';
import type { MetricCheck } from '../observe/metrics.js';
import { REPUTATION_EVENTS } from '../reputation/events.js';
import { eventSubjects, reputationSubjects } from '../reputation/subjects.js';
import type { Decision as LoggedDecision, Store } from '../store/types.js';
import { logValue } from '../text/index.js';
import { type Decision, deferral } from './decision.js';
import { type CheckObserver, type ClientFacts, type FactServices, SessionFacts } from './facts.js';
import { MessageChecks } from './message-checks.js';
import type { PolicyLogger, PolicyServices } from './services.js';
import { newSession, type PolicySession, resetTransaction } from './session.js';
import type { PolicySettings } from './settings.js';
import { connectStage } from './stages/connect.js';
import { eomStage } from './stages/eom.js';
import { heloStage } from './stages/helo.js';
import { mailStage } from './stages/mail.js';
import { type RcptOptions, rcptStage } from './stages/rcpt.js';

export type Stage = 'connect' | 'helo' | 'mail' | 'rcpt' | 'eom';

/** A header field's bytes as a door received them (the milter's raw header). */
export interface RawField {
  name: Buffer;
  value: Buffer;
  /** The value holds the whitespace after the colon (SMFIP_HDR_LEADSPC). */
  leadingSpace: boolean;
}

/** The From domain our mail is signed for: only a From with one author domain. */
function singleAuthorDomain(fields: readonly HeaderField[]): string | undefined {
  const authors = authorDomains(fields.filter((f) => f.key === 'from'));
  return authors.kind === 'one' ? authors.domain : undefined;
}

export interface EngineServices extends PolicyServices, FactServices {
  logger: PolicyLogger;
  /** Where decisions are recorded (the decision log), when it is kept. */
  store?: Store | null;
}

/**
 * A decision's tags with the transaction's SPF result (`SPF pass`) when they do not name it:
 * the line of a message that got through then says how SPF judged it, for reports.
 */
function withSpf(tags: string[], spf: string | undefined): string[] {
  if (spf === undefined || tags.some((tag) => tag.startsWith('SPF '))) return tags;
  return [...tags, `SPF ${spf}`];
}

/** Messages remembered so that the policy server counts each sender once. */
const MAX_INSTANCES = 10_000;

/** Most header fields kept per message for the end-of-message stage (Subject, From, A-R). */
const MAX_KEPT_HEADERS = 200;
const KEPT_HEADERS = new Set(['subject', 'from', 'sender', 'authentication-results']);

/**
 * @example
 * const engine = new PolicyEngine(settings, { resolver, logger, greylist, verifier, store });
 * const session = engine.session('c1', { ip: '192.0.2.1' });
 * await engine.connect(session);
 * await engine.helo(session, 'mail.example.com');
 * const d = await engine.mail(session, '<jo@example.com>');
 */
export class PolicyEngine {
  readonly settings: PolicySettings;
  readonly services: EngineServices;
  /** Postfix instances (messages) whose sender was counted for reputation, oldest first. */
  readonly #instances = new Set<string>();

  /** Hands each check's result to the metrics, when they are kept. */
  readonly #checkObserver: CheckObserver | undefined;

  constructor(settings: PolicySettings, services: EngineServices) {
    this.settings = settings;
    this.services = services;
    const metrics = services.metrics;
    if (metrics) {
      this.#checkObserver = (check, result, seconds) =>
        metrics.check(check as MetricCheck, result, seconds);
    }
  }

  /** A new session for a client, from the milter door unless `door` says otherwise. */
  session(id: string, client: ClientFacts, door?: 'milter' | 'policy'): PolicySession {
    const facts = new SessionFacts(
      client,
      {
        hostname: this.settings.hostname,
        networks: this.settings.networks,
        ourNames: this.settings.ourNames,
        ourAddresses: this.settings.ourAddresses,
        spf: {
          bestGuess: this.settings.spf.bestGuess,
          lax: this.settings.spf.lax,
          ...(this.settings.spf.fallbackZone !== undefined
            ? { fallbackZone: this.settings.spf.fallbackZone }
            : {}),
        },
        checkBudgetMs: this.settings.checkBudgetMs,
      },
      {
        resolver: this.services.resolver,
        ...(this.services.clock ? { clock: this.services.clock } : {}),
        ...(this.#checkObserver ? { checkObserver: this.#checkObserver } : {}),
      },
    );
    const session = newSession(id, facts);
    if (door) session.door = door;
    return session;
  }

  connect(session: PolicySession): Promise<Decision> {
    return this.#run(session, 'connect', () => connectStage(session, this.settings));
  }

  helo(session: PolicySession, name: string): Promise<Decision> {
    session.facts.setHelo(name);
    return this.#run(session, 'helo', () => heloStage(session, this.settings));
  }

  mail(session: PolicySession, sender: string, esmtp: string[] = []): Promise<Decision> {
    session.facts.startMail(sender, esmtp);
    resetTransaction(session);
    return this.#run(session, 'mail', () => mailStage(session, this.settings));
  }

  rcpt(
    session: PolicySession,
    recipient: string,
    options: Partial<RcptOptions> = {},
  ): Promise<Decision> {
    const verifyNow = options.verifyNow ?? false;
    const wanted: RcptOptions = {
      greylist: options.greylist ?? this.settings.greylist,
      verifyNow,
      // The policy server asks once per recipient: a message's SPF counts at its first only.
      countSender: verifyNow && this.#firstOfMessage(options.instance),
      ...(options.clientName !== undefined ? { clientName: options.clientName } : {}),
    };
    // Without an end of message (the policy server), the transaction is through at RCPT.
    return this.#run(
      session,
      'rcpt',
      () => rcptStage(session, this.services, recipient, wanted),
      verifyNow,
    );
  }

  /**
   * The answer for a door that never sees the message (the policy server), once the stages it
   * runs have passed: what end of message would hold is held now (quarantine, Postfix HOLD).
   *
   * @example
   * return postfixAction(engine.withoutMessage(session, decision));
   */
  withoutMessage(session: PolicySession, decision: Decision): Decision {
    const hold = session.transaction.quarantine;
    if (hold === undefined || decision.verdict !== 'continue') return decision;
    return { ...decision, verdict: 'quarantine', reply: { code: 250, xcode: '2.7.0', text: hold } };
  }

  /** Whether a Postfix `instance` (one per message) is new; an unknown one always is. */
  #firstOfMessage(instance: string | undefined): boolean {
    if (instance === undefined || instance === '') return true;
    const key = instance.slice(0, 100);
    if (this.#instances.has(key)) return false;
    this.#instances.add(key);
    if (this.#instances.size > MAX_INSTANCES) {
      this.#instances.delete(this.#instances.values().next().value!);
    }
    return true;
  }

  /**
   * A header field of the message: kept as text when a later stage reads it, and as the bytes
   * sent (`raw`, from a door that has them) for the checks that read the message, within the
   * header bound.
   *
   * @example
   * engine.header(session, 'From', ' jo@example.com', { name, value, leadingSpace: true });
   */
  header(session: PolicySession, name: string, value: string, raw?: RawField): void {
    const headers = session.facts.headers;
    if (headers.length < MAX_KEPT_HEADERS && KEPT_HEADERS.has(name.toLowerCase())) {
      headers.push({ name, value: (raw?.leadingSpace ? value.trimStart() : value).slice(0, 4096) });
    }
    const auth = this.settings.auth;
    if (!raw || !auth) return;
    session.transaction.fields ??= { list: [], bytes: 0, dropped: 0 };
    const fields = session.transaction.fields;
    const size = raw.name.length + raw.value.length + 4;
    if (fields.dropped > 0 || fields.bytes + size > auth.maxHeaderBytes) {
      fields.dropped++;
      return;
    }
    fields.bytes += size;
    fields.list.push(fieldFromParts(raw.name, raw.value, raw.leadingSpace));
  }

  /**
   * End of the headers: the message checks start (key lookups go out while the body comes).
   * Incoming mail is verified; mail from our own and authenticated clients is signed; a
   * trusted relay's is neither.
   */
  eoh(session: PolicySession): void {
    const auth = this.settings.auth;
    const { facts, transaction } = session;
    if (!auth || facts.sender === undefined || transaction.message) return;
    const cls = facts.addressClass().class;
    if (cls === 'TRUSTED') return;
    const role = cls === 'INTERNAL' ? 'outgoing' : 'incoming';
    if (role === 'outgoing' && !auth.dkimSign) return;
    if (role === 'incoming' && !auth.dkimVerify && !auth.arcVerify && !auth.dmarc) return;
    const fields = transaction.fields ?? { list: [], bytes: 0, dropped: 0 };
    transaction.message = new MessageChecks(
      role,
      fields,
      auth,
      {
        resolver: this.services.resolver,
        ...(this.services.clock ? { clock: this.services.clock } : {}),
      },
      role === 'outgoing' ? singleAuthorDomain(fields.list) : undefined,
    );
  }

  /** A chunk of the body, as the MTA sent it: hashed by the message checks as it comes. */
  body(session: PolicySession, chunk: Buffer): void {
    session.transaction.message?.update(chunk);
  }

  eom(session: PolicySession): Promise<Decision> {
    return this.#run(session, 'eom', () => eomStage(session, this.settings, this.services)).finally(
      () => {
        session.facts.endMessage();
        resetTransaction(session);
      },
    );
  }

  /**
   * A local submission (a unix socket, or a client the MTA names by no IP address): ours, and
   * accepted without checks.
   */
  local(id: string, where: string): Decision {
    const decision: Decision = {
      verdict: 'accept',
      headers: [],
      reason: 'local-submission',
      tags: ['connect', 'LOCAL'],
    };
    this.services.logger.info(
      {
        conn: id,
        stage: 'connect',
        verdict: 'accept',
        reason: decision.reason,
        client: logValue(where, 200),
      },
      'connect',
    );
    return decision;
  }

  /** The MTA dropped the message (RSET, a rejection elsewhere): forget it, keep the connection. */
  abort(session: PolicySession): void {
    const { facts } = session;
    if (facts.sender !== undefined) {
      this.services.logger.info({ conn: session.id, stage: 'abort' }, 'abort');
    }
    facts.endMessage();
    resetTransaction(session);
  }

  /** Runs a stage; `final` says the transaction is through (end of message, or its stand-in). */
  async #run(
    session: PolicySession,
    stage: Stage,
    decide: () => Promise<Decision>,
    final = stage === 'eom',
  ): Promise<Decision> {
    const metrics = this.services.metrics;
    const begun = metrics ? performance.now() : 0;
    let decision: Decision;
    try {
      decision = await decide();
    } catch (err) {
      this.services.logger.error(
        { err, conn: session.id, stage, ...this.#facts(session) },
        'policy-stage-failed',
      );
      decision = deferral(
        'internal-error',
        451,
        '4.3.0',
        'temporary local problem, try again later',
        ['TEMPFAIL', 'internal error'],
      );
    }
    if (stage === 'mail' && !session.replaying) this.#logReceivedSpf(session);
    this.#logAlerts(session, stage);
    this.#recordObserved(session, final);
    this.#log(session, stage, decision, final);
    // A stage replayed (the policy server asks from connect at each request) was counted when
    // it was asked, unless it objects now: then it is this request's answer.
    if (metrics && (!session.replaying || decision.verdict !== 'continue')) {
      metrics.decision(
        session.door ?? 'milter',
        stage,
        decision.verdict,
        (performance.now() - begun) / 1000,
      );
    }
    return decision;
  }

  /** The SPF result as the message will carry it: the line postmasters grep for. */
  #logReceivedSpf(session: PolicySession): void {
    const header = session.transaction.headers.find((h) => h.name === 'Received-SPF');
    if (!header) return;
    this.services.logger.info(
      { conn: session.id, stage: 'mail', value: header.value },
      'Received-SPF',
    );
  }

  /**
   * Counts what the stage saw for the sender domain and the client network (not when replayed).
   * Bad evidence counts at once; good evidence only when the message is through (`final`: end
   * of message, or the policy server's RCPT), so that MAIL FROM and RSET in a loop earn nothing.
   */
  #recordObserved(session: PolicySession, final: boolean): void {
    const observed = session.transaction.observed;
    if (!observed?.length) return;
    const reputation = this.services.reputation;
    if (session.replaying || !reputation) {
      session.transaction.observed = [];
      return;
    }
    const now = final ? observed : observed.filter((e) => REPUTATION_EVENTS[e].evidence !== 'good');
    session.transaction.observed = final
      ? []
      : observed.filter((e) => REPUTATION_EVENTS[e].evidence === 'good');
    const { facts } = session;
    const subjects = reputationSubjects({ ip: facts.client.ip, senderDomain: facts.senderDomain });
    for (const event of now) {
      // Neutral events say nothing of the sender; storing them would only grow the table.
      if (REPUTATION_EVENTS[event].evidence === 'neutral') continue;
      reputation.record(eventSubjects(event, subjects), event);
    }
  }

  /**
   * What a stage found for the administrator (a broken registry record), at warn. Also when the
   * stage is replayed: the policy server replays MAIL FROM at each RCPT, and a site that asks it
   * only at RCPT would otherwise never hear of it.
   */
  #logAlerts(session: PolicySession, stage: Stage): void {
    const alerts = session.transaction.alerts;
    if (!alerts?.length) return;
    session.transaction.alerts = [];
    for (const alert of alerts) {
      this.services.logger.warn(
        { conn: session.id, stage, problem: logValue(alert.text, 500), ...this.#facts(session) },
        alert.message,
      );
    }
  }

  #facts(session: PolicySession): Record<string, unknown> {
    const { facts } = session;
    const fields: Record<string, unknown> = { ip: facts.client.ip };
    if (facts.helo !== undefined) fields['helo'] = logValue(facts.helo, 200);
    if (facts.sender !== undefined) fields['sender'] = logValue(facts.sender, 254);
    return fields;
  }

  #log(session: PolicySession, stage: Stage, decision: Decision, final: boolean): void {
    // Greylisting writes its own lines (with its scores and delays) to the same log. Every
    // refusal is recorded, and every message that got through once (at end of message, or at
    // the policy server's RCPT, its stand-in), so that reports need no text logs.
    const greylisting = decision.tags[0] === 'GREYLIST';
    if (!greylisting && (decision.verdict !== 'continue' || (final && !session.replaying))) {
      this.#record(session, stage, decision);
    }
    if (session.replaying && decision.verdict === 'continue') return;
    // A busy site logging at warn should not build a line per step that nobody writes.
    if (this.services.logger.isLevelEnabled?.('info') === false) return;
    const message =
      decision.verdict === 'continue'
        ? (decision.tags[0] ?? stage)
        : (decision.tags[0] ?? decision.verdict.toUpperCase());
    const fields: Record<string, unknown> = {
      conn: session.id,
      stage,
      verdict: decision.verdict,
      reason: decision.reason,
      tags: decision.tags.map((t) => logValue(t, 200)),
      ...this.#facts(session),
    };
    if (decision.reply)
      fields['reply'] = `${decision.reply.code} ${decision.reply.xcode} ${decision.reply.text}`;
    if (stage === 'rcpt')
      fields['recipient'] = logValue(session.facts.recipients.at(-1) ?? '', 254);
    if (decision.headers.length) fields['headers'] = decision.headers.map((h) => h.name);
    this.services.logger.info(fields, message);
  }

  /** The decision log in the store: refusals and delivered messages, for reports. */
  #record(session: PolicySession, stage: Stage, decision: Decision): void {
    const store = this.services.store;
    if (!store) return;
    const { facts } = session;
    const line: LoggedDecision = {
      time: (this.services.clock ?? systemClock).now(),
      host: this.settings.hostname,
      client: facts.client.ip,
      sender: logValue(facts.sender ?? '', 254),
      recipient: logValue(facts.recipients.join(',').slice(0, 1000), 1000),
      action: decision.verdict === 'continue' ? 'pass' : decision.verdict,
      reason: decision.reason,
      stage,
      tags: withSpf(decision.tags, session.transaction.spf),
    };
    if (facts.helo !== undefined) line.helo = logValue(facts.helo, 255);
    store.logDecision(line).catch((err: unknown) => {
      this.services.logger.warn({ err, conn: session.id }, 'decision-log-write-failed');
    });
  }
}
