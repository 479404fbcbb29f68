/**
 * npm run bench:spf — mailgate's checkSpf against mailauth@4's spf(), in one run, against the same
 * fixture DNS server (run in a child process, so its CPU counts against neither side).
 *
 *   cold: no cache on either side; every evaluation asks the server. mailgate uses its own stub
 *         resolver with `cache: false` (which still folds identical lookups already in flight, as
 *         in production; the report counts them); mailauth uses node's c-ares resolver
 *         (`dns.promises.Resolver`), whose answers are not cached either (checked at start).
 *   warm: both sides answer from memory; mailgate from its resolver cache, mailauth from a
 *         memoising wrapper around the node resolver, both filled by one pass over the workload.
 *         This measures the evaluation engines.
 *
 * Throughput is evaluations per second with a fixed number in flight; rounds alternate between
 * the sides, the median round of each side is reported, and the ratio is the median of the ratios
 * of adjacent round pairs (each pair ran under the same conditions). Before timing, every workload case is run once on
 * each side and the result words are compared; disagreements are printed, not hidden.
 *
 * Settings (argument or environment): --concurrency=N (BENCH_CONCURRENCY, 32), --rounds=N
 * (BENCH_ROUNDS, 3), --round-ms=N (BENCH_ROUND_MS, 1000), --warmup-ms=N (BENCH_WARMUP_MS, 1000),
 * --only=cold|warm (BENCH_ONLY), --time-limit-ms=N (BENCH_TIME_LIMIT_MS, 180000: give up, exit 1).
 *
 * Exits 0 when the measurement completed, whether or not the goals are met; 1 on real errors.
 *
 * @example
 * node --import tsx bench/spf.ts --concurrency=64 --only=warm
 */
import { promises as dnsPromises } from 'node:dns';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { spf as mailauthSpf } from 'mailauth/lib/spf/index.js';
import { checkSpf, receivedSpf } from '../src/checks/spf/index.js';
import { createResolver, type StubResolver } from '../src/dns/index.js';
import { DnsFixture } from './child.js';
import { setting } from './common.js';
import { BENCH_SUFFIX, type BenchCase, buildBenchWorld } from './zone.js';

// ---------------------------------------------------------------------------------------------
// Settings

function positiveInt(name: string, env: string, fallback: number): number {
  const text = setting(name, env, String(fallback));
  const value = Number(text);
  if (!(Number.isInteger(value) && value > 0)) {
    throw new Error(`bench:spf: --${name} (${env}) must be a positive whole number, got ${text}`);
  }
  return value;
}

const GOALS = { cold: 1.5, warm: 3 } as const;
type Mode = keyof typeof GOALS;

const RECEIVER = 'bench.local';

// ---------------------------------------------------------------------------------------------
// The two sides

interface Outcome {
  word: string;
  /** Enough to see why, for disagreements. */
  detail: string;
}

interface Side {
  name: 'mailgate' | 'mailauth';
  evaluate(c: BenchCase): Promise<Outcome>;
  /** Queries this side asked its resolver layer for that went out to the network. */
  sent(): number;
  /** Lookups the SPF engine asked of its resolver (cached or not). */
  lookups(): number;
  /** Lookups that joined an identical one already in flight (mailgate only; c-ares has none). */
  folded?(): number;
}

function mailgateSide(resolver: StubResolver): Side {
  let lookups = 0;
  return {
    name: 'mailgate',
    async evaluate(c) {
      const r = await checkSpf(
        { ip: c.ip, sender: c.sender, helo: c.helo },
        { resolver, receiver: RECEIVER },
      );
      // mailauth's spf() always composes its Received-SPF header; so does this side, to be fair.
      receivedSpf(r, { receiver: RECEIVER });
      lookups += r.queries;
      const why = [r.mechanism && `mechanism=${r.mechanism}`, r.problem && `problem=${r.problem}`];
      return { word: r.result, detail: why.filter(Boolean).join(' ') };
    },
    sent: () => resolver.stats.sent,
    lookups: () => lookups,
    folded: () => resolver.stats.coalesced,
  };
}

/** What mailauth's `resolver` option is: `dns.promises.resolve`'s shape. */
type ResolveFn = (name: string, rrtype: string) => Promise<unknown>;

/** Node's c-ares resolver pointed at the fixture, counting the lookups it is asked for. */
function nodeResolver(address: string): { resolve: ResolveFn; calls: () => number } {
  const resolver = new dnsPromises.Resolver({ timeout: 2000, tries: 2 });
  resolver.setServers([address]);
  let calls = 0;
  return {
    resolve: (name, rrtype) => {
      calls++;
      return resolver.resolve(name, rrtype);
    },
    calls: () => calls,
  };
}

/**
 * A memo around a resolve function: records, or the rejection for NXDOMAIN/NODATA, by name and
 * type. Other errors (timeouts) are not remembered. The same array or Error is handed out each
 * time, as a plain memo would; mailauth only reads them (it sorts an MX list in place, harmlessly).
 */
function memoise(base: ResolveFn): { resolve: ResolveFn; misses: () => number } {
  const memo = new Map<string, { ok: true; value: unknown } | { ok: false; error: unknown }>();
  let misses = 0;
  return {
    resolve: async (name, rrtype) => {
      const key = `${rrtype} ${name.toLowerCase()}`;
      const hit = memo.get(key);
      if (hit) {
        if (hit.ok) return hit.value;
        throw hit.error;
      }
      misses++;
      try {
        const value = await base(name, rrtype);
        memo.set(key, { ok: true, value });
        return value;
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === 'ENOTFOUND' || code === 'ENODATA') memo.set(key, { ok: false, error });
        throw error;
      }
    },
    misses: () => misses,
  };
}

function mailauthSide(resolve: ResolveFn, sent: () => number): Side {
  let lookups = 0;
  const counted: ResolveFn = (name, rrtype) => {
    lookups++;
    return resolve(name, rrtype);
  };
  return {
    name: 'mailauth',
    async evaluate(c) {
      const r = await mailauthSpf({
        sender: c.sender,
        ip: c.ip,
        helo: c.helo,
        mta: RECEIVER,
        // Its type says string arrays; at run time it is handed dns.promises.resolve's results.
        resolver: counted as Parameters<typeof mailauthSpf>[0]['resolver'],
      });
      return { word: r.status.result, detail: r.status.comment ?? '' };
    },
    sent,
    lookups: () => lookups,
  };
}

// ---------------------------------------------------------------------------------------------
// Running

/** A full collection between rounds, so one side's garbage is not collected on the other's time. */
const collectGarbage: () => void = (() => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as unknown;
  return typeof gc === 'function' ? (gc as () => void) : () => {};
})();

/** Run every case once, `inFlight` at a time; results by case index. */
async function runAll(side: Side, cases: BenchCase[], inFlight: number): Promise<Outcome[]> {
  const out: Outcome[] = new Array(cases.length);
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const i = next++;
      out[i] = await side.evaluate(cases[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, cases.length) }, worker));
  return out;
}

interface Round {
  side: Side['name'];
  evals: number;
  seconds: number;
  perSecond: number;
  /** Evaluations whose result word differed from the side's own reference pass. */
  drift: number;
  driftExample?: string;
  serverQueries: number;
  serverCpuShare: number;
  sent: number;
  lookups: number;
  folded: number | undefined;
}

async function timedRound(
  side: Side,
  cases: BenchCase[],
  reference: Outcome[],
  durationMs: number,
  concurrency: number,
  fixture: DnsFixture,
): Promise<Round> {
  collectGarbage();
  const before = await fixture.stats();
  const sent0 = side.sent();
  const lookups0 = side.lookups();
  const folded0 = side.folded?.();
  let next = 0;
  let evals = 0;
  let drift = 0;
  let driftExample: string | undefined;
  const start = performance.now();
  const end = start + durationMs;
  const worker = async () => {
    while (performance.now() < end) {
      const i = next++ % cases.length;
      const outcome = await side.evaluate(cases[i]!);
      evals++;
      if (outcome.word !== reference[i]!.word) {
        drift++;
        driftExample ??= `${cases[i]!.ip} ${cases[i]!.sender}: ${outcome.word} (${outcome.detail}), was ${reference[i]!.word}`;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - start) / 1000;
  const after = await fixture.stats();
  return {
    side: side.name,
    evals,
    seconds,
    perSecond: evals / seconds,
    drift,
    ...(driftExample ? { driftExample } : {}),
    serverQueries: after.queries - before.queries,
    serverCpuShare: (after.cpuMicros - before.cpuMicros) / 1e6 / seconds,
    sent: side.sent() - sent0,
    lookups: side.lookups() - lookups0,
    folded: folded0 === undefined ? undefined : side.folded!() - folded0,
  };
}

interface ModeResult {
  mode: Mode;
  rounds: Round[];
  median: Record<Side['name'], Round>;
  /** mailgate/mailauth for each pair of adjacent rounds, which share the machine's mood. */
  pairRatios: number[];
  /** The median of `pairRatios`: the reported ratio, less sensitive to drift than medians alone. */
  ratio: number;
}

async function measureMode(
  mode: Mode,
  sides: [Side, Side],
  references: Record<Side['name'], Outcome[]>,
  cases: BenchCase[],
  settings: Settings,
  fixture: DnsFixture,
): Promise<ModeResult> {
  const [ours, peer] = sides;
  // One discarded round each, so both run optimised code and settled sockets when timed.
  for (const side of sides) {
    await timedRound(
      side,
      cases,
      references[side.name],
      settings.warmupMs,
      settings.concurrency,
      fixture,
    );
  }
  const rounds: Round[] = [];
  const pairRatios: number[] = [];
  for (let r = 0; r < settings.rounds; r++) {
    const pair: Partial<Record<Side['name'], Round>> = {};
    // ABBA order, so neither side always runs right after the other's garbage.
    for (const side of r % 2 === 0 ? [ours, peer] : [peer, ours]) {
      const round = await timedRound(
        side,
        cases,
        references[side.name],
        settings.roundMs,
        settings.concurrency,
        fixture,
      );
      rounds.push(round);
      pair[side.name] = round;
      process.stderr.write(
        `  ${mode} round ${r + 1} ${side.name}: ${Math.round(round.perSecond)} ev/s\n`,
      );
    }
    pairRatios.push(pair.mailgate!.perSecond / pair.mailauth!.perSecond);
  }
  const median = (name: Side['name']): Round => {
    const mine = rounds.filter((x) => x.side === name).sort((a, b) => a.perSecond - b.perSecond);
    return mine[Math.floor((mine.length - 1) / 2)]!;
  };
  return {
    mode,
    rounds,
    median: { mailgate: median('mailgate'), mailauth: median('mailauth') },
    pairRatios,
    ratio: medianOf(pairRatios),
  };
}

function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

// ---------------------------------------------------------------------------------------------
// Reporting

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) =>
    r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  return [
    line(rows[0]!),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.slice(1).map(line),
  ].join('\n');
}

const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function wordCounts(outcomes: Outcome[]): string {
  const counts = new Map<string, number>();
  for (const o of outcomes) counts.set(o.word, (counts.get(o.word) ?? 0) + 1);
  return [...counts].map(([w, n]) => `${w} ${n}`).join(', ');
}

/** The word a case's path promises: `pass via …`, `fail at …`, `permerror (…)`, `none (…)`. */
function intended(c: BenchCase): string {
  return c.path.split(' ')[0]!;
}

// ---------------------------------------------------------------------------------------------
// Main

interface Settings {
  concurrency: number;
  rounds: number;
  roundMs: number;
  warmupMs: number;
  modes: Mode[];
}

async function main(): Promise<number> {
  const only = setting('only', 'BENCH_ONLY', '');
  if (only !== '' && only !== 'cold' && only !== 'warm') {
    throw new Error(`bench:spf: --only must be cold or warm, got ${only}`);
  }
  const settings: Settings = {
    concurrency: positiveInt('concurrency', 'BENCH_CONCURRENCY', 32),
    rounds: positiveInt('rounds', 'BENCH_ROUNDS', 3),
    roundMs: positiveInt('round-ms', 'BENCH_ROUND_MS', 1000),
    warmupMs: positiveInt('warmup-ms', 'BENCH_WARMUP_MS', 1000),
    modes: only === '' ? ['cold', 'warm'] : [only],
  };
  const require = createRequire(import.meta.url);
  const mailauthVersion = (require('mailauth/package.json') as { version: string }).version;
  const { zone, cases } = buildBenchWorld();
  const senderDomains = new Set(cases.map((c) => (c.sender || `@${c.helo}`).split('@')[1])).size;
  const cpuList = cpus();

  // A hung evaluation must not hang the run: give up loudly (the exit handler kills the child).
  const limitMs = positiveInt('time-limit-ms', 'BENCH_TIME_LIMIT_MS', 180_000);
  const watchdog = setTimeout(() => {
    console.error(`bench:spf: still running after ${limitMs} ms; giving up`);
    process.exit(1);
  }, limitMs);
  watchdog.unref();

  const fixture = await DnsFixture.start();
  const onExit = () => fixture.killNow();
  process.once('exit', onExit);
  try {
    const address = fixture.address;
    console.log(`mailgate SPF benchmark: checkSpf against mailauth@${mailauthVersion} spf()`);
    console.log(
      `node ${process.version}, ${cpuList[0]?.model.trim() ?? 'unknown CPU'} × ${cpuList.length}, ${process.platform}/${process.arch}`,
    );
    console.log(
      `workload: ${senderDomains} sender domains, ${Object.keys(zone).length} zone names, ${cases.length} cases; ` +
        `fixture DNS server ${address} in child pid ${fixture.pid}`,
    );
    console.log(
      `concurrency ${settings.concurrency}, ${settings.rounds} rounds × ${settings.roundMs} ms per side and mode ` +
        `(alternating, after a ${settings.warmupMs} ms warm-up each); ev/s: median round; ` +
        'ratio: median over the adjacent (mailgate, mailauth) round pairs\n',
    );

    // Cold resolvers: nothing remembered between queries.
    const coldOurs = createResolver({
      servers: [address],
      cache: false,
      timeout: 2000,
      attempts: 2,
    });
    const coldNode = nodeResolver(address);
    const coldSides: [Side, Side] = [
      mailgateSide(coldOurs),
      mailauthSide(coldNode.resolve, coldNode.calls),
    ];

    // Neither side may cache when cold: the same question twice must reach the server twice.
    const probe = async (ask: () => Promise<unknown>) => {
      const before = (await fixture.stats()).queries;
      await ask();
      await ask();
      return (await fixture.stats()).queries - before;
    };
    const probeName = `d0.${BENCH_SUFFIX}`;
    const oursProbe = await probe(() => coldOurs.query(probeName, 'TXT'));
    const nodeProbe = await probe(() => coldNode.resolve(probeName, 'TXT'));
    console.log(
      `cache probe (the same TXT query twice): mailgate cache:false → ${oursProbe} server queries, ` +
        `node dns.promises.Resolver → ${nodeProbe} server queries`,
    );
    if (oursProbe !== 2 || nodeProbe !== 2) {
      console.log('  WARNING: a cold resolver answered from a cache; cold figures are not cold');
    }

    // Reference pass: every case once per side, one at a time, so query counts are exact.
    const references = {} as Record<Side['name'], Outcome[]>;
    const perEval = {} as Record<Side['name'], number>;
    for (const side of coldSides) {
      const before = (await fixture.stats()).queries;
      references[side.name] = await runAll(side, cases, 1);
      perEval[side.name] = ((await fixture.stats()).queries - before) / cases.length;
    }
    const ours = references.mailgate;
    const theirs = references.mailauth;
    console.log(
      `reference pass, one evaluation at a time: server queries per evaluation ` +
        `mailgate ${fmt(perEval.mailgate, 2)}, mailauth ${fmt(perEval.mailauth, 2)}`,
    );
    console.log(`  mailgate results: ${wordCounts(ours)}`);
    console.log(`  mailauth results: ${wordCounts(theirs)}`);

    const disagreements = cases.flatMap((c, i) =>
      ours[i]!.word === theirs[i]!.word ? [] : [{ c, ours: ours[i]!, theirs: theirs[i]! }],
    );
    console.log(
      `agreement: ${cases.length - disagreements.length}/${cases.length} cases give the same result word` +
        (disagreements.length ? `; ${disagreements.length} disagree:` : ''),
    );
    for (const d of disagreements) {
      console.log(`  ${d.c.ip} sender=<${d.c.sender}> helo=${d.c.helo} [${d.c.path}]`);
      console.log(`    mailgate: ${d.ours.word} ${d.ours.detail}`);
      console.log(`    mailauth: ${d.theirs.word} ${d.theirs.detail}`);
    }
    const offPlan = cases.flatMap((c, i) => (ours[i]!.word === intended(c) ? [] : [i]));
    if (offPlan.length) {
      console.log(
        `  note: ${offPlan.length} cases where mailgate's result is not the one the zone intends:`,
      );
      for (const i of offPlan.slice(0, 10)) {
        console.log(
          `    ${cases[i]!.ip} <${cases[i]!.sender}> [${cases[i]!.path}]: ${ours[i]!.word} ${ours[i]!.detail}`,
        );
      }
    }
    console.log('');

    const results: ModeResult[] = [];
    for (const mode of settings.modes) {
      let sides = coldSides;
      if (mode === 'warm') {
        const warmOurs = createResolver({
          servers: [address],
          cache: { maxEntries: 100_000 },
          timeout: 2000,
          attempts: 2,
        });
        const warmNode = nodeResolver(address);
        const memo = memoise(warmNode.resolve);
        sides = [mailgateSide(warmOurs), mailauthSide(memo.resolve, warmNode.calls)];
        for (const side of sides) await runAll(side, cases, settings.concurrency);
      }
      results.push(await measureMode(mode, sides, references, cases, settings, fixture));
    }

    // The table.
    const rows: string[][] = [['mode', 'mailgate ev/s', 'mailauth ev/s', 'ratio', 'goal', 'met']];
    for (const r of results) {
      const ratio = r.ratio;
      const goal = GOALS[r.mode];
      rows.push([
        r.mode,
        fmt(r.median.mailgate.perSecond),
        fmt(r.median.mailauth.perSecond),
        `${fmt(ratio, 2)}x`,
        `≥ ${goal}x`,
        ratio >= goal ? 'yes' : 'NO',
      ]);
    }
    console.log(table(rows));
    console.log('');

    // What stands behind the medians.
    const detail: string[][] = [
      [
        'mode/side',
        'rounds ev/s',
        'pair ratios',
        'srv q/ev',
        'sent/ev',
        'lookups/ev',
        'folded/ev',
        'srv CPU',
        'drift',
      ],
    ];
    let drifted = 0;
    for (const r of results) {
      for (const name of ['mailgate', 'mailauth'] as const) {
        const mine = r.rounds.filter((x) => x.side === name);
        const evals = mine.reduce((s, x) => s + x.evals, 0);
        const sum = (f: (x: Round) => number) => mine.reduce((s, x) => s + f(x), 0);
        const drift = sum((x) => x.drift);
        drifted += drift;
        detail.push([
          `${r.mode} ${name}`,
          mine.map((x) => fmt(x.perSecond)).join(' / '),
          name === 'mailgate' ? r.pairRatios.map((x) => `${fmt(x, 2)}x`).join(' / ') : '',
          fmt(sum((x) => x.serverQueries) / evals, 2),
          fmt(sum((x) => x.sent) / evals, 2),
          fmt(sum((x) => x.lookups) / evals, 2),
          mine[0]!.folded === undefined ? '-' : fmt(sum((x) => x.folded ?? 0) / evals, 2),
          `${fmt((100 * sum((x) => x.serverCpuShare)) / mine.length)}%`,
          `${drift}/${evals}`,
        ]);
      }
    }
    console.log(table(detail));
    console.log(
      [
        '',
        "srv q/ev: queries the fixture server received per evaluation. sent/ev: queries the side's",
        "resolver sent (mailgate: stats.sent; mailauth: calls into node's resolver). lookups/ev:",
        'lookups the SPF engine asked for, cached or not. folded/ev: lookups mailgate joined to an',
        'identical one already in flight instead of asking again (c-ares does not fold). srv CPU: the',
        "server process's CPU use during the rounds (100% = one core). drift: timed evaluations whose",
        "result word differed from the side's reference pass (e.g. timeouts under load).",
      ].join('\n'),
    );
    for (const r of results) {
      for (const round of r.rounds) {
        if (round.driftExample)
          console.log(`  drift example (${r.mode} ${round.side}): ${round.driftExample}`);
      }
    }
    if (drifted > 0) {
      console.log(
        'WARNING: some timed evaluations did not give their reference result (see drift).',
      );
    }
    return 0;
  } finally {
    await fixture.stop();
    process.off('exit', onExit);
    clearTimeout(watchdog);
  }
}

main().then(
  // Exit outright: after an error, evaluations still in flight must not hold the process.
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(
      `bench:spf failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    process.exit(1);
  },
);
