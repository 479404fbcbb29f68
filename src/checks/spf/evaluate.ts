/**
 * check_host() of RFC 7208: record lookup, mechanism evaluation, include and redirect, the
 * processing limits and the explanation. One `SpfEvaluation` is one check: it owns the counters
 * the limits apply to, the time budget, and the answers it may reuse (PTR names, `%{p}`).
 */
import { type IpAddress, inPrefix, parseIp, reverseName, sameIp } from '../../dns/address.js';
import type { DnsResult, QueryMeter, RecordType, Resolver } from '../../dns/types.js';
import {
  expandMacroString,
  type MacroString,
  type MacroValues,
  parseMacroString,
} from './macro.js';
import { SpfProblem } from './problem.js';
import {
  type Directive,
  isSpfRecord,
  type ParsedRecord,
  parseRecord,
  printable,
  queriesDns,
} from './record.js';
import type { SpfLimits, SpfResultWord } from './types.js';

/** A non-error outcome of check_host() for one domain. */
export interface HostOutcome {
  result: Exclude<SpfResultWord, 'permerror' | 'temperror'>;
  /** The deciding directive's text, `default` when none matched, absent for none. */
  mechanism?: string;
  /** The record and domain whose `exp=` explains a fail. */
  failedAt?: { record: ParsedRecord; domain: string };
  /** The top record's text when one was found. */
  record?: string;
}

const QUALIFIER_RESULT = { '+': 'pass', '-': 'fail', '~': 'softfail', '?': 'neutral' } as const;

/** What one evaluation needs to know besides the domain being checked. */
export interface EvaluationContext {
  ip: IpAddress;
  sender: string;
  local: string;
  senderDomain: string;
  helo: string;
  receiver: string;
  resolver: Resolver;
  limits: SpfLimits;
  /** Absolute deadline on the clock's scale. */
  deadline: number;
  now: () => number;
  lax: boolean;
}

export class SpfEvaluation {
  terms = 0;
  voids = 0;
  queries = 0;
  private ptrNames: Promise<string[]> | undefined;
  private validated = new Map<string, Promise<boolean>>();
  private readonly meter: QueryMeter;

  constructor(private readonly ctx: EvaluationContext) {
    this.meter = { charge: () => ++this.queries <= ctx.limits.queries };
  }

  /**
   * Find the SPF record of `domain`: its text, or null when there is none (RFC 7208 4.4, 4.5).
   * More than one record is a permerror; a temporary DNS failure a temperror.
   */
  async findRecord(domain: string): Promise<string | null> {
    const answer = await this.query(domain, 'TXT');
    if (answer.kind === 'temporary')
      throw this.temporary(answer, `SPF record lookup for ${domain}`);
    if (answer.kind !== 'answer') return null;
    let found: string | null = null;
    for (const txt of answer.records) {
      const text = txt.strings.join('');
      if (!isSpfRecord(text)) continue;
      if (found !== null)
        throw new SpfProblem('permerror', `more than one SPF record for ${domain}`);
      found = text;
    }
    return found;
  }

  /** check_host() on a domain: fetch its record and evaluate it. */
  async checkHost(domain: string): Promise<HostOutcome> {
    const text = await this.findRecord(domain);
    if (text === null) return { result: 'none' };
    return this.evaluateRecord(text, domain);
  }

  /** Evaluate a record's text as the policy of `domain`. */
  async evaluateRecord(text: string, domain: string): Promise<HostOutcome> {
    const record = parseRecord(text, this.ctx.lax);
    for (const directive of record.directives) {
      if (queriesDns(directive)) this.countTerm(directive.text);
      if (await this.matches(directive, domain)) {
        const result = QUALIFIER_RESULT[directive.qualifier];
        const outcome: HostOutcome = { result, mechanism: directive.text, record: text };
        if (result === 'fail') outcome.failedAt = { record, domain };
        return outcome;
      }
    }
    if (record.redirect) {
      this.countTerm(record.redirect.text);
      const target = await this.expandDomain(record.redirect.spec, domain);
      const outcome = await this.checkHost(target);
      if (outcome.result === 'none') {
        throw new SpfProblem(
          'permerror',
          `redirect target ${target} has no SPF record`,
          record.redirect.text,
        );
      }
      // The target's own exp= explains its fail; ours must not (RFC 7208 6.2).
      return { ...outcome, record: text };
    }
    if (record.defaultQualifier) {
      return {
        result: QUALIFIER_RESULT[record.defaultQualifier],
        mechanism: 'default',
        record: text,
      };
    }
    return { result: 'neutral', mechanism: 'default', record: text };
  }

  private countTerm(term: string): void {
    if (++this.terms > this.ctx.limits.terms) {
      throw new SpfProblem(
        'permerror',
        `more than ${this.ctx.limits.terms} DNS-querying terms`,
        term,
      );
    }
  }

  private countVoid(term: string): void {
    if (++this.voids > this.ctx.limits.voidLookups) {
      throw new SpfProblem(
        'permerror',
        `more than ${this.ctx.limits.voidLookups} void lookups`,
        term,
      );
    }
  }

  private async matches(d: Directive, domain: string): Promise<boolean> {
    const ip = this.ctx.ip;
    switch (d.kind) {
      case 'all':
        return true;
      case 'ip4':
      case 'ip6':
        return inPrefix(ip, d.network!, ip.family === 4 ? d.cidr4 : d.cidr6);
      case 'a': {
        const target = d.domain ? await this.expandDomain(d.domain, domain) : domain;
        const addresses = await this.addresses(target, d.text, true);
        const prefix = ip.family === 4 ? d.cidr4 : d.cidr6;
        return addresses.some((a) => inPrefix(ip, a, prefix));
      }
      case 'mx':
        return this.matchMx(d, d.domain ? await this.expandDomain(d.domain, domain) : domain);
      case 'ptr':
        return this.matchPtr(d.domain ? await this.expandDomain(d.domain, domain) : domain);
      case 'exists': {
        const target = await this.expandDomain(d.domain!, domain);
        // exists always asks for A records, whatever the client's address family (RFC 7208 5.7).
        const answer = await this.query(target, 'A');
        if (answer.kind === 'temporary')
          throw this.temporary(answer, `exists lookup for ${target}`, d.text);
        if (answer.kind !== 'answer') {
          this.countVoid(d.text);
          return false;
        }
        return true;
      }
      case 'include': {
        const target = await this.expandDomain(d.domain!, domain);
        const outcome = await this.checkHost(target);
        if (outcome.result === 'none' && !this.ctx.lax) {
          throw new SpfProblem('permerror', `include target ${target} has no SPF record`, d.text);
        }
        return outcome.result === 'pass';
      }
    }
  }

  private async matchMx(d: Directive, target: string): Promise<boolean> {
    const answer = await this.query(target, 'MX');
    if (answer.kind === 'temporary')
      throw this.temporary(answer, `MX lookup for ${target}`, d.text);
    if (answer.kind !== 'answer') {
      this.countVoid(d.text);
      return false;
    }
    const exchanges = answer.records.map((r) => r.exchange).filter((x) => x !== '');
    if (exchanges.length > this.ctx.limits.mxNames) {
      throw new SpfProblem(
        'permerror',
        `more than ${this.ctx.limits.mxNames} MX names for ${target}`,
        d.text,
      );
    }
    const ip = this.ctx.ip;
    const prefix = ip.family === 4 ? d.cidr4 : d.cidr6;
    for (const exchange of exchanges) {
      const addresses = await this.addresses(exchange, d.text, false);
      if (addresses.some((a) => inPrefix(ip, a, prefix))) return true;
    }
    return false;
  }

  /** A or AAAA records (by the client's family) of a name; a temporary failure is temperror. */
  private async addresses(name: string, term: string, countVoid: boolean): Promise<IpAddress[]> {
    const type = this.ctx.ip.family === 4 ? 'A' : 'AAAA';
    const answer = await this.query(name, type);
    if (answer.kind === 'temporary')
      throw this.temporary(answer, `${type} lookup for ${name}`, term);
    if (answer.kind !== 'answer') {
      if (countVoid) this.countVoid(term);
      return [];
    }
    const out: IpAddress[] = [];
    for (const r of answer.records) {
      const address = parseAddress(r.address);
      if (address) out.push(address);
    }
    return out;
  }

  private async matchPtr(target: string): Promise<boolean> {
    const wanted = target.toLowerCase();
    for (const name of await this.reverseNames()) {
      const lower = name.toLowerCase();
      if (lower !== wanted && !lower.endsWith(`.${wanted}`)) continue;
      if (await this.isValidated(name)) return true;
    }
    return false;
  }

  /** The client's PTR names, the first `limits.ptrNames` of them; DNS errors give none. */
  private reverseNames(): Promise<string[]> {
    if (!this.ptrNames) {
      this.ptrNames = this.query(reverseName(this.ctx.ip), 'PTR').then((answer) =>
        answer.kind === 'answer'
          ? answer.records.slice(0, this.ctx.limits.ptrNames).map((r) => r.target)
          : [],
      );
    }
    return this.ptrNames;
  }

  /** Whether `name` resolves back to the client address; DNS errors count as no. */
  private isValidated(name: string): Promise<boolean> {
    const key = name.toLowerCase();
    let pending = this.validated.get(key);
    if (!pending) {
      const type = this.ctx.ip.family === 4 ? 'A' : 'AAAA';
      pending = this.query(name, type).then(
        (answer) =>
          answer.kind === 'answer' &&
          answer.records.some((r) => {
            const address = parseAddress(r.address);
            return address !== null && sameIp(address, this.ctx.ip);
          }),
      );
      this.validated.set(key, pending);
    }
    return pending;
  }

  /**
   * `%{p}`: a validated name of the client, preferring the domain itself, then a subdomain of it,
   * then any; `unknown` when none validates (RFC 7208 7.3).
   */
  private async validatedName(domain: string): Promise<string> {
    const names = await this.reverseNames();
    const d = domain.toLowerCase();
    const rank = (n: string) => {
      const l = n.toLowerCase();
      return l === d ? 0 : l.endsWith(`.${d}`) ? 1 : 2;
    };
    const ordered = [...names].sort((a, b) => rank(a) - rank(b));
    for (const name of ordered) if (await this.isValidated(name)) return name;
    return 'unknown';
  }

  /** Macro values with `d` set to the current domain, resolving `%{p}` when used. */
  private async values(ms: MacroString, domain: string): Promise<MacroValues> {
    const c = this.ctx;
    const values: MacroValues = {
      sender: c.sender,
      local: c.local,
      senderDomain: c.senderDomain,
      domain,
      ip: c.ip,
      helo: c.helo,
      receiver: c.receiver,
      timestamp: Math.floor(c.now() / 1000),
    };
    if (ms.usesPtr) values.ptr = await this.validatedName(domain);
    return values;
  }

  /** Expand a domain-spec: trailing dot dropped, cut from the left to 253 octets (RFC 7208 7.3). */
  async expandDomain(ms: MacroString, domain: string): Promise<string> {
    let out = ms.literal ?? expandMacroString(ms, await this.values(ms, domain));
    if (out.endsWith('.')) out = out.slice(0, -1);
    while (out.length > 253) {
      const dot = out.indexOf('.');
      if (dot < 0) break;
      out = out.slice(dot + 1);
    }
    return out;
  }

  /**
   * The explanation of a fail from `exp=` (RFC 7208 6.2), or null when the record has none or it
   * cannot be used: lookup errors, not exactly one TXT record, or a bad explanation string.
   */
  async explain(at: { record: ParsedRecord; domain: string }): Promise<string | null> {
    const exp = at.record.exp;
    if (!exp) return null;
    try {
      const target = await this.expandDomain(exp, at.domain);
      const answer = await this.query(target, 'TXT');
      if (answer.kind !== 'answer' || answer.records.length !== 1) return null;
      const text = answer.records[0]!.strings.join('');
      const ms = parseMacroString(text, 'explanation');
      return expandMacroString(ms, await this.values(ms, at.domain));
    } catch (err) {
      if (err instanceof SpfProblem) return null;
      throw err;
    }
  }

  private query<T extends RecordType>(name: string, type: T): Promise<DnsResult<T>> {
    return this.ctx.resolver.query(name, type, { deadline: this.ctx.deadline, meter: this.meter });
  }

  private temporary(
    answer: { reason: string; detail: string },
    what: string,
    term?: string,
  ): SpfProblem {
    if (answer.reason === 'budget') {
      return new SpfProblem('permerror', `more than ${this.ctx.limits.queries} DNS queries`, term);
    }
    const late = this.ctx.now() >= this.ctx.deadline;
    const why = late ? 'time budget exhausted' : `${answer.reason}: ${printable(answer.detail)}`;
    return new SpfProblem('temperror', `${what} failed (${why})`, term);
  }
}

/** Parse an address from an answer; the resolver has decoded it from the record's bytes. */
function parseAddress(text: string): IpAddress | null {
  return parseIp(text);
}
