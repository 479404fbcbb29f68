/**
 * The milter door: the milter library's callbacks bound to the policy engine. Each SMTP
 * connection takes the engine (and so the world: resolver, store) in force when it started and
 * holds it until it closes, so a reload never pulls a store from under a connection that has
 * been open for hours.
 */

import { parseIp } from '../dns/address.js';
import {
  type ConnectInfo,
  MilterActionError,
  type MilterContext,
  type MilterDefinition,
  type MilterHandler,
  type RawHeaderField,
  reply,
  type StepResult,
} from '../milter/index.js';
import {
  type Decision,
  type PolicyEngine,
  type PolicySession,
  stripBrackets,
} from '../policy/index.js';

/** The engine of the world in force, held until `release`. */
export interface HeldEngine {
  engine: PolicyEngine;
  release(): void;
}

let nextConnection = 0;

/**
 * The milter definition for `mailgate serve`.
 *
 * @example
 * createMilterServer(policyMilter(() => daemon.holdEngine()), { listen: 'inet:10028@127.0.0.1', logger });
 */
export function policyMilter(hold: () => HeldEngine): MilterDefinition {
  return {
    name: 'mailgate',
    handler: () => new PolicyMilterHandler(hold()),
    actions: ['addHeader', 'changeHeader', 'quarantine'],
    // Header fields, the end of the headers and body chunks are only read (the message checks
    // start at the end of the headers): the MTA need not wait for an answer to each.
    noReply: ['header', 'eoh', 'body'],
    // DKIM's simple canonicalization needs the whitespace after each colon as sent.
    headerLeadingSpace: true,
    macros: {
      connect: ['j', '{daemon_name}'],
      envfrom: ['i', '{auth_authen}'],
      eom: ['i'],
    },
    onError: 'tempfail',
  };
}

/** What a decision is to the milter library. */
export function milterResult(decision: Decision): StepResult {
  switch (decision.verdict) {
    case 'continue':
    case 'quarantine':
      return 'continue';
    case 'accept':
      return 'accept';
    case 'discard':
      return 'discard';
    case 'reject':
    case 'tempfail': {
      const r = decision.reply;
      if (!r) return decision.verdict;
      return reply(r.code, r.xcode, r.text);
    }
  }
}

class PolicyMilterHandler implements MilterHandler {
  readonly #held: HeldEngine;
  readonly #engine: PolicyEngine;
  readonly #id = `m${(++nextConnection).toString(36)}`;
  #session: PolicySession | undefined;
  /** Actions the MTA turned down, each logged once. */
  readonly #refused = new Set<string>();

  constructor(held: HeldEngine) {
    this.#held = held;
    this.#engine = held.engine;
  }

  async connect(_ctx: MilterContext, info: ConnectInfo): Promise<StepResult> {
    const ip = info.address.replace(/^\[|\]$/gu, '').replace(/^IPv6:/iu, '');
    if ((info.family !== 'inet' && info.family !== 'inet6') || !parseIp(ip)) {
      return milterResult(this.#engine.local(this.#id, info.address));
    }
    this.#session = this.#engine.session(this.#id, {
      ip,
      port: info.port,
      reportedName: info.hostname,
    });
    return milterResult(await this.#engine.connect(this.#session));
  }

  async helo(_ctx: MilterContext, name: string): Promise<StepResult> {
    if (!this.#session) return 'continue';
    return milterResult(await this.#engine.helo(this.#session, name));
  }

  async envfrom(ctx: MilterContext, sender: string, params: string[]): Promise<StepResult> {
    const session = this.#session;
    if (!session) return 'continue';
    const login = ctx.getSymbol('auth_authen');
    if (login) session.facts.setLogin(login);
    session.facts.queueId = ctx.getSymbol('i');
    return milterResult(await this.#engine.mail(session, sender, params));
  }

  async envrcpt(_ctx: MilterContext, recipient: string): Promise<StepResult> {
    if (!this.#session) return 'continue';
    const decision = await this.#engine.rcpt(this.#session, stripBrackets(recipient));
    return milterResult(decision);
  }

  header(_ctx: MilterContext, name: string, value: string, raw: RawHeaderField): StepResult {
    if (this.#session) this.#engine.header(this.#session, name, value, raw);
    return 'continue';
  }

  eoh(): StepResult {
    if (this.#session) this.#engine.eoh(this.#session);
    return 'continue';
  }

  body(_ctx: MilterContext, chunk: Buffer): StepResult {
    if (this.#session) this.#engine.body(this.#session, chunk);
    return 'continue';
  }

  async eom(ctx: MilterContext): Promise<StepResult> {
    const session = this.#session;
    if (!session) return 'continue';
    const decision = await this.#engine.eom(session);
    if (decision.verdict === 'continue' || decision.verdict === 'quarantine') {
      // An MTA that did not grant an action still gets the message: the change is left out and
      // said once per connection, rather than every message tempfailing.
      const attempt = (what: string, change: () => void) => {
        try {
          change();
        } catch (err) {
          if (!(err instanceof MilterActionError)) throw err;
          if (!this.#refused.has(what)) {
            this.#refused.add(what);
            this.#engine.services.logger.warn(
              { conn: this.#id, action: what, problem: err.message },
              'milter-action-refused',
            );
          }
        }
      };
      // Removals first: the indexes count the fields as they came in.
      for (const { name, index } of [...(decision.removeHeaders ?? [])].reverse()) {
        attempt('changeHeader', () => ctx.changeHeader(name, index, null));
      }
      // The library's convention: LF folds, and with HDR_LEADSPC our own leading space.
      const lead = ctx.headerLeadingSpace ? ' ' : '';
      const wire = (value: string) => lead + value.replace(/\r\n/gu, '\n');
      for (const header of decision.headers.filter((h) => h.position === 'top').reverse()) {
        attempt('insertHeader', () => ctx.insertHeader(0, header.name, wire(header.value)));
      }
      for (const header of decision.headers.filter((h) => h.position !== 'top')) {
        attempt('addHeader', () => ctx.addHeader(header.name, wire(header.value)));
      }
      const hold = decision.verdict === 'quarantine' ? decision.reply?.text : undefined;
      if (hold) attempt('quarantine', () => ctx.quarantine(hold));
    }
    return milterResult(decision);
  }

  abort(): void {
    if (this.#session) this.#engine.abort(this.#session);
  }

  close(): void {
    this.#held.release();
  }
}
