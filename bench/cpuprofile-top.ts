/**
 * Summarise a V8 .cpuprofile (from `node --cpu-prof`): where the busy time went (samples other
 * than `(idle)`), by function (self time), by file (self time) and by function including what it
 * called (inclusive time), each as a share of the busy time.
 *
 * Time a function spends in native code it calls through an addon (better-sqlite3's statements,
 * for instance) is counted as that function's self time: V8 samples no frame for it.
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
  /** Share of the busy time. */
  share: number;
  ms: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Sampled time outside `(idle)`. */
  busyMs: number;
  /** Time in `(garbage collector)`, as a share of the busy time. */
  gcShare: number;
  functions: ProfileEntry[];
  files: ProfileEntry[];
  /** Functions of this repository's sources with what they called, by inclusive time. */
  inclusive: ProfileEntry[];
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function shortUrl(url: string): string {
  if (url === '') return '(native)';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  return path.startsWith(ROOT) ? relative(ROOT, path) : path;
}

function frameName(node: ProfileNode): string {
  const frame = node.callFrame;
  const fn = frame.functionName || '(anonymous)';
  return frame.url ? `${fn} ${shortUrl(frame.url)}:${frame.lineNumber + 1}` : fn;
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
  const parent = new Map<number, number>();
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parent.set(child, node.id);
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
  const inclusive = new Map<string, number>();
  let idle = 0;
  let gc = 0;
  for (const [id, ms] of selfMs) {
    const node = byId.get(id)!;
    const fn = node.callFrame.functionName;
    if (fn === '(idle)') {
      idle += ms;
      continue;
    }
    if (fn === '(garbage collector)') gc += ms;
    const name = frameName(node);
    functions.set(name, (functions.get(name) ?? 0) + ms);
    const url = node.callFrame.url;
    const fileKey = url
      ? shortUrl(url).replace(/^node_modules\/([^/]+)\/.*$/, 'node_modules/$1')
      : name;
    files.set(fileKey, (files.get(fileKey) ?? 0) + ms);
    // Each of our functions on the stack once, however deep the recursion.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!;
      if (!shortUrl(frame.callFrame.url).startsWith('src/')) continue;
      const key = frameName(frame);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + ms);
    }
  }
  const busyMs = totalMs - idle;
  const rank = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ms]) => ({ name, ms, share: busyMs ? ms / busyMs : 0 }));
  return {
    totalMs,
    busyMs,
    gcShare: busyMs ? gc / busyMs : 0,
    functions: rank(functions),
    files: rank(files),
    inclusive: rank(inclusive),
  };
}

/** The summary as text, for a report. */
export function formatSummary(s: ProfileSummary): string {
  const pct = (x: number) => `${(100 * x).toFixed(1).padStart(5)}%`;
  return [
    `${(s.totalMs / 1000).toFixed(1)} s sampled, ${(s.busyMs / 1000).toFixed(1)} s busy; ` +
      `shares below are of the busy time; garbage collector ${pct(s.gcShare).trim()}`,
    '',
    'self time by function (native code called from a function counts as its own):',
    ...s.functions.map((e) => `  ${pct(e.share)}  ${e.name}`),
    '',
    'self time by file:',
    ...s.files.map((e) => `  ${pct(e.share)}  ${e.name}`),
    '',
    'inclusive time, functions of src/:',
    ...s.inclusive.map((e) => `  ${pct(e.share)}  ${e.name}`),
  ].join('\n');
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
