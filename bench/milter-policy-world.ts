/**
 * The milter SPF-policy benchmark's world: a DNS zone (SPF records, MX and A hosts, PTR records
 * and their forward names) and a fixed, seeded list of SMTP transactions whose senders' SPF gives
 * one of four results, each meant to end one way under the policy both milters are given:
 *
 *   pass      MAIL FROM at one of 40 domains s0…s39.bench.example, from a client its record
 *             authorizes. Record shapes by domain (j % 4): ip4 lists; an include of a shared
 *             provider record; `mx` (two MX hosts); `a:` of an outbound host. Every record ends
 *             in `-all`. Clients 192.0.2.1–200, verified non-dynamic PTR, HELO = that name.
 *                                                                        → accepted
 *   fail      the same domains forged from 203.0.113.1–200 (half with a verified dynamic-looking
 *             PTR, half with none), HELO a name that does not resolve   → rejected at MAIL FROM
 *   softfail  softfail-ok.bench.example (`include:` of the provider, `~all`) from clients its
 *             record does not list, 198.51.100.101–200, verified PTR; the domain is configured
 *             to have its softfail accepted                             → accepted
 *   none      20 domains n0…n19.bench.example that publish no SPF (an A, an MX, other TXT), from
 *             198.51.100.1–100 whose PTR is verified and not dynamic (`mail<N>.relay<K>…`);
 *             the HELO does not resolve and the domains' A and MX are far from the clients, so a
 *             best guess (`a/24 mx/24 ptr`) and a HELO check find nothing and the verified PTR
 *             is what lets them in (mailgate's third strike; pyspf-milter accepts none as such)
 *                                                                        → accepted
 *
 * in the proportions of MIX, shuffled by the seeded PRNG: the same transactions in the same order
 * on every run, for every server.
 *
 * @example
 * const { zone, cases } = buildMilterPolicyWorld();
 * cases[0]  // { kind: 'pass', ip: '192.0.2.17', sender: 'u3@s5.bench.example', ... }
 */
import type { ZoneData } from '../test/support/dns-server.js';
import { prng } from './common.js';

const SUFFIX = 'bench.example';
/** The domain whose softfail both milters are configured to accept. */
export const SOFTFAIL_OK_DOMAIN = `softfail-ok.${SUFFIX}`;
/** The receiving host: mailgate's `hostname`, pyspf-milter's Authserv_Id, the `j` macro. */
export const RECEIVER = `mx.${SUFFIX}`;
export const CASE_COUNT = 1000;
const PASS_DOMAINS = 40;
const NONE_DOMAINS = 20;

export const KINDS = ['pass', 'fail', 'softfail', 'none'] as const;
export type CaseKind = (typeof KINDS)[number];

/** Share of each kind in the workload. */
export const MIX: Readonly<Record<CaseKind, number>> = {
  pass: 0.5,
  fail: 0.2,
  softfail: 0.15,
  none: 0.15,
};

/** How a transaction is meant to end under the benchmark's policy. */
export const EXPECTED: Readonly<Record<CaseKind, 'accepted' | 'rejected at MAIL'>> = {
  pass: 'accepted',
  fail: 'rejected at MAIL',
  softfail: 'accepted',
  none: 'accepted',
};

/** One SMTP transaction, as the MTA tells the milter about it. */
export interface MilterCase {
  kind: CaseKind;
  /** The client's address (a string inside the milter protocol only). */
  ip: string;
  /** The client's name as the MTA reports it: its verified PTR name, or `[ip]` without one. */
  hostname: string;
  helo: string;
  /** MAIL FROM, without angle brackets. */
  sender: string;
  recipient: string;
  /** How its record decides it, for the report (e.g. `pass via mx`). */
  path: string;
}

export interface MilterPolicyWorld {
  zone: ZoneData;
  cases: MilterCase[];
}

function reverseName(ip: string): string {
  return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
}

/**
 * Build the zone and the transactions.
 *
 * @example
 * const world = buildMilterPolicyWorld();
 * writeFileSync('zone.json', JSON.stringify(world.zone));
 */
export function buildMilterPolicyWorld(): MilterPolicyWorld {
  const zone: ZoneData = {};
  const add = (name: string, ...entries: unknown[]) => {
    const list = zone[name] ?? [];
    zone[name] = list;
    list.push(...entries);
  };
  /** A PTR record and the forward A record that verifies it. */
  const verifiedName = (ip: string, name: string) => {
    add(reverseName(ip), { PTR: name });
    add(name, { A: ip });
  };

  // The shared provider record that `include:` points at: all of the pass clients.
  const provider = `_spf.esp.${SUFFIX}`;
  add(provider, { TXT: 'v=spf1 ip4:192.0.2.0/25 ip4:192.0.2.128/25 ~all' });
  add(provider, { TXT: 'provider-verification=esp' });

  // Pass clients 192.0.2.1–200: verified, non-dynamic names.
  const passIp = (h: number) => `192.0.2.${h}`;
  for (let h = 1; h <= 200; h++) verifiedName(passIp(h), `smtp${h}.out.${SUFFIX}`);

  // Sender domains with SPF, and the addresses each authorizes.
  const authorized: string[][] = [];
  const shapes: string[] = [];
  for (let j = 0; j < PASS_DOMAINS; j++) {
    const d = `s${j}.${SUFFIX}`;
    add(d, { A: `100.64.${j}.10` }, { MX: [10, `mx1.${d}`] }, { MX: [20, `mx2.${d}`] });
    add(d, { TXT: `site-verification=${(j * 2654435761) >>> 0}` });
    let record: string;
    switch (j % 4) {
      case 0:
        record = 'v=spf1 ip4:192.0.2.0/26 ip4:192.0.2.64/26 ip4:192.0.2.128/25 -all';
        authorized.push(Array.from({ length: 200 }, (_, k) => passIp(k + 1)));
        shapes.push('pass via ip4');
        add(`mx1.${d}`, { A: `100.64.${j}.25` });
        add(`mx2.${d}`, { A: `100.64.${j}.26` });
        break;
      case 1:
        record = `v=spf1 include:${provider} -all`;
        authorized.push(Array.from({ length: 200 }, (_, k) => passIp(k + 1)));
        shapes.push('pass via include');
        add(`mx1.${d}`, { A: `100.64.${j}.25` });
        add(`mx2.${d}`, { A: `100.64.${j}.26` });
        break;
      case 2: {
        // Its MX hosts send its mail: their A records are two of the pass clients.
        const a = passIp(1 + ((j * 5) % 199));
        const b = passIp(2 + ((j * 5) % 199));
        record = 'v=spf1 mx -all';
        authorized.push([a, b]);
        shapes.push('pass via mx');
        add(`mx1.${d}`, { A: a });
        add(`mx2.${d}`, { A: b });
        break;
      }
      default: {
        const a = passIp(1 + ((j * 7 + 3) % 199));
        const b = passIp(2 + ((j * 7 + 3) % 199));
        record = `v=spf1 a:out.${d} -all`;
        authorized.push([a, b]);
        shapes.push('pass via a:');
        add(`out.${d}`, { A: a }, { A: b });
        add(`mx1.${d}`, { A: `100.64.${j}.25` });
        add(`mx2.${d}`, { A: `100.64.${j}.26` });
      }
    }
    add(d, { TXT: record });
  }

  // Fail clients 203.0.113.1–200: even ones with a verified dynamic-looking name, odd ones none.
  const failIp = (h: number) => `203.0.113.${h}`;
  for (let h = 2; h <= 200; h += 2) {
    verifiedName(failIp(h), `dsl-203-0-113-${h}.pool.isp.${SUFFIX}`);
  }

  // The softfail domain and its clients 198.51.100.101–200.
  add(SOFTFAIL_OK_DOMAIN, { TXT: `v=spf1 include:${provider} ~all` });
  add(SOFTFAIL_OK_DOMAIN, { A: '100.65.0.10' }, { MX: [10, `mx.${SOFTFAIL_OK_DOMAIN}`] });
  add(`mx.${SOFTFAIL_OK_DOMAIN}`, { A: '100.65.0.25' });
  const softIp = (h: number) => `198.51.100.${100 + h}`;
  for (let h = 1; h <= 100; h++) verifiedName(softIp(h), `mta${h}.bulk.${SUFFIX}`);

  // Domains without SPF, and their clients 198.51.100.1–100.
  for (let j = 0; j < NONE_DOMAINS; j++) {
    const d = `n${j}.${SUFFIX}`;
    add(d, { A: `100.70.${j}.10` }, { MX: [10, `mx.${d}`] }, { TXT: `site-verification=n${j}` });
    add(`mx.${d}`, { A: `100.70.${j}.25` });
  }
  const noneIp = (h: number) => `198.51.100.${h}`;
  for (let h = 1; h <= 100; h++) verifiedName(noneIp(h), `mail${h}.relay${h % 10}.${SUFFIX}`);

  // The transactions.
  const random = prng(4408);
  const pick = (n: number) => Math.floor(random() * n);
  const user = () => `u${pick(50)}`;
  const recipient = () => `r${pick(80)}@ours.${SUFFIX}`;
  const cases: MilterCase[] = [];
  const counts = KINDS.map((k) => Math.round(MIX[k] * CASE_COUNT));
  KINDS.forEach((kind, i) => {
    for (let n = 0; n < counts[i]!; n++) {
      switch (kind) {
        case 'pass': {
          const j = pick(PASS_DOMAINS);
          const ips = authorized[j]!;
          const ip = ips[pick(ips.length)]!;
          const hostname = `smtp${ip.split('.')[3]}.out.${SUFFIX}`;
          const sender = `${user()}@s${j}.${SUFFIX}`;
          cases.push({
            kind,
            ip,
            hostname,
            helo: hostname,
            sender,
            recipient: recipient(),
            path: shapes[j]!,
          });
          break;
        }
        case 'fail': {
          const j = pick(PASS_DOMAINS);
          const h = 1 + pick(200);
          const ip = failIp(h);
          const hostname = h % 2 === 0 ? `dsl-203-0-113-${h}.pool.isp.${SUFFIX}` : `[${ip}]`;
          const path = `fail at -all (${shapes[j]!.slice('pass via '.length)} record)`;
          cases.push({
            kind,
            ip,
            hostname,
            helo: `host${h}.isp.${SUFFIX}`,
            sender: `${user()}@s${j}.${SUFFIX}`,
            recipient: recipient(),
            path,
          });
          break;
        }
        case 'softfail': {
          const h = 1 + pick(100);
          const hostname = `mta${h}.bulk.${SUFFIX}`;
          cases.push({
            kind,
            ip: softIp(h),
            hostname,
            helo: hostname,
            sender: `bounce-${pick(1000)}@${SOFTFAIL_OK_DOMAIN}`,
            recipient: recipient(),
            path: 'softfail at ~all (include does not match)',
          });
          break;
        }
        case 'none': {
          const h = 1 + pick(100);
          cases.push({
            kind,
            ip: noneIp(h),
            hostname: `mail${h}.relay${h % 10}.${SUFFIX}`,
            helo: `exch${h}.corp${h % 10}.${SUFFIX}`,
            sender: `${user()}@n${pick(NONE_DOMAINS)}.${SUFFIX}`,
            recipient: recipient(),
            path: 'none; verified non-dynamic PTR',
          });
          break;
        }
      }
    }
  });
  // Shuffle, so that consecutive transactions are of different kinds, as real traffic is.
  for (let i = cases.length - 1; i > 0; i--) {
    const j = pick(i + 1);
    [cases[i], cases[j]] = [cases[j]!, cases[i]!];
  }
  return { zone, cases };
}
