/**
 * The facts of one SMTP session as the engine learns them, and the checks over them, each run
 * at most once and only when a stage (or the greylister, or `mailgate check`) first asks: a
 * sender whose SPF passes never costs a HELO address lookup. A new HELO forgets what depended
 * on the old one; a new MAIL FROM forgets the transaction.
 */
import { systemClock } from '../checks/budget.js';
import { checkCsa } from '../checks/csa/index.js';
import type { CsaResult } from '../checks/csa/types.js';
import { checkHelo } from '../checks/helo/index.js';
import type { HeloOptions, HeloResult } from '../checks/helo/types.js';
import { checkPtr } from '../checks/ptr/index.js';
import type { PtrResult } from '../checks/ptr/types.js';
import { checkId } from '../checks/registry/index.js';
import type { RegistryResult, RegistrySettings } from '../checks/registry/types.js';
import { checkSpf } from '../checks/spf/index.js';
import type { SpfResult } from '../checks/spf/types.js';
import type { Clock, Resolver } from '../dns/types.js';
import { type Classification, type ClassifyNetworks, classifyConnection } from './classify.js';

/** The checks that read the HELO name (besides the trusted-forwarder ones). */
const HELO_MEMOS = new Set(['helo', 'helo-full', 'csa', 'spf', 'helo-spf', 'registry']);

/** What the MTA tells about the client when it connects. */
export interface ClientFacts {
  /** The client's address (IPv4 or IPv6 text). */
  ip: string;
  port?: number;
  /** The client's name as the MTA reports it (not trusted: mailgate verifies the PTR itself). */
  reportedName?: string;
  /** The SMTP AUTH login, when the client authenticated. */
  login?: string;
}

/** What the checks need to know about us. */
export interface FactSettings {
  /** Our host name: the receiver in SPF results. */
  hostname: string;
  networks: ClassifyNetworks;
  /** Our names and addresses (hello_blacklist). */
  ourNames: string[];
  ourAddresses: string[];
  spf: { bestGuess: boolean; lax: boolean; fallbackZone?: string };
  /** Time allowed for each check's DNS work. */
  checkBudgetMs: number;
}

export interface FactServices {
  resolver: Resolver;
  clock?: Clock;
  /** Told each check's result word and how long it took (the daemon's metrics). */
  checkObserver?: CheckObserver;
}

/** Hears of every check a session runs: the check's name, its result word, seconds taken. */
export type CheckObserver = (check: string, result: string, seconds: number) => void;

/** A header field as it came in with the message. */
export interface ReceivedHeader {
  name: string;
  value: string;
}

/**
 * One session's facts. The doors set what the MTA says; the stages read the checks.
 *
 * @example
 * const facts = new SessionFacts({ ip: '192.0.2.1' }, settings, { resolver });
 * facts.setHelo('mail.example.com');
 * facts.startMail('jo@example.com');
 * (await facts.spf()).result  // 'pass'
 */
export class SessionFacts {
  readonly client: ClientFacts;
  readonly settings: FactSettings;
  readonly services: FactServices;
  /** The HELO/EHLO name, once given. */
  helo: string | undefined;
  /** The HELO/EHLO before the last one, for the `changed` rule. */
  previousHelo: string | undefined;
  /** MAIL FROM without angle brackets (empty for the null sender); undefined before MAIL. */
  sender: string | undefined;
  esmtp: string[] = [];
  recipients: string[] = [];
  headers: ReceivedHeader[] = [];
  /** The MTA's queue id, when it said. */
  queueId: string | undefined;
  readonly #memo = new Map<string, Promise<unknown>>();

  constructor(client: ClientFacts, settings: FactSettings, services: FactServices) {
    this.client = client;
    this.settings = settings;
    this.services = services;
  }

  /** The client authenticated (the MTA says so with MAIL FROM): it is INTERNAL from now on. */
  setLogin(login: string): void {
    if (this.client.login === login) return;
    this.client.login = login;
    for (const key of ['class', 'helo', 'helo-full']) this.#memo.delete(key);
  }

  /** A new HELO/EHLO: the checks that read it are run again when next asked. */
  setHelo(name: string): void {
    if (this.helo !== undefined && this.helo !== name) this.previousHelo = this.helo;
    this.helo = name;
    for (const key of [...this.#memo.keys()]) {
      if (HELO_MEMOS.has(key) || key.startsWith('forwarder:')) this.#memo.delete(key);
    }
  }

  /** A new transaction (MAIL FROM): the sender's checks and the message are new. */
  startMail(sender: string, esmtp: string[] = []): void {
    this.sender = stripBrackets(sender);
    this.esmtp = esmtp;
    this.recipients = [];
    this.headers = [];
    this.#memo.delete('spf');
    this.#memo.delete('registry');
  }

  /** The transaction ended (end of message or abort); connection facts stay. */
  endMessage(): void {
    this.sender = undefined;
    this.esmtp = [];
    this.recipients = [];
    this.headers = [];
    this.#memo.delete('spf');
    this.#memo.delete('registry');
  }

  /** The client's reverse DNS, verified (forward-confirmed). */
  ptr(): Promise<PtrResult> {
    return this.#checked('ptr', 'ptr', () =>
      checkPtr(
        { ip: this.client.ip },
        { resolver: this.services.resolver, clock: this.#clock, limits: this.#limits },
      ),
    );
  }

  /**
   * INTERNAL or TRUSTED as far as the address and SMTP AUTH tell, else EXTERNAL (reason
   * `ptr-not-checked`): what the policy decides on, known without a DNS lookup.
   */
  addressClass(): Classification {
    return classifyConnection(
      { ip: this.client.ip, authenticated: this.client.login !== undefined },
      this.settings.networks,
    );
  }

  /** Whether the client is ours (INTERNAL) or a trusted relay (TRUSTED): no policy for it. */
  get ours(): boolean {
    const c = this.addressClass().class;
    return c === 'INTERNAL' || c === 'TRUSTED';
  }

  /** INTERNAL, TRUSTED, DYNAMIC or EXTERNAL, with the reasons (looks the PTR up). */
  classification(): Promise<Classification> {
    return this.#once('class', async () => {
      // Our own and trusted clients are known by address: no PTR lookup for them.
      const quick = this.addressClass();
      if (quick.class === 'INTERNAL' || quick.class === 'TRUSTED') return quick;
      const ptr = await this.ptr();
      return classifyConnection(
        {
          ip: this.client.ip,
          ptr: {
            verified: ptr.result === 'verified',
            dynamic: ptr.dynamic,
            tempfail: ptr.result === 'tempfail',
            ...(ptr.name !== undefined ? { name: ptr.name } : {}),
          },
        },
        this.settings.networks,
      );
    });
  }

  /** The HELO's form and the rules that need no DNS (numeric, our own name, syntax). */
  heloForm(): Promise<HeloResult> {
    return this.#checked('helo', 'helo', async () =>
      checkHelo(await this.#heloInput(), {
        resolver: this.services.resolver,
        clock: this.#clock,
        limits: this.#limits,
        options: this.#heloOptions({ resolves: false, matches: false }),
      }),
    );
  }

  /** The whole HELO check, with its DNS rules (does the name lead back to the client?). */
  heloFull(): Promise<HeloResult> {
    return this.#checked('helo-full', 'helo', async () =>
      checkHelo(
        { ...(await this.#heloInput()), ptrName: (await this.ptr()).name ?? null },
        {
          resolver: this.services.resolver,
          clock: this.#clock,
          limits: this.#limits,
          options: this.#heloOptions({}),
        },
      ),
    );
  }

  /** CSA for the HELO name. */
  csa(): Promise<CsaResult> {
    return this.#checked('csa', 'csa', () =>
      checkCsa(
        { ip: this.client.ip, helo: this.helo ?? '' },
        { resolver: this.services.resolver, clock: this.#clock, limits: this.#limits },
      ),
    );
  }

  /** SPF for MAIL FROM (or postmaster@HELO for the null sender), with best guess and lax. */
  spf(): Promise<SpfResult> {
    return this.#checked('spf', 'spf', () => {
      const { spf, hostname } = this.settings;
      return checkSpf(
        { ip: this.client.ip, sender: this.sender ?? '', helo: this.helo ?? '' },
        {
          resolver: this.services.resolver,
          clock: this.#clock,
          limits: this.#limits,
          receiver: hostname,
          bestGuess: spf.bestGuess,
          lax: spf.lax,
          ...(spf.fallbackZone !== undefined ? { fallbackZone: spf.fallbackZone } : {}),
        },
      );
    });
  }

  /** The sender-registry ID check of the HELO name, with the sender known so far. */
  registry(settings: RegistrySettings, timeBudgetMs: number): Promise<RegistryResult> {
    return this.#checked(
      'registry',
      'registry',
      () =>
        checkId(
          {
            ip: this.client.ip,
            helo: this.helo ?? '',
            ...(this.sender !== undefined ? { sender: this.sender } : {}),
            recipients: this.recipients,
          },
          settings,
          { resolver: this.services.resolver, clock: this.#clock, limits: { timeBudgetMs } },
        ),
      // The registry's result word is its reason (`authenticated`, `not-authorized`, ...).
      (result) => result.reason,
    );
  }

  /** SPF for the HELO identity. */
  heloSpf(): Promise<SpfResult> {
    return this.#checked('helo-spf', 'spf', () =>
      checkSpf(
        { ip: this.client.ip, sender: '', helo: this.helo ?? '', identity: 'helo' },
        {
          resolver: this.services.resolver,
          clock: this.#clock,
          limits: this.#limits,
          receiver: this.settings.hostname,
        },
      ),
    );
  }

  /** SPF for `postmaster@<forwarder>` from this client (the trusted-forwarder test). */
  forwarderSpf(forwarder: string): Promise<SpfResult> {
    return this.#checked(`forwarder:${forwarder}`, 'spf', () =>
      checkSpf(
        { ip: this.client.ip, sender: `postmaster@${forwarder}`, helo: this.helo ?? '' },
        {
          resolver: this.services.resolver,
          clock: this.#clock,
          limits: this.#limits,
          receiver: this.settings.hostname,
        },
      ),
    );
  }

  /** The sender's domain, lower case; empty for the null sender or an address without one. */
  get senderDomain(): string {
    const sender = this.sender ?? '';
    const at = sender.lastIndexOf('@');
    return at < 0 ? '' : sender.slice(at + 1).toLowerCase();
  }

  /** The sender's local part, lower case. */
  get senderLocalPart(): string {
    const sender = this.sender ?? '';
    const at = sender.lastIndexOf('@');
    return (at < 0 ? sender : sender.slice(0, at)).toLowerCase();
  }

  get #clock(): Clock {
    return this.services.clock ?? systemClock;
  }

  get #limits(): { timeBudgetMs: number } {
    return { timeBudgetMs: this.settings.checkBudgetMs };
  }

  async #heloInput() {
    const authenticated = this.client.login !== undefined;
    const internal = this.addressClass().class === 'INTERNAL';
    return {
      ip: this.client.ip,
      helo: this.helo ?? null,
      previousHelo: this.previousHelo ?? null,
      internal,
      authenticated,
    };
  }

  #heloOptions(rules: HeloOptions['rules']): HeloOptions {
    return {
      rules: rules ?? {},
      ourNames: this.settings.ourNames,
      ourAddresses: this.settings.ourAddresses,
    };
  }

  #once<T>(key: string, run: () => Promise<T>): Promise<T> {
    const known = this.#memo.get(key);
    if (known) return known as Promise<T>;
    const started = run();
    this.#memo.set(key, started);
    return started;
  }

  /**
   * `#once` for a check, whose result word the observer (the daemon's metrics) hears with the
   * time it took, on a branch of its own: the stage awaits the check with no step added.
   */
  #checked<T extends object>(
    key: string,
    check: string,
    run: () => Promise<T>,
    word: (result: T) => unknown = (result) => (result as { result?: unknown }).result,
  ): Promise<T> {
    const observer = this.services.checkObserver;
    if (!observer) return this.#once(key, run);
    return this.#once(key, () => {
      const begun = performance.now();
      const started = run();
      started.then(
        (result) => {
          const said = word(result);
          observer(
            check,
            typeof said === 'string' ? said : 'other',
            (performance.now() - begun) / 1000,
          );
        },
        () => {},
      );
      return started;
    });
  }
}

/** `<a@b>` → `a@b`; the MTA may or may not keep the brackets. */
export function stripBrackets(address: string): string {
  const t = address.trim();
  return t.startsWith('<') && t.endsWith('>') ? t.slice(1, -1).trim() : t;
}
