/**
 * The greylisting engine: bley's scored greylisting with postgrey's whitelists and
 * auto-whitelisting, and the fixes to both described in docs/greylisting.md.
 *
 * Order of a decision:
 *   postmaster/abuse → recipient whitelist → client whitelist → auto-whitelisted client →
 *   known triplet (passed; greylisted and waited; early retry) →
 *   new triplet: cached client verdict, else scoring (DNSWL, DNSBL, HELO + dyn + s=r + SPF).
 */
import { systemClock } from '../checks/budget.js';
import { checkDnsxl, validateDnsxlLists } from '../checks/dnsxl/index.js';
import type { DnsxlList, DnsxlResult } from '../checks/dnsxl/types.js';
import { bleyScore } from '../checks/helo/index.js';
import { checkPtr, looksDynamic } from '../checks/ptr/index.js';
import { checkSpf } from '../checks/spf/index.js';
import type { SpfResult } from '../checks/spf/types.js';
import { formatIp, type IpAddress } from '../dns/address.js';
import type { Clock } from '../dns/types.js';
import { domainSubject, networkSubject } from '../reputation/subjects.js';
import type {
  ClientCounter,
  Decision,
  Store,
  Triplet,
  TripletKey,
  TripletState,
} from '../store/types.js';
import { logValue } from '../text/index.js';
import { SpfMemo, VerdictCache } from './cache.js';
import { greylistHeader, safeHostname } from './header.js';
import { clientKey, domainPart, localPart, normaliseAddress, parseClientIp } from './normalise.js';
import {
  exactly,
  judge,
  type ScoreFacts,
  type ScoreOutcome,
  type ScoreRange,
  spfCouldMatter,
} from './score.js';
import { checkSettings } from './settings.js';
import type {
  GreylistDecision,
  GreylistLogger,
  GreylistRequest,
  GreylistScores,
  GreylistServices,
  GreylistSettings,
  GreylistVerdict,
} from './types.js';
import type { ClientWhitelist, RecipientWhitelist } from './whitelist.js';
import type { WhitelistFile } from './whitelist-file.js';

/** A client whitelist: parsed text, or a file that follows its changes. */
export type ClientWhitelistSource = ClientWhitelist | WhitelistFile<ClientWhitelist>;
/** A recipient whitelist: parsed text, or a file that follows its changes. */
export type RecipientWhitelistSource = RecipientWhitelist | WhitelistFile<RecipientWhitelist>;

export interface GreylisterOptions {
  /** Clients never greylisted (postgrey's `whitelist_clients`). */
  clientWhitelists?: readonly ClientWhitelistSource[];
  /** Recipients never greylisted (postgrey's `whitelist_recipients`). */
  recipientWhitelists?: readonly RecipientWhitelistSource[];
  /** Where decisions (info), store failures (error) and whitelist trouble (warn) are logged. */
  logger?: GreylistLogger;
  /** Local sender reputation: what greylisting counts, and who may skip it. */
  reputation?: GreylistReputation;
  /**
   * Told each decision's verdict (check `greylist`) and the DNS lists' result (check `dnsxl`),
   * with the seconds taken: the daemon's metrics.
   */
  checkObserver?: (check: 'greylist' | 'dnsxl', result: string, seconds: number) => void;
}

/** Greylisting's part in local sender reputation (src/reputation, bound by the daemon). */
export interface GreylistReputation {
  /** Counts an event for the subjects; never waits, never throws. */
  record(subjects: readonly string[], event: 'greylist:pass' | 'greylist:refused'): void;
  /**
   * When given, a client whose network is in good standing, or a sender whose SPF passes for a
   * domain in good standing, is not greylisted (`reputation`): the first such subject, or null.
   */
  goodStanding?(subjects: readonly string[]): Promise<string | null>;
}

/** Local parts that always receive mail (RFC 5321 4.5.1, RFC 2142). */
const ALWAYS_OPEN = new Set(['postmaster', 'abuse']);

/** A passed triplet's lastSeen and passCount are written at most this often. */
export const REFRESH_PASSED_MS = 3_600_000;

/** Longest SPF memo key (client, sender, HELO): a real sender and HELO are far shorter. */
const MAX_MEMO_KEY = 600;

/**
 * Whether an SPF directive lets (nearly) everyone pass: `all`, or a network wider than an IPv4
 * /16 or an IPv6 /32 (in `ip4`, `ip6`, or the prefix of `a` and `mx`).
 *
 * @example
 * broadMechanism('+all')              // true
 * broadMechanism('ip4:192.0.2.0/24')  // false
 * broadMechanism('a/8')               // true
 */
export function broadMechanism(directive: string): boolean {
  const text = directive.replace(/^[+?~-]/u, '').toLowerCase();
  if (text === 'all') return true;
  const v4 = text.startsWith('ip6:') ? undefined : /\/(\d{1,3})(?:\/\/|$)/u.exec(text)?.[1];
  if (v4 !== undefined && Number(v4) < 16) return true;
  const v6 = text.startsWith('ip6:')
    ? /\/(\d{1,3})$/u.exec(text)?.[1]
    : /\/\/(\d{1,3})$/u.exec(text)?.[1];
  return v6 !== undefined && Number(v6) < 32;
}

/** Reasons a new triplet is greylisted with (not an early retry of a known one). */
const NEW_TRIPLET_REASONS = new Set(['score', 'dnsbl', 'cache-bad', 'dns-tempfail']);

/** Attempts of a greylisted triplet closer together than this count as one (no penalty). */
export const SAME_ATTEMPT_MS = 60_000;

/** A client is counted for auto-whitelisting at most once in this long (postgrey's rule). */
const COUNT_EVERY_MS = 60_000;

/** Longest client name, HELO or problem text kept for logs. */
const MAX_LOG_TEXT = 255;

/** A store call failed; carries the driver's or the store's error. */
class StoreFailure extends Error {
  constructor(
    readonly operation: string,
    override readonly cause: unknown,
  ) {
    super(`store ${operation} failed: ${errorText(cause)}`);
  }
}

function errorText(err: unknown): string {
  return logValue(err instanceof Error ? err.message : String(err), 500);
}

/** Log-safe text from the client or DNS. */
function shown(text: string): string {
  return logValue(text, MAX_LOG_TEXT);
}

/** The client's verified name as far as it is known: a name, none, or a failed lookup. */
type ClientName = { kind: 'name'; name: string } | { kind: 'none' } | { kind: 'failed' };

/** Everything one decision learns on its way. */
interface Context {
  now: number;
  /** When the decision's DNS work must be done (now + dnsBudgetMs). */
  dnsDeadline: number;
  ip: IpAddress;
  ipText: string;
  key: TripletKey;
  request: GreylistRequest;
  scores: GreylistScores;
  problems: string[];
  match?: string;
  /** The client name lookup, started at most once per decision. */
  name?: Promise<ClientName>;
  /** The client's auto-whitelist counter as read for this decision (null: none). */
  counter?: ClientCounter | null;
  /** The SPF check, started at most once per decision. */
  spf?: Promise<SpfResult>;
  /** The DNS lists, asked at most once per decision (null when none are configured). */
  lists?: Promise<DnsxlResult | null>;
  /** The triplet is keyed by the sender's SPF-authenticated domain, not the client. */
  byDomain?: boolean;
}

/** A decision before its action and header are composed. */
interface Verdict {
  verdict: GreylistVerdict;
  reason: string;
  delay?: number;
  /** Whether a header is due (a pass after waiting). */
  waited?: boolean;
}

/**
 * Decides, per recipient, whether a delivery attempt passes or is greylisted.
 *
 * @example
 * const greylister = new Greylister(
 *   { ...DEFAULT_GREYLIST_SETTINGS, hostname: 'mx.example.com', lists },
 *   { store: await openStore('sqlite:/var/lib/mailgate/mailgate.db'), resolver },
 *   { clientWhitelists: [await WhitelistFile.clients('/etc/mailgate/whitelist_clients')], logger },
 * );
 * const d = await greylister.decide({ ip: '192.0.2.1', clientName: 'mail.example.com',
 *   helo: 'mail.example.com', sender: 'jo@example.com', recipient: 'sam@example.org' });
 * d.action  // 'DUNNO', 'PREPEND X-Greylist: ...', or the greylist action
 */
export class Greylister {
  private readonly settings: Readonly<GreylistSettings>;
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly cache: VerdictCache;
  private readonly spfMemo: SpfMemo;
  private readonly lists: readonly DnsxlList[];
  private readonly hostname: string;
  private readonly logger: GreylistLogger | undefined;
  private readonly clientWhitelists: readonly ClientWhitelistSource[];
  private readonly reputation: GreylistReputation | undefined;
  private readonly checkObserver: GreylisterOptions['checkObserver'];
  private readonly recipientWhitelists: readonly RecipientWhitelistSource[];

  constructor(
    settings: GreylistSettings,
    private readonly services: GreylistServices,
    options: GreylisterOptions = {},
  ) {
    checkSettings(settings);
    // Only address lists score a client; RHSBLs belong to the policy engine's sender checks.
    this.lists = settings.lists.filter((l) => l.kind === 'dnsbl' || l.kind === 'dnswl');
    validateDnsxlLists(this.lists);
    this.settings = Object.freeze({ ...settings, lists: this.lists });
    this.store = services.store;
    this.clock = services.clock ?? systemClock;
    this.cache = new VerdictCache(settings.cacheMs, settings.cacheEntries, this.clock);
    this.spfMemo = new SpfMemo(settings.cacheMs, settings.cacheEntries, this.clock);
    this.hostname = safeHostname(settings.hostname);
    this.logger = options.logger;
    this.clientWhitelists = options.clientWhitelists ?? [];
    this.reputation = options.reputation;
    this.checkObserver = options.checkObserver;
    this.recipientWhitelists = options.recipientWhitelists ?? [];
  }

  /**
   * Decide about one recipient of one delivery attempt. Rejects only on a programming error
   * (a client address that is not one: the MTA always gives one); DNS and store trouble become
   * decisions (`dns-tempfail`, `store-failure`).
   */
  async decide(request: GreylistRequest): Promise<GreylistDecision> {
    const ip = parseClientIp(request.ip);
    if (!ip) {
      throw new TypeError(`greylist: not a client IP address: ${shown(String(request.ip))}`);
    }
    const begun = this.checkObserver ? performance.now() : 0;
    const now = this.clock.now();
    const ctx: Context = {
      now,
      dnsDeadline: now + this.settings.dnsBudgetMs,
      ip,
      ipText: formatIp(ip),
      key: {
        client: clientKey(ip, this.settings.keyByNetwork),
        sender: normaliseAddress(request.sender ?? ''),
        recipient: normaliseAddress(request.recipient ?? ''),
      },
      request,
      scores: {},
      problems: [],
    };
    let verdict: Verdict;
    let failure: StoreFailure | undefined;
    try {
      verdict = await this.evaluate(ctx);
    } catch (err) {
      if (!(err instanceof StoreFailure)) throw err;
      failure = err;
      ctx.problems.push(shown(err.message));
      verdict = {
        verdict: this.settings.storeFailure === 'open' ? 'pass' : 'tempfail',
        reason: 'store-failure',
      };
    }
    if (!failure) this.countForReputation(ctx, verdict);
    const decision = this.compose(ctx, verdict);
    if (failure) {
      this.logger?.error(
        {
          err: failure.cause,
          operation: failure.operation,
          store: this.store.description,
          client: ctx.key.client,
          storeFailure: this.settings.storeFailure,
        },
        'greylist store failure',
      );
    }
    this.logger?.info(
      {
        verdict: decision.verdict,
        reason: decision.reason,
        client: ctx.key.client,
        ip: ctx.ipText,
        sender: ctx.key.sender,
        recipient: ctx.key.recipient,
        scores: decision.scores,
        delay: decision.delay,
        problems: decision.problems.length ? decision.problems : undefined,
        match: decision.match,
      },
      'greylist',
    );
    // A broken store would fail this write too; the failure is logged once, above.
    // The reply does not wait for the decision log: the store commits its lines in batches.
    if (this.settings.decisionLog && !failure) void this.writeDecisionLog(ctx, decision);
    this.checkObserver?.('greylist', decision.verdict, (performance.now() - begun) / 1000);
    return decision;
  }

  /** The verdict cache, for the daemon's statistics and for tests. */
  get verdictCache(): VerdictCache {
    return this.cache;
  }

  private async evaluate(ctx: Context): Promise<Verdict> {
    if (ALWAYS_OPEN.has(localPart(ctx.key.recipient))) {
      return { verdict: 'pass', reason: 'postmaster' };
    }

    for (const source of this.recipientWhitelists) {
      const list = await current(source);
      const hit = list.match(ctx.request.recipient ?? '');
      if (hit) {
        ctx.match = hit;
        return { verdict: 'pass', reason: 'whitelist-recipient' };
      }
    }
    if (await this.clientWhitelisted(ctx)) return { verdict: 'pass', reason: 'whitelist-client' };
    if (this.settings.keySpfPassByDomain) await this.keyBySpfDomain(ctx);
    const standing = await this.goodStanding(ctx);
    if (standing) {
      ctx.match = standing;
      return { verdict: 'pass', reason: 'reputation' };
    }
    const { key } = ctx;

    let known: Triplet | null;
    // The auto-whitelist counts a client's deliveries: a domain key is no client.
    if (this.settings.autoWhitelistAfter > 0 && !ctx.byDomain) {
      // The client's counter and the triplet in one read (one statement, one round trip).
      const { triplet, counter } = await this.db('lookup', (s) => s.lookup(key));
      ctx.counter = counter;
      if (counter && counter.count >= this.settings.autoWhitelistAfter) {
        await this.db('touchClient', (s) => s.touchClient(key.client, ctx.now));
        return { verdict: 'pass', reason: 'auto-whitelist' };
      }
      known = triplet;
    } else {
      known = await this.db('getTriplet', (s) => s.getTriplet(key));
    }
    if (known) return this.followKnown(ctx, known);
    return this.decideNew(ctx);
  }

  /** Client whitelists: by address, then by verified name (looked up only when some list needs it). */
  private async clientWhitelisted(ctx: Context): Promise<boolean> {
    const lists: ClientWhitelist[] = [];
    for (const source of this.clientWhitelists) lists.push(await current(source));
    for (const list of lists) {
      const hit = list.match(ctx.ip, undefined);
      if (hit) {
        ctx.match = hit;
        return true;
      }
    }
    if (!lists.some((l) => l.needsName)) return false;
    const name = await this.clientName(ctx);
    if (name.kind !== 'name') return false;
    for (const list of lists) {
      const hit = list.match(ctx.ip, name.name);
      if (hit) {
        ctx.match = hit;
        return true;
      }
    }
    return false;
  }

  /** A triplet the store knows. */
  private async followKnown(ctx: Context, triplet: Triplet): Promise<Verdict> {
    const { key, now } = ctx;
    if (triplet.state === 'passed') {
      // A passed triplet seen again soon needs no write: lastSeen only feeds expiry (days).
      if (now - triplet.lastSeen >= REFRESH_PASSED_MS) {
        await this.db('recordPass', (s) => s.recordPass(key, now));
      }
      await this.countClient(ctx);
      // The domain's triplet passed, not this host: its verdict is not cached.
      if (!ctx.byDomain) this.cache.set(ctx.ipText, 'good');
      return { verdict: 'pass', reason: 'known' };
    }
    const elapsed = now - triplet.firstSeen;
    const wait = this.settings.periodMs + triplet.failCount * this.settings.penaltyMs;
    const waited = elapsed > wait;
    if (waited || elapsed > this.settings.maxMs) {
      await this.db('recordPass', (s) => s.recordPass(key, now));
      await this.countClient(ctx);
      if (!ctx.byDomain) this.cache.set(ctx.ipText, 'good');
      return {
        verdict: 'pass',
        reason: waited ? 'waited' : 'max-wait',
        delay: Math.floor(elapsed / 1000),
        waited: true,
      };
    }
    // Attempts within a minute of the last are one attempt: two RCPTs of one message that
    // normalise to the same recipient (bob+news@, Bob@) must not charge the penalty twice.
    if (now - triplet.lastSeen >= SAME_ATTEMPT_MS) {
      // The store checks the minute again, in the same statement: another MX host may have
      // counted this very retry since the triplet was read.
      await this.db('recordEarlyRetry', (s) => s.recordEarlyRetry(key, now, now - SAME_ATTEMPT_MS));
    }
    return { verdict: 'greylist', reason: 'early-retry' };
  }

  /** Postgrey's auto-whitelist counter: one successful delivery, at most once a minute. */
  private async countClient(ctx: Context): Promise<void> {
    if (this.settings.autoWhitelistAfter <= 0 || ctx.byDomain) return;
    // Counted less than a minute ago: the store would not count it again; skip the write.
    const counter = ctx.counter;
    if (counter && ctx.now - counter.lastCounted < COUNT_EVERY_MS) return;
    await this.db('countClient', (s) =>
      s.countClient(ctx.key.client, ctx.now, ctx.now - COUNT_EVERY_MS),
    );
  }

  /** A triplet the store does not know: a cached verdict on the client, else scoring. */
  private async decideNew(ctx: Context): Promise<Verdict> {
    const cached = this.cache.get(ctx.ipText);
    if (cached) {
      const outcome: Verdict =
        cached === 'good'
          ? { verdict: 'pass', reason: 'cache-good' }
          : { verdict: 'greylist', reason: 'cache-bad' };
      return this.remember(ctx, outcome);
    }
    const scored = await this.score(ctx);
    if (scored === 'undecided') {
      return this.remember(ctx, { verdict: 'greylist', reason: 'dns-tempfail' });
    }
    this.cache.set(ctx.ipText, scored.verdict === 'pass' ? 'good' : 'bad');
    return this.remember(ctx, scored);
  }

  /**
   * Store a new triplet in the verdict's state. When another request or MX host stored it
   * first, its row decides: a greylisted row is not penalised as an early retry (the attempts
   * were concurrent), a passed row records this pass too.
   */
  private async remember(ctx: Context, outcome: Verdict): Promise<Verdict> {
    const state: TripletState = outcome.verdict === 'pass' ? 'passed' : 'greylisted';
    const { triplet, created } = await this.db('firstAttempt', (s) =>
      s.firstAttempt(ctx.key, state, ctx.now),
    );
    if (created || triplet.state === state) {
      if (!created && state === 'passed') {
        await this.db('recordPass', (s) => s.recordPass(ctx.key, ctx.now));
      }
      return outcome;
    }
    ctx.problems.push(`triplet stored meanwhile as ${triplet.state}`);
    if (triplet.state === 'passed') {
      await this.db('recordPass', (s) => s.recordPass(ctx.key, ctx.now));
      return { verdict: 'pass', reason: 'known' };
    }
    return { verdict: 'greylist', reason: 'known' };
  }

  /** The client's verified name: from the MTA when it gave one (or said none), else by PTR. */
  private clientName(ctx: Context): Promise<ClientName> {
    if (ctx.name) return ctx.name;
    const given = ctx.request.clientName;
    if (given !== undefined) {
      const name = given.trim();
      ctx.name = Promise.resolve(
        name === '' || name.toLowerCase() === 'unknown'
          ? { kind: 'none' }
          : { kind: 'name', name: name.slice(0, MAX_LOG_TEXT) },
      );
      return ctx.name;
    }
    const shared = ctx.request.lookups?.ptr;
    const lookup = shared
      ? shared()
      : checkPtr(
          { ip: ctx.ipText },
          {
            resolver: this.services.resolver,
            clock: this.clock,
            limits: { timeBudgetMs: this.dnsTimeLeft(ctx) },
          },
        );
    ctx.name = lookup.then((ptr): ClientName => {
      if (ptr.result === 'verified' && ptr.name) return { kind: 'name', name: ptr.name };
      if (ptr.result === 'tempfail') {
        ctx.problems.push(shown(`ptr: ${ptr.problem ?? 'lookup failed'}`));
        return { kind: 'failed' };
      }
      return { kind: 'none' };
    });
    return ctx.name;
  }

  /** bley's scoring of a new triplet; `undecided` when failed DNS lookups could change it. */
  private async score(ctx: Context): Promise<ScoreOutcome | 'undecided'> {
    const { settings } = this;
    const [lists, name] = await Promise.all([this.dnsLists(ctx), this.clientName(ctx)]);
    const facts: ScoreFacts = {
      ...this.listScores(ctx, lists),
      ...this.nameScores(ctx, name),
      spf: null,
      sEqR: ctx.key.sender !== '' && ctx.key.sender === ctx.key.recipient ? 1 : 0,
    };
    ctx.scores.s_eq_r = facts.sEqR;
    const thresholds = {
      dnswl: settings.dnswlThreshold,
      dnsbl: settings.dnsblThreshold,
      rfc: settings.rfcThreshold,
    };
    if (settings.spf && spfCouldMatter(facts, thresholds)) {
      facts.spf = await this.spfScore(ctx);
    }
    return judge(facts, thresholds);
  }

  private listScores(
    ctx: Context,
    result: DnsxlResult | null,
  ): Pick<ScoreFacts, 'dnswl' | 'dnsbl'> {
    if (!result) return { dnswl: exactly(0), dnsbl: exactly(0) };
    let failedWl = 0;
    let failedBl = 0;
    for (const list of result.lists) {
      if (list.result === 'tempfail') {
        if (list.kind === 'dnswl') failedWl += list.weight;
        else failedBl += list.weight;
        ctx.problems.push(shown(`dnsxl ${list.zone}: ${list.detail ?? 'tempfail'}`));
      } else if (list.result === 'unusable') {
        ctx.problems.push(shown(`dnsxl ${list.zone}: unusable (${list.codes.join(', ')})`));
      }
    }
    ctx.scores.dnswl = result.whitelistScore;
    ctx.scores.dnsbl = result.score;
    return {
      dnswl: { min: result.whitelistScore, max: result.whitelistScore + failedWl },
      dnsbl: { min: result.score, max: result.score + failedBl },
    };
  }

  /**
   * HELO and dyn scores. Without a verified name the HELO score is 2 (bley's rule) and dyn is 0:
   * "no name" is counted once, by HELO, not twice. When the lookup failed, the scores are known
   * only as ranges: HELO from its best case (the name is the HELO) to its worst (no name), dyn
   * 0 to 1.
   */
  private nameScores(ctx: Context, name: ClientName): Pick<ScoreFacts, 'helo' | 'dyn'> {
    const helo = ctx.request.helo;
    if (name.kind === 'failed') {
      const heloRange: ScoreRange = {
        min: bleyScore(helo, ctx.ip, helo ?? null),
        max: bleyScore(helo, ctx.ip, null),
      };
      if (heloRange.min === heloRange.max) ctx.scores.helo = heloRange.min;
      return { helo: heloRange, dyn: { min: 0, max: 1 } };
    }
    const verified = name.kind === 'name' ? name.name : null;
    const heloScore = bleyScore(helo, ctx.ip, verified);
    const dyn = verified !== null && looksDynamic(verified, ctx.ip).dynamic ? 1 : 0;
    ctx.scores.helo = heloScore;
    ctx.scores.dyn = dyn;
    return { helo: exactly(heloScore), dyn: exactly(dyn) };
  }

  /**
   * The subject in good standing that lets this request skip greylisting: the client's network,
   * or the sender's domain when its SPF passes (a domain alone is what a forger claims).
   */
  private async goodStanding(ctx: Context): Promise<string | null> {
    const ask = this.reputation?.goodStanding;
    if (!ask) return null;
    const [domain, network] = this.subjects(ctx);
    const subjects = network ? [network] : [];
    if (domain && ctx.key.sender !== '') {
      const spf = await this.spf(ctx);
      if (spf.result === 'pass' && spf.identity === 'mailfrom') subjects.push(domain);
    }
    return subjects.length ? ask.call(this.reputation, subjects) : null;
  }

  /** The reputation subjects of the request: its sender domain (if any) and client network. */
  private subjects(ctx: Context): [string | null, string | null] {
    const domain = domainPart(ctx.key.sender);
    return [domain ? domainSubject(domain) : null, networkSubject(ctx.ipText)];
  }

  /** Counts a wait that came back, and each new triplet greylisted, for reputation. */
  private countForReputation(ctx: Context, verdict: Verdict): void {
    if (!this.reputation) return;
    let event: 'greylist:pass' | 'greylist:refused' | null = null;
    if (
      verdict.verdict === 'pass' &&
      (verdict.reason === 'waited' || verdict.reason === 'max-wait')
    ) {
      event = 'greylist:pass';
    } else if (verdict.verdict === 'greylist' && NEW_TRIPLET_REASONS.has(verdict.reason)) {
      event = 'greylist:refused';
    }
    if (!event) return;
    const subjects = this.subjects(ctx).filter((s): s is string => s !== null);
    this.reputation.record(subjects, event);
  }

  /**
   * A sender whose SPF passes is who it says it is, from whichever host of its pool: the triplet
   * is keyed by its domain, so a retry from another address finds the first attempt. The null
   * sender is left alone: its SPF speaks for the HELO name, not for a sending domain.
   */
  private async keyBySpfDomain(ctx: Context): Promise<void> {
    if (ctx.key.sender === '') return;
    const spf = await this.spf(ctx);
    if (spf.result !== 'pass' || spf.identity !== 'mailfrom' || spf.domain === '') return;
    // A record that lets (nearly) everyone pass vouches for nobody: `+all`, `ip4:0.0.0.0/1`.
    if (spf.mechanism === undefined || broadMechanism(spf.mechanism)) return;
    // A host on a block list is judged by its own address, whatever domain it sends for.
    if (this.lists.some((l) => l.kind === 'dnsbl')) {
      const lists = await this.dnsLists(ctx);
      const blocked = lists?.lists.some(
        (l) => l.kind === 'dnsbl' && (l.result === 'listed' || l.result === 'tempfail'),
      );
      if (blocked) return;
    }
    ctx.key = { ...ctx.key, client: `spf:${spf.domain.toLowerCase()}` };
    ctx.byDomain = true;
  }

  /** The DNS lists' verdict on the client, asked once per decision. */
  private dnsLists(ctx: Context): Promise<DnsxlResult | null> {
    const first = ctx.lists === undefined;
    const begun = first && this.checkObserver ? performance.now() : 0;
    const lists = this.askDnsLists(ctx);
    const observe = this.checkObserver;
    if (first && observe) {
      // Heard on a branch of its own: the decision awaits the lists with no step added.
      lists.then(
        (result) => {
          if (result) observe('dnsxl', result.result, (performance.now() - begun) / 1000);
        },
        () => {},
      );
    }
    return lists;
  }

  private askDnsLists(ctx: Context): Promise<DnsxlResult | null> {
    ctx.lists ??= this.lists.length
      ? checkDnsxl(
          { ip: ctx.ipText },
          {
            resolver: this.services.resolver,
            clock: this.clock,
            lists: this.lists,
            threshold: this.settings.dnsblThreshold,
            timeBudgetMs: this.dnsTimeLeft(ctx),
          },
        )
      : Promise.resolve(null);
    return ctx.lists;
  }

  /** The SPF check for the request: the caller's, else our own, once per decision. */
  private spf(ctx: Context): Promise<SpfResult> {
    if (ctx.spf) return ctx.spf;
    const shared = ctx.request.lookups?.spf;
    if (shared) {
      ctx.spf = shared();
      return ctx.spf;
    }
    let sender = (ctx.request.sender ?? '').trim();
    if (sender.startsWith('<') && sender.endsWith('>')) sender = sender.slice(1, -1).trim();
    const input: { ip: string; sender: string; helo?: string } = { ip: ctx.ipText, sender };
    if (ctx.request.helo !== undefined) input.helo = ctx.request.helo;
    // Keys are bounded: sender and HELO come from the client (a policy line may be 8 KB).
    const key = `${ctx.ipText} ${sender} ${input.helo ?? ''}`;
    const known = key.length <= MAX_MEMO_KEY ? this.spfMemo.get(key) : undefined;
    if (known) {
      ctx.spf = Promise.resolve(known);
      return ctx.spf;
    }
    ctx.spf = checkSpf(input, {
      resolver: this.services.resolver,
      clock: this.clock,
      limits: { timeBudgetMs: this.dnsTimeLeft(ctx) },
    }).then((result) => (key.length <= MAX_MEMO_KEY ? this.spfMemo.set(key, result) : result));
    return ctx.spf;
  }

  /** SPF: 1 for fail or softfail; a temperror leaves it open (0 to 1). */
  private async spfScore(ctx: Context): Promise<ScoreRange> {
    const spf = await this.spf(ctx);
    if (spf.result === 'temperror') {
      ctx.problems.push(shown(`spf: temperror (${spf.problem ?? 'DNS failure'})`));
      return { min: 0, max: 1 };
    }
    const score = spf.result === 'fail' || spf.result === 'softfail' ? 1 : 0;
    ctx.scores.spf = score;
    return exactly(score);
  }

  /**
   * What is left of the decision's DNS time, for the next check. A check started after the
   * deadline still gets a millisecond: it then fails at once as a timeout, which the scoring
   * counts as any other DNS failure.
   */
  private dnsTimeLeft(ctx: Context): number {
    return Math.max(1, Math.ceil(ctx.dnsDeadline - this.clock.now()));
  }

  /** Runs one store operation; any failure becomes a StoreFailure. */
  private async db<T>(operation: string, run: (store: Store) => Promise<T>): Promise<T> {
    try {
      return await run(this.store);
    } catch (err) {
      throw new StoreFailure(operation, err);
    }
  }

  private compose(ctx: Context, v: Verdict): GreylistDecision {
    const decision: GreylistDecision = {
      verdict: v.verdict,
      reason: v.reason,
      key: { ...ctx.key },
      scores: ctx.scores,
      problems: ctx.problems,
    };
    if (v.delay !== undefined) decision.delay = v.delay;
    if (ctx.match !== undefined) decision.match = ctx.match;
    if (v.verdict === 'pass' && v.waited && this.settings.header) {
      const line = greylistHeader(v.delay ?? 0, this.hostname, this.settings.version, ctx.now);
      const colon = line.indexOf(':');
      decision.header = { name: line.slice(0, colon), value: line.slice(colon + 1).trimStart() };
    }
    return decision;
  }

  private async writeDecisionLog(ctx: Context, decision: GreylistDecision): Promise<void> {
    const line: Decision = {
      time: ctx.now,
      host: this.hostname,
      // A triplet keyed by its SPF domain still came from an address, which reports count.
      client: ctx.key.client.startsWith('spf:') ? ctx.ipText : ctx.key.client,
      sender: ctx.key.sender,
      recipient: ctx.key.recipient,
      action: decision.verdict,
      reason: decision.reason,
    };
    const name = await clientNameForLog(ctx);
    if (name !== undefined) line.clientName = shown(name);
    if (ctx.request.helo !== undefined) line.helo = shown(ctx.request.helo);
    if (decision.delay !== undefined) line.delay = decision.delay;
    const scores = Object.entries(decision.scores).filter(
      (e): e is [string, number] => typeof e[1] === 'number',
    );
    if (scores.length) line.scores = Object.fromEntries(scores);
    const tags = ctx.request.logTags?.slice(0, 4).map(shown);
    if (tags?.length) line.tags = tags;
    try {
      await this.store.logDecision(line);
    } catch (err) {
      this.logger?.warn(
        { err, client: ctx.key.client, store: this.store.description },
        'greylist decision log write failed',
      );
    }
  }
}

/** The client's name for the decision log: as the MTA gave it, or as looked up, when known. */
async function clientNameForLog(ctx: Context): Promise<string | undefined> {
  const given = ctx.request.clientName?.trim();
  if (given !== undefined)
    return given === '' || given.toLowerCase() === 'unknown' ? undefined : given;
  const name = ctx.name ? await ctx.name : undefined;
  return name?.kind === 'name' ? name.name : undefined;
}

/** A whitelist's current content: a file is first looked at (at most once a second). */
async function current<L>(source: L | WhitelistFile<L>): Promise<L> {
  if (isFile(source)) {
    await source.refresh();
    return source.list;
  }
  return source;
}

function isFile<L>(source: L | WhitelistFile<L>): source is WhitelistFile<L> {
  return (
    typeof source === 'object' &&
    source !== null &&
    'refresh' in source &&
    typeof (source as { refresh?: unknown }).refresh === 'function'
  );
}
