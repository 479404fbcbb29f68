/**
 * src/listen — where a daemon listens: parsing listen specs as MTAs write them (`inet:PORT@HOST`,
 * `inet6:PORT@HOST`, `unix:/path`, `local:/path`) and binding a net.Server to one, with safe
 * removal of stale unix sockets and a socket mode. Shared by the milter server and the policy
 * server. Imports nothing of ours.
 */
export {
  type BoundAddress,
  type ListenFailure,
  type ListenOptions,
  listenOn,
  removeStaleSocket,
  SocketPathError,
} from './listen.js';
export {
  DEFAULT_INET_HOST,
  DEFAULT_INET6_HOST,
  formatListenSpec,
  type ListenSpec,
  ListenSpecError,
  parseListenSpec,
} from './spec.js';
