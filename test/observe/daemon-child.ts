// A daemon in a process of its own, for text-format.test.ts: its logger is the one Daemon.start
// makes from the configuration, on standard output (a pipe the test reads), so that the format
// and the flush at exit are the real ones. SIGTERM closes it and exits.
import { Daemon } from '../../src/serve/index.js';

const daemon = await Daemon.start({ configPath: process.argv[2]! });
process.once('SIGTERM', () => {
  void daemon.close().then(() => process.exit(0));
});
