/**
 * Summarise a V8 .cpuprofile (from `node --cpu-prof`): the functions with the most self time,
 * and the source files with the most self time, as shares of the samples.
 *
 * @example
 * node --import tsx bench/cpuprofile-top.ts var/CPU.20240101.cpuprofile --top=30
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  share: number;
  ms: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Samples outside idle, program and garbage collector, as a share of all. */
  busyShare: number;
  functions: ProfileEntry[];
  files: ProfileEntry[];
  /** Time in `(garbage collector)`, as a share of all samples. */
  gcShare: number;
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function shortUrl(url: string): string {
  if (url === '') return '(native)';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  return path.startsWith(ROOT) ? relative(ROOT, path) : path;
}

/**
 * Read and summarise one profile.
 *
 * @example
 * const s = summariseProfile('/tmp/x.cpuprofile', 20);
 * s.functions[0]   // { name: 'decode src/policyd/codec.ts:120', share: 0.12, ms: 480 }
 */
export function summariseProfile(file: string, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfMs = new Map<number, number>();
  let totalMs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    totalMs += ms;
    const id = profile.samples[i]!;
    selfMs.set(id, (selfMs.get(id) ?? 0) + ms);
  }
  const functions = new Map<string, number>();
  const files = new Map<string, number>();
  let idle = 0;
  let gc = 0;
  for (const [id, ms] of selfMs) {
    const frame = byId.get(id)!.callFrame;
    const fn = frame.functionName || '(anonymous)';
    if (fn === '(idle)' || fn === '(program)') idle += ms;
    if (fn === '(garbage collector)') gc += ms;
    const where = shortUrl(frame.url);
    const key = frame.url ? `${fn} ${where}:${frame.lineNumber + 1}` : fn;
    functions.set(key, (functions.get(key) ?? 0) + ms);
    const fileKey = frame.url
      ? where.replace(/^node_modules\/([^/]+)\/.*$/, 'node_modules/$1')
      : fn;
    files.set(fileKey, (files.get(fileKey) ?? 0) + ms);
  }
  const rank = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ms]) => ({ name, ms, share: totalMs ? ms / totalMs : 0 }));
  return {
    totalMs,
    busyShare: totalMs ? (totalMs - idle - gc) / totalMs : 0,
    functions: rank(functions),
    files: rank(files),
    gcShare: totalMs ? gc / totalMs : 0,
  };
}

/** The summary as text, for a report. */
export function formatSummary(s: ProfileSummary): string {
  const pct = (x: number) => `${(100 * x).toFixed(1).padStart(5)}%`;
  const lines = [
    `${(s.totalMs / 1000).toFixed(1)} s sampled; garbage collector ${pct(s.gcShare).trim()}`,
    '',
    'self time by function:',
    ...s.functions.map((e) => `  ${pct(e.share)}  ${e.name}`),
    '',
    'self time by file:',
    ...s.files.map((e) => `  ${pct(e.share)}  ${e.name}`),
  ];
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv.slice(2).find((a) => !a.startsWith('--'));
  const top = Number(
    process.argv.find((a) => a.startsWith('--top='))?.slice('--top='.length) ?? 25,
  );
  if (!file) {
    process.stderr.write('usage: cpuprofile-top FILE.cpuprofile [--top=N]\n');
    process.exit(2);
  }
  process.stdout.write(`${formatSummary(summariseProfile(file, top))}\n`);
}
