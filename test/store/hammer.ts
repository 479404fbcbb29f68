/**
 * A child process for the cross-process test: opens the store at argv[2] with every pooled
 * connection open, prints `ready`, waits for a line on stdin (the parent sends it once every
 * child is ready), then makes ten first attempts on each of argv[3] keys at once and prints, as
 * JSON, the indexes of the keys it created.
 */
import { once } from 'node:events';
import { openStore } from '../../src/store/index.js';

const [url, keyCount] = process.argv.slice(2);
const poolSize = 10;
/** Several attempts per key from each process, so that attempts on one key overlap. */
const ATTEMPTS_PER_KEY = 10;
const store = await openStore(url ?? '', { busyTimeoutMs: 20_000, poolSize });
await Promise.all(Array.from({ length: poolSize }, () => store.ping()));
process.stdout.write('ready\n');
await once(process.stdin, 'data');
const results = await Promise.all(
  Array.from({ length: Number(keyCount) * ATTEMPTS_PER_KEY }, (_, n) =>
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
await store.close();
process.stdout.write(
  `${JSON.stringify(results.flatMap((result, n) => (result.created ? [n % Number(keyCount)] : [])))}\n`,
);
process.stdin.destroy();
