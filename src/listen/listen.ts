/**
 * Binding a net.Server to a listen spec: TCP on a host and port, or a unix socket whose stale
 * file (left by a crashed daemon) is removed safely and whose mode is set after binding.
 */
import { chmod, lstat, unlink } from 'node:fs/promises';
import { type AddressInfo, connect, type Server } from 'node:net';
import { formatListenSpec, type ListenSpec, parseListenSpec } from './spec.js';

export interface ListenOptions {
  /** File mode of a unix socket, e.g. 0o660; left as the umask made it when absent. */
  socketMode?: number;
}

/** Where a server ended up listening; `spec` is the effective spec (real port, real path). */
export type BoundAddress = ListenSpec & { spec: string };

/** A unix socket path that cannot be taken over: a regular file, a live socket, ... */
export class SocketPathError extends Error {
  override name = 'SocketPathError';
}

// A connect to a unix socket answers at once; this only bounds a wedged listener.
const PROBE_TIMEOUT_MS = 2000;

/**
 * Whether a process accepts connections on the unix socket at `path`: 'live', 'stale' (nobody
 * listens: ECONNREFUSED) or 'gone' (removed meanwhile). Anything else is an error, so that a
 * socket we cannot judge is never removed.
 */
function probeUnixSocket(path: string): Promise<'live' | 'stale' | 'gone'> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('live');
    }, PROBE_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve('live');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      if (err.code === 'ECONNREFUSED') resolve('stale');
      else if (err.code === 'ENOENT') resolve('gone');
      else
        reject(
          new SocketPathError(`${path}: cannot tell whether the socket is in use: ${err.message}`),
        );
    });
  });
}

/**
 * Remove a stale unix socket file, and only that: the path must be a socket (never a regular
 * file, a directory or a symlink) and connecting to it must be refused (no live listener).
 *
 * @example
 * await removeStaleSocket('/run/mailgate/milter.sock')  // gone if stale; throws if live
 */
export async function removeStaleSocket(path: string): Promise<void> {
  let info: Awaited<ReturnType<typeof lstat>>;
  try {
    info = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!info.isSocket()) {
    throw new SocketPathError(`${path} exists and is not a socket; refusing to remove it`);
  }
  const state = await probeUnixSocket(path);
  if (state === 'live') {
    throw new SocketPathError(`${path} is in use by a running process; refusing to remove it`);
  }
  if (state === 'stale') {
    try {
      await unlink(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

function listenOnce(server: Server, options: Parameters<Server['listen']>[0]): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(options, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * Make `server` listen on `spec` and resolve with the bound address once it listens. For unix
 * sockets a stale socket file is removed first (see `removeStaleSocket`) and the mode is set
 * after binding (there is a short window where the umask decides; run under a umask that is
 * safe on its own, e.g. 007, when that matters).
 *
 * @example
 * const bound = await listenOn(net.createServer(), 'inet:0@127.0.0.1');
 * bound.spec  // 'inet:41234@127.0.0.1' — the ephemeral port tests connect to
 */
export async function listenOn(
  server: Server,
  spec: string | ListenSpec,
  options: ListenOptions = {},
): Promise<BoundAddress> {
  const parsed = typeof spec === 'string' ? parseListenSpec(spec) : spec;
  try {
    return await bind(server, parsed, options);
  } catch (err) {
    // The address as configured (`localhost`, not what it resolved to), for the one line the
    // operator reads.
    if (err instanceof Error) (err as ListenFailure).listenSpec ??= formatListenSpec(parsed);
    throw err;
  }
}

/** A failure to listen, with the listen spec it was for. */
export type ListenFailure = Error & { listenSpec?: string };

async function bind(
  server: Server,
  parsed: ListenSpec,
  options: ListenOptions,
): Promise<BoundAddress> {
  if (parsed.kind === 'unix') {
    const mode = options.socketMode;
    if (mode !== undefined && !(Number.isInteger(mode) && mode >= 0 && mode <= 0o7777)) {
      throw new RangeError(`socket mode ${String(mode)} is not a file mode (0 to 0o7777)`);
    }
    await removeStaleSocket(parsed.path);
    await listenOnce(server, { path: parsed.path });
    if (mode !== undefined) {
      try {
        await chmod(parsed.path, mode);
      } catch (err) {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        throw err;
      }
    }
    return { ...parsed, spec: formatListenSpec(parsed) };
  }
  // inet6 means IPv6 only: a spec says what it listens on, not more.
  await listenOnce(server, {
    host: parsed.host,
    port: parsed.port,
    ipv6Only: parsed.kind === 'inet6',
  });
  const address = server.address() as AddressInfo;
  const bound: ListenSpec = {
    kind: address.family === 'IPv6' ? 'inet6' : 'inet',
    host: address.address,
    port: address.port,
  };
  return { ...bound, spec: formatListenSpec(bound) };
}
