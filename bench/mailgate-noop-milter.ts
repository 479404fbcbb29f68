/**
 * The no-op mailgate milter for bench/milter.ts, run as a child process so that its CPU is its
 * own. Its handler does nothing and says so: it has only the one callback every milter is asked
 * (end of message), so negotiation asks the MTA to skip every other step, as a no-op written with
 * the library would.
 *
 * With `--every-step` it has a callback for every step instead, each returning 'continue', so the
 * MTA sends and waits for every step: the conversation a plain milter (and the null milter) has,
 * which measures the library's cost per step rather than the round trips negotiation saves.
 *
 * Prints one stdout line when ready: `listening on inet:PORT@HOST`.
 *
 * @example
 * node --import tsx bench/mailgate-noop-milter.ts --listen=inet:0@127.0.0.1 [--every-step]
 */
import {
  createMilterServer,
  type MilterDefinition,
  type MilterHandler,
} from '../src/milter/index.js';

const prefix = '--listen=';
const listen =
  process.argv
    .slice(2)
    .find((a) => a.startsWith(prefix))
    ?.slice(prefix.length) ?? 'inet:0@127.0.0.1';

const onlyEom: MilterHandler = { eom: () => 'continue' };

const everyStep: MilterHandler = {
  connect: () => 'continue',
  helo: () => 'continue',
  envfrom: () => 'continue',
  envrcpt: () => 'continue',
  data: () => 'continue',
  header: () => 'continue',
  eoh: () => 'continue',
  body: () => 'continue',
  eom: () => 'continue',
};

const noop: MilterDefinition = process.argv.includes('--every-step')
  ? { name: 'noop-every-step', handler: () => everyStep }
  : { name: 'noop', handler: () => onlyEom };

const server = createMilterServer(noop, { listen });
const { address } = await server.listen();
process.stdout.write(`listening on ${address}\n`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void server.close(2000).then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The parent went away without a word: our stdin closes (with --exit-on-stdin-eof, as
// bench/milter.ts runs us), or our stdout pipe breaks.
if (process.argv.includes('--exit-on-stdin-eof')) process.stdin.on('end', stop).resume();
process.stdout.on('error', stop);
