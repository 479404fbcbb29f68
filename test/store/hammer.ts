/**
 * A child process for the cross-process tests: opens the store at argv[2] with every pooled
 * connection open, prints `ready`, waits for a line on stdin (the parent sends it once every
 * child is ready), then works at once and prints its results as JSON:
 *
 * - `first-attempts` (the default mode, argv[4]): ten first attempts on each of argv[3] keys;
 *   prints the indexes of the keys it created;
 * - `rate`: argv[3] × 10 `takeRate` calls on one key, within one window and under its limit;
 *   prints the count each call got.
 */
import { once } from 'node:events';
import { openStore } from '../../src/store/index.js';

const [url, keyCount, mode = 'first-attempts'] = process.argv.slice(2);
const poolSize = 10;
/** Several attempts per key from each process, so that attempts on one key overlap. */
const ATTEMPTS_PER_KEY = 10;
const calls = Number(keyCount) * ATTEMPTS_PER_KEY;
const store = await openStore(url ?? '', { busyTimeoutMs: 20_000, poolSize });
await Promise.all(Array.from({ length: poolSize }, () => store.ping()));
process.stdout.write('ready\n');
await once(process.stdin, 'data');
let output: number[];
if (mode === 'rate') {
  const start = Date.now();
  const taken = await Promise.all(
    Array.from({ length: calls }, () =>
      // One window for the whole run however slow the machine, and a limit no run reaches.
      store.takeRate('hammer', start, 3_600_000, Number.MAX_SAFE_INTEGER),
    ),
  );
  output = taken.map((t) => t.count);
} else {
  const results = await Promise.all(
    Array.from({ length: calls }, (_, n) =>
      store.firstAttempt(
        {
          client: '198.51.100.7',
          sender: `s${n % Number(keyCount)}@example.org`,
          recipient: 'r@example.net',
        },
        'greylisted',
        Date.now(),
      ),
    ),
  );
  output = results.flatMap((result, n) => (result.created ? [n % Number(keyCount)] : []));
}
await store.close();
process.stdout.write(`${JSON.stringify(output)}\n`);
process.stdin.destroy();
