// Spawned by recorder.test.ts: records an event with a flush a minute away and neither flushes
// nor closes. The process must still exit at once: the recorder's timers are unref'd.
import { ReputationRecorder } from '../../src/reputation/index.js';

const store = {
  description: 'child',
  addReputation: () => Promise.resolve(),
};
const logger = { info: () => {}, warn: () => {} };
const recorder = new ReputationRecorder(store, { logger, flushMs: 60_000 });
recorder.record(['domain:example.org'], 'spf:pass', 1_000);
const slow = new ReputationRecorder(store, { logger, flushMs: 60_000, flushRows: 1 });
slow.record(['domain:example.org'], 'spf:pass', 1_000);
process.stdout.write(`pending ${recorder.stats().pending}\n`);
