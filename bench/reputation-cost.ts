/**
 * What counting reputation costs each decision, part of npm run bench:registry (run alone with
 * `node --import tsx bench/reputation-cost.ts`). The workload: 20,000 decisions, each recording
 * one SPF event for its sender domain (2,000 of them) and its client network (500 of them),
 * through the ReputationRecorder the daemon uses, into a fresh SQLite file and, when PostgreSQL
 * can be started here, a fresh PostgreSQL database.
 *
 * Two figures per store: the request path (what `record` costs the decision: only memory), and
 * everything (record plus the batched writes, until the last batch is committed), both per
 * decision; the recorder's own writes run between chunks of decisions, as they do between
 * requests. No peer keeps such counts, so the figure is set beside a plain SPF check measured in
 * the same run (by bench:registry): the share of a decision's cheapest check it adds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ReputationRecorder, reputationSubjects, spfEvent } from '../src/reputation/index.js';
import { openStore, type Store } from '../src/store/index.js';
import { postgresAvailable, startPostgres } from '../test/support/postgres.js';
import { fmt, table } from './common.js';

const DECISIONS = 20_000;
const DOMAINS = 2_000;
const NETWORKS = 500;
const RESULTS = ['pass', 'pass', 'pass', 'softfail', 'fail', 'none'] as const;
/** Decisions between two turns of the event loop. */
const CHUNK = 250;

interface Cost {
  store: string;
  requestMicros: number;
  totalMicros: number;
  rows: number;
}

async function measure(name: string, store: Store): Promise<Cost> {
  const problems: string[] = [];
  const logger = {
    info: () => {},
    warn: (fields: Record<string, unknown>, message: string) => {
      problems.push(`${message} ${JSON.stringify(fields)}`);
    },
  };
  const recorder = new ReputationRecorder(store, { logger });
  const now = Date.now();
  const started = performance.now();
  let recording = 0;
  for (let i = 0; i < DECISIONS; i++) {
    // Decisions come from many connections: the writes the recorder starts run in between.
    if (i % CHUNK === 0 && i > 0) {
      const paused = performance.now();
      await new Promise((resolve) => setImmediate(resolve));
      recording -= performance.now() - paused;
    }
    const n = i % NETWORKS;
    const subjects = reputationSubjects({
      ip: `10.${(n >> 8) & 0xff}.${n & 0xff}.${1 + (i % 200)}`,
      senderDomain: `d${i % DOMAINS}.bench`,
    });
    recorder.record(subjects, spfEvent(RESULTS[i % RESULTS.length]!)!, now + i);
  }
  recording += performance.now() - started;
  await recorder.close();
  const done = performance.now();
  if (problems.length) throw new Error(`${name}: ${problems.join('; ')}`);
  const stats = recorder.stats();
  return {
    store: name,
    requestMicros: (recording * 1000) / DECISIONS,
    totalMicros: ((done - started) * 1000) / DECISIONS,
    rows: stats.written,
  };
}

/**
 * Measures and prints the cost per decision for SQLite and, where it can be started,
 * PostgreSQL.
 *
 * @example
 * await reputationCost();
 */
export async function reputationCost(spfMicros?: number): Promise<void> {
  const costs: Cost[] = [];
  const notes: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'mailgate-bench-reputation-'));
  try {
    const sqlite = await openStore(`sqlite:${join(dir, 'reputation.db')}`);
    try {
      costs.push(await measure('SQLite', sqlite));
    } finally {
      await sqlite.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const missing = postgresAvailable();
  if (missing) {
    notes.push(
      `PostgreSQL not measured: ${missing} is missing (npm test's pretest installs it as root)`,
    );
  } else {
    const pg = await startPostgres();
    try {
      const store = await openStore(await pg.createDatabase('bench_reputation'));
      try {
        costs.push(await measure('PostgreSQL', store));
      } finally {
        await store.close();
      }
    } finally {
      await pg.stop();
    }
  }
  console.log(
    `reputation updates: ${fmt(DECISIONS)} decisions, 2 subjects each (${fmt(DOMAINS)} domains, ${fmt(NETWORKS)} networks), batched by the recorder`,
  );
  const share = (micros: number) =>
    spfMicros === undefined ? '-' : `${fmt((100 * micros) / spfMicros, 0)}%`;
  console.log(
    table([
      [
        'store',
        'µs/decision on the request path',
        'µs/decision with the writes',
        'vs a plain SPF check',
        'rows written',
      ],
      ...costs.map((c) => [
        c.store,
        fmt(c.requestMicros, 2),
        fmt(c.totalMicros, 2),
        share(c.totalMicros),
        fmt(c.rows),
      ]),
    ]),
  );
  if (spfMicros !== undefined) {
    console.log(`(a plain SPF check, warm DNS, measured above: ${fmt(spfMicros, 1)} µs)`);
  }
  for (const note of notes) console.log(note);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  reputationCost().catch((err: unknown) => {
    console.error(`reputation cost: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 1;
  });
}
