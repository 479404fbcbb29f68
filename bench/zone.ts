/**
 * The SPF benchmark's synthetic world: a zone in the openspf test-suite format (served by the
 * fixture DNS server in a child process) and the workload of (ip, sender, helo) cases run against
 * it. Both are built deterministically, so the parent and the child agree without talking.
 *
 * The zone mixes what real senders publish: ip4/ip6 lists, `a`, `mx` (with MX hosts and their
 * A/AAAA), `include:` of shared provider records that nest `_netblocks` records of ranges (the
 * shape of the big mailbox providers), `redirect=` to a shared policy, `exists:` with the
 * `%{i}._spf.%{d}` macro, unrelated TXT records beside the SPF one, `~all` and `-all`.
 */
import type { ZoneData } from '../test/support/dns-server.js';
import { prng } from './common.js';

export const BENCH_SUFFIX = 'bench.example';
export const DOMAIN_COUNT = 200;
const PROVIDER_COUNT = 5;
const REDIRECT_POLICY_COUNT = 4;
const NETBLOCKS_V4 = 8;
const NETBLOCKS_V6 = 6;

/** One evaluation to run: the SMTP client, the envelope sender and HELO name. */
export interface BenchCase {
  ip: string;
  /** MAIL FROM; empty for the null reverse-path (then the HELO identity is checked). */
  sender: string;
  helo: string;
  /** How the case is meant to be decided, for the report (e.g. `pass via include`). */
  path: string;
}

export interface BenchWorld {
  zone: ZoneData;
  cases: BenchCase[];
}

const domain = (i: number) => `d${i}.${BENCH_SUFFIX}`;
const provider = (k: number) => `_spf.p${k}.${BENCH_SUFFIX}`;
const policy = (m: number) => `_spf.r${m}.${BENCH_SUFFIX}`;
const hex = (n: number) => n.toString(16);

/** Addresses a provider sends from: its IPv4 /24s and IPv6 /48s. */
const providerV4 = (k: number, j: number, host: number) => `198.18.${k * 16 + j}.${host}`;
const providerV6 = (k: number, j: number, host: number) =>
  `2001:db8:f${hex(k)}${hex(j)}::${hex(host)}`;

/** Per-domain address plan. */
const ownV4 = (i: number, host: number) => `100.64.${i}.${host}`; // ip4:100.64.i.0/28
const singleV4 = (i: number) => `100.65.${i}.7`;
const ownV6 = (i: number, host: number) => `2001:db8:${hex(0x1000 + i)}::${hex(host)}`;
const aV4 = (i: number) => `100.66.${i}.10`;
const aV6 = (i: number) => `2001:db8:a:${hex(i)}::10`;
const mxV4 = (i: number, n: number) => `100.67.${i}.${n}`;
const mxV6 = (i: number) => `2001:db8:b:${hex(i)}::1`;
const existsV4 = (i: number, n: number) => `100.69.${i}.${n}`;
const policyV4 = (m: number, host: number) => `100.68.${m}.${host}`;
const policyV6 = (m: number, host: number) => `2001:db8:c${hex(m)}::${hex(host)}`;
const missV4 = (i: number) => `203.0.113.${(i % 250) + 1}`;
const missV6 = (i: number) => `2001:db8:dead::${hex(i + 1)}`;

/** The shape of each sender domain's record, by `i % 8`. */
const TEMPLATES = [
  'hosted', // include of one provider, ~all
  'lists', // own ip4/ip6 lists, then a provider, -all
  'mx-a', // mx a ip4, ~all
  'a-mx-2providers', // a mx include include, -all
  'exists', // ip4 then exists:%{i}._spf.%{d}, -all
  'redirect', // redirect= to a shared policy
  'lists-mx-provider', // ip4 ip4 ip6 mx include, ~all
  '2providers-mx', // include include mx, -all
] as const;

/**
 * A few percent of traffic from senders whose policy is missing or broken, as real mail has:
 * no SPF record at all, two records, an include of a record that is gone, more than ten
 * DNS-querying terms, and stale `a:` hosts that run into the void-lookup limit (IPv4-only hosts
 * asked for AAAA are void lookups under RFC 7208 4.6.4; implementations differ there).
 */
function addTroubledSenders(
  add: (name: string, ...entries: unknown[]) => void,
  cases: BenchCase[],
): void {
  const helo = 'mx.troubled.example';
  const push = (ip: string, sender: string, path: string) => cases.push({ ip, sender, helo, path });
  for (let j = 0; j < 10; j++) {
    const d = `n${j}.${BENCH_SUFFIX}`;
    add(d, { A: `100.72.${j}.1` }, { MX: [10, d] }, { TXT: `site-verification=n${j}` });
    push(`100.72.${j}.1`, `info@${d}`, 'none (no SPF record)');
  }
  const dup = `dup.${BENCH_SUFFIX}`;
  add(dup, { TXT: 'v=spf1 ip4:100.73.0.0/24 -all' }, { TXT: 'v=spf1 mx -all' });
  push('100.73.0.9', `news@${dup}`, 'permerror (two SPF records)');
  const stale = `stale.${BENCH_SUFFIX}`;
  add(stale, { TXT: `v=spf1 ip4:100.74.0.0/24 include:_spf.gone.${BENCH_SUFFIX} -all` });
  push('100.74.0.3', `billing@${stale}`, 'pass via ip4 before a dead include');
  push(missV4(201), `billing@${stale}`, 'permerror (include target has no record)');
  const big = `big.${BENCH_SUFFIX}`;
  const includes = Array.from({ length: PROVIDER_COUNT }, (_, k) => `include:${provider(k)}`);
  add(big, { TXT: `v=spf1 ${includes.join(' ')} -all` });
  push(providerV4(0, 1, 50), `hr@${big}`, 'pass via first include, within the term limit');
  push(missV4(202), `hr@${big}`, 'permerror (more than 10 DNS-querying terms)');
  const legacy = `legacy.${BENCH_SUFFIX}`;
  add(legacy, {
    TXT: `v=spf1 a:www.${legacy} a:vpn.${legacy} a:old.${legacy} ip4:100.71.0.0/24 -all`,
  });
  add(`www.${legacy}`, { A: '100.71.1.1' });
  add(`vpn.${legacy}`, { A: '100.71.1.2' });
  push('100.71.1.2', `it@${legacy}`, 'pass via a (second host)');
  push(missV4(203), `it@${legacy}`, 'fail at -all (one void lookup)');
  push(
    missV6(203),
    `it@${legacy}`,
    'permerror (three void lookups: two AAAA NODATA, one NXDOMAIN)',
  );
}

/**
 * Build the zone and the workload.
 *
 * @example
 * const { zone, cases } = buildBenchWorld();
 * const server = await startDnsServer(zone);
 */
export function buildBenchWorld(): BenchWorld {
  const zone: ZoneData = {};
  const cases: BenchCase[] = [];
  const add = (name: string, ...entries: unknown[]) => {
    const list = zone[name] ?? [];
    zone[name] = list;
    list.push(...entries);
  };

  for (let k = 0; k < PROVIDER_COUNT; k++) {
    const v4 = Array.from({ length: NETBLOCKS_V4 }, (_, j) => `ip4:${providerV4(k, j, 0)}/24`);
    const v6 = Array.from({ length: NETBLOCKS_V6 }, (_, j) => `ip6:${providerV6(k, j, 0)}/48`);
    add(
      provider(k),
      {
        TXT: `v=spf1 include:_netblocks.p${k}.${BENCH_SUFFIX} include:_netblocks2.p${k}.${BENCH_SUFFIX} ~all`,
      },
      { TXT: `provider-verification=p${k}` },
    );
    add(`_netblocks.p${k}.${BENCH_SUFFIX}`, { TXT: `v=spf1 ${v4.join(' ')} ~all` });
    add(`_netblocks2.p${k}.${BENCH_SUFFIX}`, { TXT: `v=spf1 ${v6.join(' ')} ~all` });
  }
  for (let m = 0; m < REDIRECT_POLICY_COUNT; m++) {
    add(policy(m), {
      TXT: `v=spf1 ip4:${policyV4(m, 0)}/24 ip6:${policyV6(m, 0)}/48 include:${provider(m % PROVIDER_COUNT)} -all`,
    });
  }

  for (let i = 0; i < DOMAIN_COUNT; i++) {
    const d = domain(i);
    const k = i % PROVIDER_COUNT;
    const k2 = (i + 2) % PROVIDER_COUNT;
    const m = i % REDIRECT_POLICY_COUNT;
    const template = TEMPLATES[i % TEMPLATES.length]!;
    const user = (n: number) => `user${n}@${d}`;
    const helo = `mail${i}.client.example`;
    const push = (ip: string, path: string, sender = user(cases.length % 97), hello = helo) =>
      cases.push({ ip, sender, helo: hello, path });

    // Every domain has a web host, two MX hosts and TXT records besides SPF, as real ones do.
    add(d, { A: aV4(i) }, { AAAA: aV6(i) }, { MX: [10, `mx1.${d}`] }, { MX: [20, `mx2.${d}`] });
    add(`mx1.${d}`, { A: mxV4(i, 1) }, { AAAA: mxV6(i) });
    add(`mx2.${d}`, { A: mxV4(i, 2) });
    add(d, { TXT: `site-verification=${(i * 2654435761) >>> 0}` });
    if (i % 3 === 0) add(d, { TXT: `MS=ms${10_000 + i}` });

    let record: string;
    switch (template) {
      case 'hosted':
        record = `v=spf1 include:${provider(k)} ~all`;
        push(providerV4(k, i % NETBLOCKS_V4, 20 + (i % 200)), 'pass via include (ip4 /24)');
        push(providerV6(k, i % NETBLOCKS_V6, 0x99), 'pass via include (ip6 /48)');
        push(missV4(i), 'softfail at ~all');
        break;
      case 'lists':
        record = `v=spf1 ip4:${ownV4(i, 0)}/28 ip4:${singleV4(i)} ip6:${ownV6(i, 0)}/48 include:${provider(k)} -all`;
        push(ownV4(i, 5), 'pass via ip4 /28');
        push(singleV4(i), 'pass via ip4 host');
        push(ownV6(i, 0x25), 'pass via ip6 /48');
        push(providerV4(k, (i + 3) % NETBLOCKS_V4, 9), 'pass via include (ip4 /24)');
        push(missV4(i), 'fail at -all');
        push(missV6(i), 'fail at -all (ip6)');
        break;
      case 'mx-a':
        record = `v=spf1 mx a ip4:${ownV4(i, 0)}/28 ~all`;
        push(mxV4(i, 2), 'pass via mx (second host)');
        push(mxV6(i), 'pass via mx (ip6)');
        push(aV4(i), 'pass via a');
        push(aV4(i), 'pass via a (null sender, HELO identity)', '', d);
        push(ownV4(i, 14), 'pass via ip4 /28');
        push(missV4(i), 'softfail at ~all');
        break;
      case 'a-mx-2providers':
        record = `v=spf1 a mx include:${provider(k)} include:${provider(k2)} -all`;
        push(aV6(i), 'pass via a (ip6)');
        push(mxV4(i, 1), 'pass via mx');
        push(providerV4(k2, i % NETBLOCKS_V4, 77), 'pass via second include');
        push(providerV6(k2, i % NETBLOCKS_V6, 0x77), 'pass via second include (ip6)');
        push(missV4(i), 'fail at -all');
        break;
      case 'exists':
        record = `v=spf1 ip4:${ownV4(i, 0)}/28 exists:%{i}._spf.%{d} -all`;
        for (let n = 1; n <= 4; n++) add(`${existsV4(i, n)}._spf.${d}`, { A: '127.0.0.2' });
        push(ownV4(i, 1), 'pass via ip4 /28');
        push(existsV4(i, 1 + (i % 4)), 'pass via exists');
        push(missV4(i), 'fail at -all (exists void)');
        break;
      case 'redirect':
        record = `v=spf1 redirect=${policy(m)}`;
        push(policyV4(m, 1 + (i % 250)), 'pass via redirect, ip4');
        push(policyV6(m, 0x42), 'pass via redirect, ip6');
        push(providerV4(m % PROVIDER_COUNT, i % NETBLOCKS_V4, 33), 'pass via redirect, include');
        push(missV4(i), 'fail at redirect -all');
        break;
      case 'lists-mx-provider':
        record = `v=spf1 ip4:${ownV4(i, 0)}/28 ip4:${singleV4(i)} ip6:${ownV6(i, 0)}/48 mx include:${provider(k)} ~all`;
        push(singleV4(i), 'pass via ip4 host');
        push(mxV4(i, 1), 'pass via mx');
        push(providerV4(k, (i + 5) % NETBLOCKS_V4, 200), 'pass via include (ip4 /24)');
        push(missV6(i), 'softfail at ~all (ip6)');
        push(missV4(i), 'softfail at ~all');
        break;
      case '2providers-mx':
        record = `v=spf1 include:${provider(k)} include:${provider(k2)} mx -all`;
        push(providerV4(k, i % NETBLOCKS_V4, 5), 'pass via include (ip4 /24)');
        push(mxV4(i, 2), 'pass via mx (second host)');
        push(missV4(i), 'fail at -all');
        break;
    }
    add(d, { TXT: record });
  }

  addTroubledSenders(add, cases);

  // Shuffle so that consecutive evaluations touch different domains, as real traffic does.
  const random = prng(7208);
  for (let i = cases.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [cases[i], cases[j]] = [cases[j]!, cases[i]!];
  }
  return { zone, cases };
}
