/**
 * npm run bench:registry — what the sender-registry ID check costs. No peer runs this check, so
 * the comparison is with mailgate's own plain SPF check, in the same run, against the same
 * fixture DNS server (a child process, so its CPU counts against neither side), with warm caches:
 * this measures the check's own work, not the network.
 *
 * Workload: 200 registered IDs per method, each with its registry record; the QR1 IDs publish a
 * /24 that holds the client, the CSV IDs a CSA record whose target is the client, the SPF IDs
 * `meth=SPF:10` and a sender domain with `v=spf1 ip4:<block> -all` (one include for half of them).
 * The plain SPF side checks the same senders from the same clients and writes the Received-SPF,
 * as the daemon's MAIL FROM stage does (the registry's SPF method writes one too). Every case
 * must come out ACCEPT (registry) and pass (SPF) before timing; a case that does not is an error.
 *
 * Reported: checks per second with a fixed number in flight, median of alternating rounds, and
 * the cost of the SPF-method registry check over the plain SPF check it contains, the median of
 * the ratios of each round (goal: at most 1.5x the cost, i.e. at least 1/1.5 of the rate). Then the reputation update's cost per
 * decision (bench/reputation-cost.ts), for SQLite and, when one can be started, PostgreSQL.
 *
 * Settings (argument or environment): --concurrency=N (BENCH_CONCURRENCY, 32), --rounds=N
 * (BENCH_ROUNDS, 3), --round-ms=N (BENCH_ROUND_MS, 1000), --warmup-ms=N (BENCH_WARMUP_MS, 500).
 *
 * @example
 * node --import tsx bench/registry.ts --rounds=5
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  checkId,
  DEFAULT_REGISTRY_SETTINGS,
  type RegistrySettings,
} from '../src/checks/registry/index.js';
import { checkSpf, receivedSpf } from '../src/checks/spf/index.js';
import { createResolver, type StubResolver } from '../src/dns/index.js';
import type { ZoneData } from '../test/support/dns-server.js';
import { DnsFixture } from './child.js';
import { alternatingRounds, fmt, median, setting, table } from './common.js';
import { reputationCost } from './reputation-cost.js';

const IDS_PER_METHOD = 200;
const ZONE = 'registry.bench';
const RECEIVER = 'mx.bench.test';
const GOAL = 1.5;

function positiveInt(name: string, env: string, fallback: number): number {
  const text = setting(name, env, String(fallback));
  const value = Number(text);
  if (!(Number.isInteger(value) && value > 0)) {
    throw new Error(
      `bench:registry: --${name} (${env}) must be a positive whole number, got ${text}`,
    );
  }
  return value;
}

interface Case {
  ip: string;
  helo: string;
  sender: string;
}

type SideName = 'registry QR1' | 'registry CSV' | 'registry SPF' | 'plain SPF';

interface Side {
  name: SideName;
  cases: Case[];
  run(c: Case): Promise<boolean>;
}

/** The zone and the cases of each method. */
function buildWorld(): { zone: ZoneData; qr1: Case[]; csv: Case[]; spf: Case[] } {
  const zone: ZoneData = {};
  const ratings = 'svc=S1:A,M2:A,H1:B';
  const qr1: Case[] = [];
  const csv: Case[] = [];
  const spf: Case[] = [];
  zone['shared.bench'] = [{ TXT: 'v=spf1 ip4:10.200.0.0/16 -all' }];
  for (let i = 0; i < IDS_PER_METHOD; i++) {
    const a = (i >> 8) & 0xff;
    const b = i & 0xff;
    // QR1: the client's /24 is in the record.
    const qid = `q${i}.bench`;
    zone[`${qid}.${ZONE}`] = [{ TXT: `ip4=10.1.${b}.0/24 ${ratings}` }];
    qr1.push({ ip: `10.1.${b}.${1 + a}`, helo: `mx.${qid}`, sender: `jo@${qid}` });
    // CSV: the HELO's CSA record names a host whose address is the client.
    const cid = `c${i}.bench`;
    zone[`${cid}.${ZONE}`] = [{ TXT: `meth=CSV:4 ${ratings}` }];
    zone[`_client._smtp.mx.${cid}`] = [{ SRV: [1, 2, 0, `host.${cid}`] }];
    zone[`host.${cid}`] = [{ A: `10.2.${b}.${1 + a}` }];
    csv.push({ ip: `10.2.${b}.${1 + a}`, helo: `mx.${cid}`, sender: `jo@${cid}` });
    // SPF: the sender's domain authorizes the client, directly or through one include.
    const sid = `s${i}.bench`;
    zone[`${sid}.${ZONE}`] = [{ TXT: `meth=SPF:10 ${ratings}` }];
    zone[`mail.${sid}`] = [
      { TXT: i % 2 ? 'v=spf1 include:shared.bench -all' : `v=spf1 ip4:10.3.${b}.0/24 -all` },
    ];
    const ip = i % 2 ? `10.200.${b}.${1 + a}` : `10.3.${b}.${1 + a}`;
    spf.push({ ip, helo: `mx.${sid}`, sender: `jo@mail.${sid}` });
  }
  return { zone, qr1, csv, spf };
}

const SETTINGS: RegistrySettings = {
  ...DEFAULT_REGISTRY_SETTINGS,
  zone: ZONE,
  receiver: RECEIVER,
  services: {
    S1: { grades: { A: 9, B: 7, C: 5, D: 0 }, weight: 5 },
    M2: { grades: { A: 9, B: 7, C: 5, D: 0 }, weight: 5 },
    H1: { grades: { A: 9, B: 7, C: 5, D: 0 }, weight: 5 },
  },
};

function sides(resolver: StubResolver, world: ReturnType<typeof buildWorld>): Side[] {
  const registry = (name: SideName, cases: Case[]): Side => ({
    name,
    cases,
    run: async (c) => (await checkId(c, SETTINGS, { resolver })).action === 'ACCEPT',
  });
  return [
    registry('registry QR1', world.qr1),
    registry('registry CSV', world.csv),
    registry('registry SPF', world.spf),
    {
      // As the daemon's MAIL FROM stage runs it: the check and the Received-SPF it writes.
      name: 'plain SPF',
      cases: world.spf,
      run: async (c) => {
        const spf = await checkSpf(c, { resolver, receiver: RECEIVER });
        return spf.result === 'pass' && receivedSpf(spf, { receiver: RECEIVER }).length > 0;
      },
    },
  ];
}

/** Checks of one side for `ms`, `concurrency` in flight; per second. */
async function round(side: Side, concurrency: number, ms: number): Promise<{ perSecond: number }> {
  let done = 0;
  let next = 0;
  const end = performance.now() + ms;
  const worker = async () => {
    while (performance.now() < end) {
      const c = side.cases[next++ % side.cases.length]!;
      if (!(await side.run(c))) throw new Error(`${side.name}: ${c.helo} did not pass`);
      done++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { perSecond: done / ((performance.now() - started) / 1000) };
}

async function main(): Promise<void> {
  const concurrency = positiveInt('concurrency', 'BENCH_CONCURRENCY', 32);
  const rounds = positiveInt('rounds', 'BENCH_ROUNDS', 3);
  const roundMs = positiveInt('round-ms', 'BENCH_ROUND_MS', 1000);
  const warmupMs = positiveInt('warmup-ms', 'BENCH_WARMUP_MS', 500);

  const world = buildWorld();
  const dir = mkdtempSync(join(tmpdir(), 'mailgate-bench-registry-'));
  const zoneFile = join(dir, 'zone.json');
  writeFileSync(zoneFile, JSON.stringify(world.zone));
  const dns = await DnsFixture.start({ zoneFile });
  let plainMicros: number | undefined;
  try {
    const resolver = createResolver({ servers: [dns.address], timeout: 2000, attempts: 2 });
    const all = sides(resolver, world);
    // Every case once: the caches fill, and every case must pass.
    for (const side of all) {
      for (const c of side.cases) {
        if (!(await side.run(c))) throw new Error(`${side.name}: ${c.helo} did not pass`);
      }
    }
    const before = await dns.queries();
    console.log(
      `bench:registry — ${IDS_PER_METHOD} IDs per method, warm DNS cache, ${concurrency} checks in flight, ${rounds} rounds of ${roundMs} ms`,
    );
    const results = new Map<SideName, number[]>();
    const measured = await alternatingRounds(
      all,
      { concurrencies: [concurrency], rounds, seconds: roundMs, warmupSeconds: warmupMs },
      'checks/s',
      async (side, c, ms) => {
        const r = await round(side, c, ms);
        return { ...r, side: side.name };
      },
    );
    for (const r of measured) {
      const list = results.get(r.side) ?? [];
      list.push(r.perSecond);
      results.set(r.side, list);
    }
    const sent = (await dns.queries()) - before;
    const perSecond = (name: SideName) => median(results.get(name) ?? []);
    const plain = perSecond('plain SPF');
    plainMicros = 1e6 / plain;
    console.log('');
    console.log(
      table([
        ['check', 'checks/s', 'µs per check', 'vs plain SPF'],
        ...all.map((s) => [
          s.name,
          fmt(perSecond(s.name)),
          fmt(1e6 / perSecond(s.name), 1),
          s.name === 'plain SPF' ? '-' : `${fmt(plain / perSecond(s.name), 2)}x the cost`,
        ]),
      ]),
    );
    // The ratio of each round's pair (both measured in the same round, under the same load),
    // then the median: steadier than a ratio of medians on a machine that is not idle.
    const plainRounds = results.get('plain SPF') ?? [];
    const spfRounds = results.get('registry SPF') ?? [];
    const ratio = median(plainRounds.map((p, i) => p / spfRounds[i]!));
    console.log('');
    console.log(
      `registry SPF method costs ${fmt(ratio, 2)}x the plain SPF check it contains (goal: at most ${GOAL}x): ${ratio <= GOAL ? 'met' : 'NOT MET'}`,
    );
    if (sent > 0)
      console.log(
        `warning: ${sent} queries reached the DNS server while timing (the cache should answer all)`,
      );
  } finally {
    await dns.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log('');
  await reputationCost(plainMicros);
}

main().catch((err: unknown) => {
  console.error(`bench:registry: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
});
