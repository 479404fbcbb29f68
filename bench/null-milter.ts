/**
 * The null milter: a bare TCP server that speaks just enough of the milter protocol to answer
 * every step at once, with its own framing and none of mailgate's code. It is the ceiling for
 * bench/milter.ts: what a milter costs when it does no work at all on this machine.
 *
 * It negotiates like a plain milter: by default it asks for every step the MTA offers and
 * answers every one (protocol flags 0 in its reply, as a libmilter filter with all callbacks and
 * no SMFIP_NR_* flags does). `--protocol=0xHEX` makes it reply with those flags instead (ANDed
 * with what the MTA offered), so the benchmark can also run it in the same shape as another
 * milter's negotiation; it then skips the replies that the SMFIP_NR_* flags it chose waive.
 *
 * Prints one stdout line when ready: `listening on inet:PORT@HOST`.
 *
 * @example
 * node --import tsx bench/null-milter.ts --listen=inet:0@127.0.0.1 --protocol=0x0
 */
import { createServer, type Socket } from 'node:net';

function setting(name: string, fallback: string): string {
  const prefix = `--${name}=`;
  const arg = process.argv.slice(2).find((a) => a.startsWith(prefix));
  return arg?.slice(prefix.length) ?? fallback;
}

const listen = setting('listen', 'inet:0@127.0.0.1');
const wantedProtocol = Number(setting('protocol', '0'));
const wantedActions = Number(setting('actions', '0'));
const spec = /^inet:(\d+)@(.+)$/.exec(listen);
if (!spec || !Number.isInteger(wantedProtocol) || !Number.isInteger(wantedActions)) {
  console.error(`null-milter: bad settings (listen ${listen}, protocol, actions)`);
  process.exit(2);
}
const port = Number(spec[1]);
const host = spec[2]!;

/** SMFIC_* command → the SMFIP_NR_* flag that waives its reply (0: always answered). */
const NO_REPLY_FLAG: Record<number, number> = {
  67: 0x001000, // CONNECT
  72: 0x002000, // HELO
  77: 0x004000, // MAIL
  82: 0x008000, // RCPT
  84: 0x010000, // DATA
  85: 0x020000, // UNKNOWN
  78: 0x040000, // EOH
  66: 0x080000, // BODY
  76: 0x000080, // HEADER
  69: 0, // end of body: always answered
};

const CONTINUE = Buffer.from([0, 0, 0, 1, 0x63]);

function serve(socket: Socket): void {
  socket.setNoDelay(true);
  let pending: Buffer = Buffer.alloc(0);
  let protocol = 0;
  socket.on('data', (chunk: Buffer) => {
    let data = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    const out: Buffer[] = [];
    let offset = 0;
    while (data.length - offset >= 5) {
      const length = data.readUInt32BE(offset);
      if (length < 1 || length > 2 * 1024 * 1024) {
        socket.destroy();
        return;
      }
      if (data.length - offset - 4 < length) break;
      const command = data[offset + 4]!;
      const body = offset + 5;
      offset += 4 + length;
      if (command === 0x4f) {
        // OPTNEG: version, actions, protocol, each a 32-bit big-endian number.
        const version = Math.min(6, data.readUInt32BE(body));
        const actions = data.readUInt32BE(body + 4) & wantedActions;
        protocol = data.readUInt32BE(body + 8) & wantedProtocol;
        const reply = Buffer.alloc(17);
        reply.writeUInt32BE(13, 0);
        reply[4] = 0x4f;
        reply.writeUInt32BE(version, 5);
        reply.writeUInt32BE(actions >>> 0, 9);
        reply.writeUInt32BE(protocol >>> 0, 13);
        out.push(reply);
      } else if (command === 0x51) {
        // QUIT
        if (out.length) socket.write(Buffer.concat(out));
        socket.end();
        return;
      } else if (command in NO_REPLY_FLAG) {
        if ((protocol & NO_REPLY_FLAG[command]!) === 0) out.push(CONTINUE);
      }
      // MACRO, ABORT and QUIT_NC need no reply.
    }
    pending = offset === data.length ? Buffer.alloc(0) : data.subarray(offset);
    if (pending.length > 0 && offset > 0) pending = Buffer.from(pending);
    data = pending;
    if (out.length === 1) socket.write(out[0]!);
    else if (out.length > 1) socket.write(Buffer.concat(out));
  });
  socket.on('error', () => socket.destroy());
}

const server = createServer(serve);
server.listen(port, host, () => {
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  process.stdout.write(`listening on inet:${bound}@${host}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The parent went away without a word: our stdin closes (with --exit-on-stdin-eof, as
// bench/milter.ts runs us), or our stdout pipe breaks.
if (process.argv.includes('--exit-on-stdin-eof')) {
  process.stdin.on('end', () => process.exit(0)).resume();
}
process.stdout.on('error', () => process.exit(0));
