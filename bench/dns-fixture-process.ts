/**
 * The benchmarks' fixture DNS server, run as a child process so that its CPU work counts
 * against neither side. It serves the SPF benchmark zone (bench/zone.ts), or with
 * `--zone-json=FILE` the zone in that file (ZoneData as JSON), and speaks line-delimited JSON on
 * stdio:
 *
 *   stdout, once:        {"type":"ready","address":"127.0.0.1:PORT","pid":N}
 *   stdin  "stats\n"  →  {"type":"stats","queries":N,"cpuMicros":N}
 *
 * `queries` counts every query received since start; `cpuMicros` is this process's user+system
 * CPU time, so the parent can tell how busy the server was during a round. The process exits when
 * stdin closes or on SIGTERM/SIGINT.
 *
 * @example
 * node --import tsx bench/dns-fixture-process.ts
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { startDnsServer, type ZoneData } from '../test/support/dns-server.js';
import { buildBenchWorld } from './zone.js';

const zoneFile = process.argv
  .slice(2)
  .find((a) => a.startsWith('--zone-json='))
  ?.slice('--zone-json='.length);
const zone = zoneFile
  ? (JSON.parse(readFileSync(zoneFile, 'utf8')) as ZoneData)
  : buildBenchWorld().zone;

// TTLs longer than any run, so the warm caches never expire mid-measurement.
const server = await startDnsServer(zone, { ttl: 3600, negativeTtl: 3600 });

// The server logs every query; fold the log into a counter now and then so it stays small.
let folded = 0;
const total = () => folded + server.queries.length;
const fold = setInterval(() => {
  folded += server.queries.length;
  server.resetLog();
}, 250);

let closing = false;
async function shutdown(code: number): Promise<void> {
  if (closing) return;
  closing = true;
  clearInterval(fold);
  try {
    await server.close();
  } finally {
    process.exit(code);
  }
}

process.on('SIGTERM', () => void shutdown(0));
process.on('SIGINT', () => void shutdown(0));
// A parent that dies without a word closes our stdin; stdout errors (EPIPE) mean the same.
process.stdout.on('error', () => void shutdown(0));

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() !== 'stats') return;
  const cpu = process.cpuUsage();
  process.stdout.write(
    `${JSON.stringify({ type: 'stats', queries: total(), cpuMicros: cpu.user + cpu.system })}\n`,
  );
});
lines.on('close', () => void shutdown(0));

process.stdout.write(
  `${JSON.stringify({ type: 'ready', address: server.address, pid: process.pid })}\n`,
);
