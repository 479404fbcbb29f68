/**
 * check_host() of RFC 7208: record lookup, mechanism evaluation, include and redirect, the
 * processing limits and the explanation. One `SpfEvaluation` is one check: it owns the counters
 * the limits apply to, the time budget, and the answers it may reuse (PTR names, `%{p}`).
 */
import { type IpAddress, inPrefix, parseIp, reverseName, sameIp } from '../../dns/address.js';
import type {
  AaaaRecord,
  ARecord,
  DnsResult,
  QueryMeter,
  RecordType,
  Resolver,
} from '../../dns/types.js';
import { printableAscii } from '../../text/index.js';
import {
  expandMacroString,
  type MacroString,
  type MacroValues,
  parseMacroString,
} from './macro.js';
import { SpfProblem } from './problem.js';
import { type Directive, isSpfRecord, type ParsedRecord, parseRecord } from './record.js';
import type { SpfLimits, SpfResultWord } from './types.js';

/** A non-error outcome of check_host() for one domain. */
export interface HostOutcome {
  result: Exclude<SpfResultWord, 'permerror' | 'temperror'>;
  /** The deciding directive's text, `default` when none matched, absent for none. */
  mechanism?: string;
  /** The record and domain whose `exp=` explains a fail. */
  failedAt?: { record: ParsedRecord; domain: string };
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

// Address records are parsed once, however many checks read them: the resolver's cache hands out
// the same frozen record objects to every reader.
const parsedAddresses = new WeakMap<ARecord | AaaaRecord, IpAddress | null>();

function addressOf(record: ARecord | AaaaRecord): IpAddress | null {
  let ip = parsedAddresses.get(record);
  if (ip === undefined) {
    ip = parseIp(record.address);
    parsedAddresses.set(record, ip);
  }
  return ip;
}

/** The client's PTR names; `void` when the lookup answered NXDOMAIN or no data. */
interface PtrNames {
  names: string[];
  void: boolean;
}

/** Matched, or not, or a DNS failure that decides only when nothing else matched. */
type Probe = boolean | SpfProblem;

export class SpfEvaluation {
  terms = 0;
  voids = 0;
  queries = 0;
  private ptrNames: Promise<PtrNames | SpfProblem> | undefined;
  private validated = new Map<string, Promise<Probe>>();
  private readonly meter: QueryMeter;
  private readonly addressType: 'A' | 'AAAA';

  constructor(private readonly ctx: EvaluationContext) {
    this.meter = { charge: () => ++this.queries <= ctx.limits.queries };
    this.addressType = ctx.ip.family === 4 ? 'A' : 'AAAA';
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
      const text = txt.strings.length === 1 ? txt.strings[0]! : txt.strings.join('');
      if (!isSpfRecord(text)) continue;
      if (found !== null) {
        throw new SpfProblem('permerror', `more than one SPF record for ${domain}`);
      }
      found = text;
    }
    if (found !== null && found.length > this.ctx.limits.recordLength) {
      throw new SpfProblem(
        'permerror',
        `SPF record of ${domain} is ${found.length} characters, over the limit of ${this.ctx.limits.recordLength}`,
      );
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
      if (directive.queriesDns) this.countTerm(directive.text);
      // ip4, ip6 and all answer at once; only DNS mechanisms pay for a trip through the queue.
      const matched = this.matches(directive, domain);
      if (typeof matched === 'boolean' ? matched : await matched) {
        const result = QUALIFIER_RESULT[directive.qualifier];
        if (result === 'fail') {
          return { result, mechanism: directive.text, failedAt: { record, domain } };
        }
        return { result, mechanism: directive.text };
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
      return outcome;
    }
    const qualifier = record.defaultQualifier ?? '?';
    return { result: QUALIFIER_RESULT[qualifier], mechanism: 'default' };
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

  private matches(d: Directive, domain: string): boolean | Promise<boolean> {
    const ip = this.ctx.ip;
    switch (d.kind) {
      case 'all':
        return true;
      case 'ip4':
      case 'ip6':
        return inPrefix(ip, d.network!, ip.family === 4 ? d.cidr4 : d.cidr6);
      case 'a':
        return this.matchA(d, domain);
      case 'mx':
        return this.target(d, domain).then((target) => this.matchMx(d, target));
      case 'ptr':
        return this.target(d, domain).then((target) => this.matchPtr(d, target));
      case 'exists':
        return this.matchExists(d, domain);
      case 'include':
        return this.matchInclude(d, domain);
    }
  }

  /** The domain a directive is about: its domain-spec expanded, or the current domain. */
  private async target(d: Directive, domain: string): Promise<string> {
    return d.domain ? this.expandDomain(d.domain, domain) : domain;
  }

  private async matchA(d: Directive, domain: string): Promise<boolean> {
    const found = await this.addressMatch(await this.target(d, domain), d, true);
    if (found instanceof SpfProblem) throw found;
    return found;
  }

  private async matchExists(d: Directive, domain: string): Promise<boolean> {
    const target = await this.expandDomain(d.domain!, domain);
    // exists always asks for A records, whatever the client's address family (RFC 7208 5.7).
    const answer = await this.query(target, 'A');
    if (answer.kind === 'temporary') {
      throw this.temporary(answer, `exists lookup for ${target}`, d.text);
    }
    if (answer.kind !== 'answer') {
      this.countVoid(d.text);
      return false;
    }
    return true;
  }

  private async matchInclude(d: Directive, domain: string): Promise<boolean> {
    const target = await this.expandDomain(d.domain!, domain);
    const outcome = await this.checkHost(target);
    if (outcome.result === 'none' && !this.ctx.lax) {
      throw new SpfProblem('permerror', `include target ${target} has no SPF record`, d.text);
    }
    return outcome.result === 'pass';
  }

  /**
   * Whether an address record of `name` lies in the directive's prefix. A temporary failure comes
   * back as the problem it would raise, so that callers looking at several names can let a match
   * win over a failure.
   */
  private async addressMatch(name: string, d: Directive, countVoid: boolean): Promise<Probe> {
    const type = this.addressType;
    const answer = await this.query(name, type);
    if (answer.kind === 'temporary')
      return this.temporary(answer, `${type} lookup for ${name}`, d.text);
    if (answer.kind !== 'answer') {
      if (countVoid) this.countVoid(d.text);
      return false;
    }
    const ip = this.ctx.ip;
    const prefix = ip.family === 4 ? d.cidr4 : d.cidr6;
    for (const record of answer.records as Array<ARecord | AaaaRecord>) {
      const address = addressOf(record);
      if (address && inPrefix(ip, address, prefix)) return true;
    }
    return false;
  }

  private async matchMx(d: Directive, target: string): Promise<boolean> {
    const answer = await this.query(target, 'MX');
    if (answer.kind === 'temporary') {
      throw this.temporary(answer, `MX lookup for ${target}`, d.text);
    }
    if (answer.kind !== 'answer') {
      this.countVoid(d.text);
      return false;
    }
    const exchanges: string[] = [];
    for (const r of answer.records) if (r.exchange !== '') exchanges.push(r.exchange);
    if (exchanges.length > this.ctx.limits.mxNames) {
      throw new SpfProblem(
        'permerror',
        `more than ${this.ctx.limits.mxNames} MX names for ${target}`,
        d.text,
      );
    }
    // The exchanges' addresses are asked for together; a match anywhere wins over a failure
    // elsewhere, and a failure with no match is temperror. Empty answers here are not void
    // lookups: the term's own lookup (the MX query) answered.
    return decide(await Promise.all(exchanges.map((x) => this.addressMatch(x, d, false))));
  }

  private async matchPtr(d: Directive, target: string): Promise<boolean> {
    const ptr = await this.reverseNames();
    if (ptr instanceof SpfProblem) throw ptr;
    if (ptr.void) this.countVoid(d.text);
    const names = ptr.names;
    const wanted = target.toLowerCase();
    const candidates = names.filter((name) => {
      const lower = name.toLowerCase();
      return lower === wanted || lower.endsWith(`.${wanted}`);
    });
    // A failed validation lookup only skips that name (RFC 7208 5.5), so `decide` sees no
    // problems here except our own limits.
    return decide(await Promise.all(candidates.map((name) => this.isValidated(name))));
  }

  /**
   * The client's PTR names, the first `limits.ptrNames` of them. DNS errors give none (RFC 7208
   * 5.5), but running out of our own time or query budget is the problem it is everywhere else.
   */
  private reverseNames(): Promise<PtrNames | SpfProblem> {
    if (!this.ptrNames) {
      this.ptrNames = this.query(reverseName(this.ctx.ip), 'PTR').then((answer) => {
        if (answer.kind === 'answer') {
          const names = answer.records.slice(0, this.ctx.limits.ptrNames).map((r) => r.target);
          return { names, void: false };
        }
        if (answer.kind !== 'temporary') return { names: [], void: true };
        if (this.isOwnLimit(answer)) return this.temporary(answer, 'PTR lookup');
        return { names: [], void: false };
      });
    }
    return this.ptrNames;
  }

  /** Whether `name` resolves back to the client address; DNS errors count as no. */
  private isValidated(name: string): Promise<Probe> {
    const key = name.toLowerCase();
    let pending = this.validated.get(key);
    if (!pending) {
      pending = this.query(name, this.addressType).then((answer): Probe => {
        if (answer.kind === 'temporary') {
          return this.isOwnLimit(answer) ? this.temporary(answer, `validation of ${name}`) : false;
        }
        if (answer.kind !== 'answer') return false;
        for (const record of answer.records as Array<ARecord | AaaaRecord>) {
          const address = addressOf(record);
          if (address && sameIp(address, this.ctx.ip)) return true;
        }
        return false;
      });
      this.validated.set(key, pending);
    }
    return pending;
  }

  /**
   * `%{p}`: a validated name of the client, preferring the domain itself, then a subdomain of it,
   * then any; `unknown` when none validates (RFC 7208 7.3). Its lookups count against the query
   * and time budgets, not as terms: the term that uses the macro is already counted.
   */
  private async validatedName(domain: string): Promise<string> {
    const ptr = await this.reverseNames();
    if (ptr instanceof SpfProblem) throw ptr;
    const names = ptr.names;
    const d = domain.toLowerCase();
    const rank = (n: string) => {
      const l = n.toLowerCase();
      return l === d ? 0 : l.endsWith(`.${d}`) ? 1 : 2;
    };
    const ordered = [...names].sort((a, b) => rank(a) - rank(b));
    const checks = await Promise.all(ordered.map((name) => this.isValidated(name)));
    for (let i = 0; i < ordered.length; i++) {
      const check = checks[i];
      if (check instanceof SpfProblem) throw check;
      if (check) return ordered[i]!;
    }
    return 'unknown';
  }

  /** Macro values with `d` set to the current domain, resolving `%{p}` when used. */
  async values(ms: MacroString, domain: string): Promise<MacroValues> {
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
    while (out.length > 253 || Buffer.byteLength(out) > 253) {
      const dot = out.indexOf('.');
      if (dot < 0) break;
      out = out.slice(dot + 1);
    }
    return out;
  }

  /**
   * The explanation of a fail from `exp=` (RFC 7208 6.2), or null when the record has none or it
   * cannot be used: lookup errors, not exactly one TXT record, a bad or empty explanation string.
   * The text is reduced to printable ASCII: macros can carry anything the client sent.
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
      const explanation = printableAscii(expandMacroString(ms, await this.values(ms, at.domain)));
      return explanation.trim() === '' ? null : explanation;
    } catch (err) {
      if (err instanceof SpfProblem) return null;
      throw err;
    }
  }

  private query<T extends RecordType>(name: string, type: T): Promise<DnsResult<T>> {
    // The time left goes as a relative timeout: the resolver may keep another clock than ours.
    const timeout = this.ctx.deadline - this.ctx.now();
    return this.ctx.resolver.query(name, type, { timeout, meter: this.meter });
  }

  /** A failure caused by our own query budget or time budget, rather than by the DNS. */
  private isOwnLimit(answer: { reason: string }): boolean {
    return answer.reason === 'budget' || answer.reason === 'deadline';
  }

  /**
   * The problem a temporary DNS failure raises. The resolver's detail (which names our DNS
   * servers) stays out of it: problems go into replies and headers that the client sees.
   */
  private temporary(answer: { reason: string }, what: string, term?: string): SpfProblem {
    if (answer.reason === 'budget') {
      return new SpfProblem('permerror', `more than ${this.ctx.limits.queries} DNS queries`, term);
    }
    const why = answer.reason === 'deadline' ? 'time budget exhausted' : answer.reason;
    return new SpfProblem('temperror', `${what} failed (${why})`, term);
  }
}

/** Any match wins; else the first problem is raised; else no match. */
function decide(probes: Probe[]): boolean {
  let problem: SpfProblem | undefined;
  for (const probe of probes) {
    if (probe === true) return true;
    if (probe instanceof SpfProblem) problem ??= probe;
  }
  if (problem) throw problem;
  return false;
}
