/**
 * The fixture DNS server (bench/dns-fixture-process.ts, the same process and line protocol) on a
 * port given with `--port=N` instead of an ephemeral one. It is for resolvers that only ask
 * port 53: pyspf-milter's DNS library (pydns) takes its servers from /etc/resolv.conf, which has
 * no port. The benchmark runs it inside a network namespace of its own, where 127.0.0.1:53 is
 * free and nobody else's.
 *
 * startDnsServer (test/support/dns-server.ts) binds UDP to port 0, then TCP to the port UDP got;
 * here a UDP bind to port 0 binds the port asked for, so TCP follows it there too. Nothing else
 * about the server changes.
 *
 * @example
 * ip netns exec bench node --import tsx bench/dns-fixture-on-port.ts --port=53 --zone-json=zone.json
 */
import { Socket } from 'node:dgram';

const arg = process.argv
  .slice(2)
  .find((a) => a.startsWith('--port='))
  ?.slice('--port='.length);
const port = Number(arg);
if (!(Number.isInteger(port) && port > 0 && port < 65536)) {
  process.stderr.write(`dns-fixture-on-port: --port=N (1 to 65535) is required, got ${arg}\n`);
  process.exit(2);
}

type Bind = (this: Socket, ...args: unknown[]) => Socket;
const bind = Socket.prototype.bind as unknown as Bind;
(Socket.prototype as unknown as { bind: Bind }).bind = function (this: Socket, ...args: unknown[]) {
  if (args[0] === 0) args[0] = port;
  return bind.apply(this, args);
};

await import('./dns-fixture-process.js');
