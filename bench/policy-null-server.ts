/**
 * The policy benchmark's ceiling: a Postfix policy server that decides nothing. It reads each
 * request up to its empty line (a Buffer scan for "\n\n", no parsing) and answers
 * `action=DUNNO`. Run as a child process; prints `listening on inet:PORT@127.0.0.1` when ready and
 * exits when stdin closes (with --exit-on-stdin-eof) or on SIGTERM.
 *
 * @example
 * node --import tsx bench/policy-null-server.ts --port=0 --exit-on-stdin-eof
 */
import { createServer, type Socket } from 'node:net';

const REPLY = Buffer.from('action=DUNNO\n\n');
const END = Buffer.from('\n\n');

function serve(socket: Socket): void {
  socket.setNoDelay(true);
  let pending: Buffer | undefined;
  socket.on('data', (chunk: Buffer) => {
    const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    let start = 0;
    let requests = 0;
    for (;;) {
      const end = buf.indexOf(END, start);
      if (end < 0) break;
      requests++;
      start = end + 2;
    }
    pending = start < buf.length ? buf.subarray(start) : undefined;
    if (requests === 1) socket.write(REPLY);
    else if (requests > 1) socket.write(Buffer.concat(Array(requests).fill(REPLY)));
  });
  socket.on('error', () => socket.destroy());
}

const portArg = process.argv.find((a) => a.startsWith('--port='))?.slice('--port='.length);
const server = createServer(serve);
server.listen(Number(portArg ?? 0), '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  process.stdout.write(`listening on inet:${port}@127.0.0.1\n`);
});
process.on('SIGTERM', () => process.exit(0));
if (process.argv.includes('--exit-on-stdin-eof')) {
  process.stdin.on('end', () => process.exit(0)).resume();
}
