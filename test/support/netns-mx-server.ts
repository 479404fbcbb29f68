/**
 * The fixture MX of test/support/netns-mx.ts, run inside its network namespace as a child
 * process (`ip netns exec NAME node --import tsx netns-mx-server.ts SPEC`). SPEC is JSON: the
 * address to listen on and the servers (test/notify/support.ts: startMx with refusals scripted by
 * the recipient's local part, or startRawMx saying nothing at all).
 *
 * Protocol, one JSON object a line: on stdout `{"ready":[ports]}` once every server listens (or
 * `{"error":"..."}` and exit 1); for every `snapshot` line on stdin, `{"snapshot":N,
 * "connections":C,"commands":[...]}`, N counting from 1: what the servers have seen so far, all
 * of them together. Writes to a pipe are synchronous on Linux, so a snapshot reflects everything
 * the servers did before it was asked for. The end of stdin (the test is over, or died) ends the
 * process.
 */
import { createInterface } from 'node:readline';
import { type Mx, type RawMx, type Refusal, startMx, startRawMx } from '../notify/support.js';

/** One server of the fixture MX. */
export interface NamespaceMxServer {
  port: number;
  /** `smtp`: smtp-server, accepting unless scripted; `silent`: accepts connections, never speaks. */
  kind: 'smtp' | 'silent';
  /** smtp: the host name in the banner and the EHLO reply (default mx.remote.test). */
  name?: string;
  /** smtp: refusals of RCPT TO, by the address's local part (lower case). */
  rcpt?: Record<string, Refusal>;
}

export interface NamespaceMxSpec {
  address: string;
  servers: NamespaceMxServer[];
}

function say(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as NamespaceMxSpec;
  const servers: (Mx | RawMx)[] = [];
  try {
    for (const server of spec.servers) {
      if (server.kind === 'silent') {
        servers.push(
          await startRawMx({
            host: spec.address,
            port: server.port,
            banner: null,
            reply: () => null,
          }),
        );
      } else {
        const refusals = server.rcpt ?? {};
        servers.push(
          await startMx({
            host: spec.address,
            port: server.port,
            ...(server.name !== undefined ? { name: server.name } : {}),
            rcpt: (address) => refusals[address.slice(0, address.lastIndexOf('@')).toLowerCase()],
          }),
        );
      }
    }
  } catch (error) {
    say({ error: (error as Error).message });
    process.exit(1);
  }
  say({ ready: servers.map((s) => s.port) });
  let asked = 0;
  const input = createInterface({ input: process.stdin });
  input.on('line', (line) => {
    if (line.trim() !== 'snapshot') return;
    asked++;
    say({
      snapshot: asked,
      connections: servers.reduce((n, s) => n + s.connections, 0),
      commands: servers.flatMap((s) => s.commands),
    });
  });
  input.on('close', () => {
    // A silent server's connections stay open; the process ends with them.
    void Promise.all(servers.map((s) => s.close())).finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  });
}

void main();
