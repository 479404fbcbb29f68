// Remote mail hosts for the notify tests: smtp-server as a real MX with scripted answers, and a
// raw TCP server for what smtp-server will not do (say nothing, say garbage, flood).
import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

/** An SMTP reply to give instead of accepting. */
export interface Refusal {
  code: number;
  message: string;
}

export interface MxOptions {
  /** Address to listen on. Default 127.0.0.1. */
  host?: string;
  /** Port to listen on. Default: an ephemeral one. */
  port?: number;
  /** The host name in the banner and the EHLO reply. */
  name?: string;
  /** Text after `ESMTP` in the banner. */
  banner?: string;
  /** Refuse the connection with this reply instead of a 220 banner. */
  connect?: Refusal;
  mail?: (address: string) => Refusal | undefined;
  rcpt?: (address: string) => Refusal | undefined;
  /** Refuse the message after DATA. */
  data?: Refusal;
  /** Offer STARTTLS (with smtp-server's built-in test certificate). Default false. */
  starttls?: boolean;
}

export interface MxDelivery {
  from: string;
  to: string[];
  raw: Buffer;
  secure: boolean;
}

export interface Mx {
  host: string;
  port: number;
  /** Every command received, across connections (`MAIL FROM:<>`, ...). */
  commands: string[];
  deliveries: MxDelivery[];
  /** Connections accepted so far. */
  connections: number;
  close(): Promise<void>;
}

function refuse(refusal: Refusal): Error {
  return Object.assign(new Error(refusal.message), { responseCode: refusal.code });
}

/** smtp-server on loopback with scripted refusals. */
export async function startMx(options: MxOptions = {}): Promise<Mx> {
  const commands: string[] = [];
  const deliveries: MxDelivery[] = [];
  const state = { connections: 0 };
  const ignore = () => {};
  const logger = {
    level: ignore,
    trace: ignore,
    info: ignore,
    warn: ignore,
    error: ignore,
    fatal: ignore,
    debug: (entry: { tnx?: string } | undefined, ...args: unknown[]) => {
      if (entry?.tnx === 'command') commands.push(String(args[1]));
    },
  };
  const serverOptions: SMTPServerOptions = {
    name: options.name ?? 'mx.remote.test',
    authOptional: true,
    disabledCommands: options.starttls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    // With STARTTLS on, a logger would make smtp-server warn about its test certificate.
    logger: options.starttls ? false : (logger as unknown as SMTPServerOptions['logger']),
    closeTimeout: 500,
    onConnect(_session, callback) {
      state.connections++;
      callback(options.connect ? refuse(options.connect) : undefined);
    },
    onMailFrom(address, _session, callback) {
      const refusal = options.mail?.(address.address);
      callback(refusal ? refuse(refusal) : undefined);
    },
    onRcptTo(address, _session, callback) {
      const refusal = options.rcpt?.(address.address);
      callback(refusal ? refuse(refusal) : undefined);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (options.data) return callback(refuse(options.data));
        const envelope = session.envelope;
        deliveries.push({
          from: envelope.mailFrom ? envelope.mailFrom.address : '',
          to: envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks),
          secure: session.secure,
        });
        callback();
      });
    },
  };
  if (options.banner !== undefined) serverOptions.banner = options.banner;
  const server = new SMTPServer(serverOptions);
  server.on('error', () => {});
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    host,
    port,
    commands,
    deliveries,
    get connections() {
      return state.connections;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface RawMxOptions {
  host?: string;
  port?: number;
  /** Written on connect (CRLF added unless it ends with LF); null: never say anything. */
  banner: string | null;
  /** The reply to a command line (CRLF added), or null for no reply. Default: 250 OK. */
  reply?: (line: string) => string | null;
  /** Written right after the banner, as is. */
  flood?: number;
}

export interface RawMx {
  host: string;
  port: number;
  commands: string[];
  connections: number;
  /** Connections still open on the server side. */
  open(): number;
  close(): Promise<void>;
}

/** A bare TCP server speaking only what it is told to. */
export async function startRawMx(options: RawMxOptions): Promise<RawMx> {
  const commands: string[] = [];
  const sockets = new Set<Socket>();
  const state = { connections: 0 };
  const server: Server = createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const write = (text: string) => {
      if (!socket.destroyed) socket.write(text.endsWith('\n') ? text : `${text}\r\n`);
    };
    if (options.banner !== null) write(options.banner);
    if (options.flood) {
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const pump = () => {
        while (!socket.destroyed && socket.write(chunk)) {}
        if (!socket.destroyed) socket.once('drain', pump);
      };
      pump();
    }
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl).replace(/\r$/, '');
        buffered = buffered.slice(nl + 1);
        commands.push(line);
        const answer = options.reply ? options.reply(line) : '250 OK';
        if (answer !== null) write(answer);
        if (/^QUIT/i.test(line)) socket.end();
      }
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    host,
    port: (server.address() as AddressInfo).port,
    commands,
    get connections() {
      return state.connections;
    },
    open: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Start servers that must share one port on different loopback addresses (mail hosts of one
 * domain all get the same port): the first on an ephemeral port, the rest on that port, trying
 * again when another process holds it somewhere.
 */
export async function onOnePort<T extends { port: number; close(): Promise<void> }>(
  starters: ((port: number) => Promise<T>)[],
): Promise<T[]> {
  for (let attempt = 0; ; attempt++) {
    const first = await starters[0]!(0);
    const rest: T[] = [];
    try {
      for (const start of starters.slice(1)) rest.push(await start(first.port));
      return [first, ...rest];
    } catch (err) {
      await Promise.all([first, ...rest].map((s) => s.close()));
      if (attempt >= 9) throw err;
    }
  }
}

/** Wait until `predicate` holds, polling, at most `ms`. */
export async function eventually(predicate: () => boolean, ms = 2_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

/** Every character printable ASCII (no CR, LF, NUL or other control). */
export const PRINTABLE = /^[\x20-\x7e]*$/;
