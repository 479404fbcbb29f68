/**
 * Connection classes, as pymilter's bms.py sorts its clients: whom we serve (INTERNAL), whom we
 * take mail from on others' behalf (TRUSTED), clients that look like end-user machines (DYNAMIC),
 * and everyone else (EXTERNAL). Later policy decides per class; this only classifies, with the
 * reasons that led there.
 */
import { type IpNetwork, inNetworks, parseIp, parseNetwork } from '../dns/address.js';

export type ConnectionClass = 'INTERNAL' | 'TRUSTED' | 'DYNAMIC' | 'EXTERNAL';

/** What is known of the client when it is classified. */
export interface ClassifyInput {
  ip: string;
  /** The client authenticated with SMTP AUTH. */
  authenticated?: boolean;
  /** The reverse-DNS finding, when it was looked up (see the ptr check). */
  ptr?: { verified: boolean; name?: string; dynamic: boolean; tempfail?: boolean };
}

/** The networks that decide; written as CIDRs or single addresses. */
export interface ClassifyOptions {
  /** `internal_connect`: our own clients. */
  internalNetworks?: readonly string[];
  /** `trusted_relay`: relays whose mail we accept as if it were ours to check no further. */
  trustedRelays?: readonly string[];
}

export interface Classification {
  class: ConnectionClass;
  /** Stable words that explain the class, e.g. `internal-network`, `smtp-auth`, `no-verified-ptr`. */
  reasons: string[];
}

/** Parsed networks, so that a server classifies each connection without parsing again. */
export interface ClassifyNetworks {
  internal: IpNetwork[];
  trusted: IpNetwork[];
}

/**
 * Parse the configured networks once; throws naming the first entry that is not a network.
 *
 * @example
 * const networks = classifyNetworks({ internalNetworks: ['10.0.0.0/8'], trustedRelays: [] });
 */
export function classifyNetworks(options: ClassifyOptions): ClassifyNetworks {
  const parse = (list: readonly string[] | undefined, key: string) =>
    (list ?? []).map((entry) => {
      const network = parseNetwork(entry.trim());
      if (!network) throw new Error(`${key}: not an address or network: ${entry}`);
      return network;
    });
  return {
    internal: parse(options.internalNetworks, 'internal_connect'),
    trusted: parse(options.trustedRelays, 'trusted_relay'),
  };
}

/**
 * Classify a connection. INTERNAL wins over TRUSTED, which wins over DYNAMIC; a client that is
 * none of these is EXTERNAL. Without a PTR finding a client cannot be DYNAMIC.
 *
 * @example
 * classifyConnection({ ip: '192.0.2.1', ptr: { verified: false, dynamic: false } }, networks)
 * // { class: 'DYNAMIC', reasons: ['no-verified-ptr'] }
 */
export function classifyConnection(
  input: ClassifyInput,
  networks: ClassifyNetworks,
): Classification {
  const ip = parseIp(input.ip);
  if (!ip) throw new TypeError(`not an IP address: ${input.ip}`);
  const internal: string[] = [];
  if (inNetworks(ip, networks.internal)) internal.push('internal-network');
  if (input.authenticated) internal.push('smtp-auth');
  if (internal.length) return { class: 'INTERNAL', reasons: internal };
  if (inNetworks(ip, networks.trusted)) return { class: 'TRUSTED', reasons: ['trusted-relay'] };
  if (input.ptr) {
    // A lookup that failed says nothing about the client: it is not DYNAMIC for a DNS hiccup.
    if (input.ptr.tempfail) return { class: 'EXTERNAL', reasons: ['ptr-tempfail'] };
    if (!input.ptr.verified) return { class: 'DYNAMIC', reasons: ['no-verified-ptr'] };
    if (input.ptr.dynamic) return { class: 'DYNAMIC', reasons: ['dynamic-ptr'] };
    return { class: 'EXTERNAL', reasons: ['verified-ptr'] };
  }
  return { class: 'EXTERNAL', reasons: ['ptr-not-checked'] };
}
