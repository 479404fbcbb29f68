/**
 * Call-back verification and DSNs as the engine uses them: each sender is asked at most once per
 * cache period (the outcome is kept in the store, shared by MX hosts on one database), each
 * sender domain at most `rate` times per window, so forged senders never turn mailgate into a
 * source of backscatter. The network side is src/notify's.
 */
import { systemClock } from '../dns/clock.js';
import type { Clock, Resolver } from '../dns/types.js';
import {
  type CallbackResult,
  callbackVerify,
  composeDsn,
  type DsnTemplates,
  type RemoteSettings,
  type SmtpClient,
  sendDsn,
} from '../notify/index.js';
import type { CallbackRecord, Store } from '../store/types.js';
import { logValue } from '../text/index.js';
import type { DsnFacts, PolicyLogger, SenderVerifier, VerificationOutcome } from './services.js';
import type { CallbackSettings } from './settings.js';

export interface VerifierServices {
  resolver: Resolver;
  smtp: SmtpClient;
  store: Store;
  templates: DsnTemplates;
  logger: PolicyLogger;
  clock?: Clock;
}

export interface VerifierSettings extends CallbackSettings {
  /** The instance recorded with each outcome. */
  hostname: string;
  /** Names and addresses that are ours: an MX that is one of them is a fraud, never called. */
  ourNames: readonly string[];
  ourAddresses: readonly string[];
  /** A store failure lets the message through (`open`) or defers it (`tempfail`). */
  storeFailure: 'open' | 'tempfail';
  /**
   * Loopback addresses that may still be called (a test rig's MX on 127.0.0.2); never our own
   * addresses. The daemon sets none.
   */
  allowAddresses?: readonly string[];
}

/** Outcomes of a call-back that say the address cannot receive mail. */
const UNDELIVERABLE = new Set(['rejected', 'null-mx', 'no-domain', 'no-host', 'fraud', 'invalid']);

/**
 * @example
 * const verifier = new CachedVerifier(settings, { resolver, smtp: createSmtpClient(), store, templates, logger });
 * (await verifier.callback('jo@example.com')).result  // 'accepted' | 'rejected' | 'tempfail'
 */
export class CachedVerifier implements SenderVerifier {
  readonly #settings: VerifierSettings;
  readonly #services: VerifierServices;

  constructor(settings: VerifierSettings, services: VerifierServices) {
    this.#settings = settings;
    this.#services = services;
  }

  async callback(sender: string): Promise<VerificationOutcome> {
    return this.#verify(sender, 'CBV', async () => {
      const r = await callbackVerify(sender, this.#notify, this.#remote);
      return fromCallback(r);
    });
  }

  async dsn(sender: string, facts: DsnFacts): Promise<VerificationOutcome> {
    return this.#verify(sender, 'DSN', async () => {
      const s = this.#settings;
      const now = this.#now();
      const message = composeDsn({
        template: this.#services.templates[facts.template],
        values: {
          rcpt: facts.recipients,
          subject: facts.subject,
          spf_result: facts.receivedSpf,
          perm_error: facts.permError,
          result: facts.spfResult,
          sender,
        },
        from: s.postmaster,
        to: sender,
        receiver: s.hostname,
        date: new Date(now),
      });
      const r = await sendDsn(message, sender, this.#notify, this.#remote);
      const reply = r.reply ? `${r.reply.code} ${r.reply.text}` : r.detail;
      if (r.outcome === 'delivered') return { result: 'accepted', reply, detail: 'dsn-delivered' };
      if (r.outcome === 'rejected') {
        return { result: 'rejected', reply, detail: r.cause ?? 'dsn-rejected' };
      }
      return { result: 'tempfail', reply, detail: r.cause ?? 'tempfail' };
    });
  }

  /** Who we are and how long to try, for a call-back and a DSN alike. */
  get #remote(): RemoteSettings {
    const s = this.#settings;
    return {
      helo: s.heloName,
      ourNames: s.ourNames,
      ourAddresses: s.ourAddresses,
      port: s.port,
      // One budget for the whole MX list; a silent first host may take half of it, so that a
      // backup MX is still asked.
      timeoutMs: s.timeoutMs,
      hostTimeoutMs: Math.max(1000, Math.floor(s.timeoutMs / 2)),
      ...(s.allowAddresses ? { allowAddresses: s.allowAddresses } : {}),
    };
  }

  get #notify() {
    const { resolver, smtp, clock } = this.#services;
    return { resolver, smtp, ...(clock ? { clock } : {}) };
  }

  #now(): number {
    return (this.#services.clock ?? systemClock).now();
  }

  /** The cache, then the rate limit, then the remote side; permanent outcomes are remembered. */
  async #verify(
    sender: string,
    kind: 'CBV' | 'DSN',
    ask: () => Promise<Omit<VerificationOutcome, 'cached'>>,
  ): Promise<VerificationOutcome> {
    const { store, logger } = this.#services;
    const s = this.#settings;
    const key = sender.toLowerCase();
    const now = this.#now();
    let cached: CallbackRecord | null;
    try {
      cached = await store.getCallback(key, now - s.cacheMs);
    } catch (err) {
      return this.#storeFailed(err, kind, sender);
    }
    if (cached) {
      const accepted = cached.result === 'accepted' || cached.result === 'dsn-accepted';
      return {
        result: accepted ? 'accepted' : 'rejected',
        reply: cached.reply,
        cached: true,
        detail: cached.result,
      };
    }
    const domain = key.slice(key.lastIndexOf('@') + 1);
    try {
      const rate = await store.takeRate(`cbv:${domain}`, now, s.rate.windowMs, s.rate.limit);
      if (!rate.allowed) {
        logger.warn({ domain: logValue(domain, 253), count: rate.count }, 'cbv-rate-limited');
        return {
          result: 'tempfail',
          reply: `too many verifications for ${logValue(domain, 253)}, try again later`,
          cached: false,
          detail: 'rate-limited',
        };
      }
    } catch (err) {
      return this.#storeFailed(err, kind, sender);
    }
    const outcome = await ask();
    if (outcome.result !== 'tempfail') {
      const record: CallbackRecord = {
        sender: key,
        result:
          kind === 'DSN'
            ? outcome.result === 'accepted'
              ? 'dsn-accepted'
              : 'dsn-rejected'
            : outcome.result,
        reply: outcome.reply,
        time: now,
        host: s.hostname,
      };
      await store.putCallback(record).catch((err: unknown) => {
        logger.warn({ err, sender: logValue(sender, 254) }, 'cbv-cache-write-failed');
      });
    }
    return { ...outcome, cached: false };
  }

  #storeFailed(err: unknown, kind: 'CBV' | 'DSN', sender: string): VerificationOutcome {
    const open = this.#settings.storeFailure === 'open';
    this.#services.logger.error(
      { err, kind, sender: logValue(sender, 254), storeFailure: this.#settings.storeFailure },
      'cbv-store-failure',
    );
    // Without the cache and the rate limit a call could be made for every forged message:
    // never call out then; `open` lets the message through unverified.
    return open
      ? {
          result: 'accepted',
          reply: 'not verified: store unavailable',
          cached: false,
          detail: 'store-failure',
        }
      : {
          result: 'tempfail',
          reply: 'temporary local problem, try again later',
          cached: false,
          detail: 'store-failure',
        };
  }
}

function fromCallback(r: CallbackResult): Omit<VerificationOutcome, 'cached'> {
  const reply = r.reply ? `${r.reply.code} ${r.reply.text}` : r.detail;
  if (r.outcome === 'accepted') return { result: 'accepted', reply, detail: 'accepted' };
  if (UNDELIVERABLE.has(r.outcome)) return { result: 'rejected', reply, detail: r.outcome };
  return { result: 'tempfail', reply, detail: r.outcome };
}
