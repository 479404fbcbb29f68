/**
 * The policy benchmark's world: a DNS zone (a block list, a white list, SPF records for the
 * sender domains) and a fixed, shuffled set of Postfix policy requests at RCPT, encoded once.
 *
 * 300 clients, ten kinds by `index % 10`, so that a bley-style greylister decides a mix:
 *
 *   0 dnsbl     listed in bl.bench.test, HELO = its verified name        → greylisted (block list)
 *   1 dnswl     listed in wl.bench.test, HELO unrelated                  → passes (white list)
 *   2 dynamic   a dynamic-looking verified name (address in it, `dsl`), HELO `user-pc`
 *                                                                        → greylisted (score 3)
 *   3 unknown   client_name=unknown (no verified name), HELO a bare name → greylisted (score 2)
 *   4 sibling   HELO another host of the client's own domain (score 1): SPF decides; a fail or
 *               softfail makes it 2 → greylisted, a pass or none → passes
 *   5–9 good    HELO = its verified name (score 0)                       → passes
 *
 * and every 50th client (a `good` one) is named under a domain of the client whitelist. Senders are
 * 20 users at each of 40 domains with four SPF shapes (ip4 lists, an include, `mx`, none), 2% null
 * senders; recipients 80 users at ours.example, 1% postmaster. Each request is its own triplet
 * (client address, sender, recipient), so a first pass creates every triplet and later passes meet
 * known ones. Everything is seeded: the same requests in the same order on every run.
 *
 * @example
 * const world = buildPolicyWorld();
 * world.requests[0].bytes   // the request as Postfix writes it, ending in an empty line
 */
import type { ZoneData } from '../test/support/dns-server.js';
import { prng } from './common.js';

export const DNSBL_ZONE = 'bl.bench.test';
export const DNSWL_ZONE = 'wl.bench.test';
export const CLIENT_COUNT = 300;
export const REQUEST_COUNT = 1200;
const SENDER_DOMAINS = 40;
const RECIPIENTS = 80;
const ORGS = 60;

export const CLIENT_KINDS = [
  'dnsbl',
  'dnswl',
  'dynamic',
  'unknown',
  'sibling',
  'good',
  'whitelisted',
] as const;
export type ClientKind = (typeof CLIENT_KINDS)[number];

export interface PolicyRequest {
  kind: ClientKind;
  clientAddress: string;
  sender: string;
  recipient: string;
  /** The encoded request, attributes in Postfix's order, ending in the empty line. */
  bytes: Buffer;
}

export interface PolicyWorld {
  zone: ZoneData;
  requests: PolicyRequest[];
  /** The client whitelist, postgrey syntax (the same file for every server that takes one). */
  whitelistClients: string;
  /** The recipient whitelist, postgrey syntax. */
  whitelistRecipients: string;
}

/** Client `c`'s address: 100 each in the three documentation networks. */
function clientAddress(c: number): string {
  const nets = ['192.0.2', '198.51.100', '203.0.113'];
  return `${nets[Math.floor(c / 100)]}.${(c % 100) + 1}`;
}

function reversed(ip: string): string {
  return ip.split('.').reverse().join('.');
}

interface Client {
  kind: ClientKind;
  address: string;
  clientName: string;
  reverseName: string;
  helo: string;
}

function makeClient(c: number): Client {
  const address = clientAddress(c);
  const org = `org${c % ORGS}.example`;
  const dashed = address.replaceAll('.', '-');
  const kind = (['dnsbl', 'dnswl', 'dynamic', 'unknown', 'sibling'] as const)[c % 10] ?? 'good';
  switch (kind) {
    case 'dnsbl': {
      const name = `srv${c}.${org}`;
      return { kind, address, clientName: name, reverseName: name, helo: name };
    }
    case 'dnswl': {
      const name = `mx${c}.${org}`;
      return { kind, address, clientName: name, reverseName: name, helo: 'exchange.corp.local' };
    }
    case 'dynamic': {
      const name = `dsl-${dashed}.pool.isp${c % 7}.example`;
      return { kind, address, clientName: name, reverseName: name, helo: 'user-pc' };
    }
    case 'unknown':
      return {
        kind,
        address,
        clientName: 'unknown',
        reverseName: `host-${dashed}.isp${c % 7}.example`,
        helo: `host-${dashed}`,
      };
    case 'sibling': {
      const name = `out${c}.${org}`;
      return { kind, address, clientName: name, reverseName: name, helo: `smtp.${org}` };
    }
    default: {
      const name = c % 50 === 5 ? `o${c}.smtp.bulk${c % 3}.example` : `mail${c}.${org}`;
      const k: ClientKind = c % 50 === 5 ? 'whitelisted' : 'good';
      return { kind: k, address, clientName: name, reverseName: name, helo: name };
    }
  }
}

/** The zone: DNS list entries and SPF records (TTLs are set by the server process). */
function buildZone(clients: Client[]): ZoneData {
  const zone: ZoneData = {};
  const add = (name: string, ...entries: unknown[]) => {
    const list = zone[name] ?? [];
    zone[name] = list;
    list.push(...entries);
  };
  // The lists' own apex, as real lists have, and their test entries (RFC 5782).
  for (const list of [DNSBL_ZONE, DNSWL_ZONE]) {
    add(list, { TXT: 'bench list' });
    add(`2.0.0.127.${list}`, { A: '127.0.0.2' }, { TXT: 'test entry' });
  }
  for (const client of clients) {
    if (client.kind === 'dnsbl') {
      add(
        `${reversed(client.address)}.${DNSBL_ZONE}`,
        { A: '127.0.0.2' },
        { TXT: `listed: ${client.address}` },
      );
    } else if (client.kind === 'dnswl') {
      add(`${reversed(client.address)}.${DNSWL_ZONE}`, { A: '127.0.10.2' });
    }
  }
  add('_spf.esp.example', { TXT: 'v=spf1 ip4:203.0.113.0/24 ~all' });
  for (let j = 0; j < SENDER_DOMAINS; j++) {
    const d = `s${j}.example`;
    add(d, { A: `192.0.2.${200 + (j % 50)}` }, { MX: [10, `mx.${d}`] });
    add(`mx.${d}`, { A: clientAddress((j * 7) % CLIENT_COUNT) });
    switch (j % 4) {
      case 0:
        add(d, { TXT: 'v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.0/25 -all' });
        break;
      case 1:
        add(d, { TXT: 'v=spf1 include:_spf.esp.example ~all' });
        break;
      case 2:
        add(d, { TXT: 'v=spf1 mx -all' });
        break;
      default:
        add(d, { TXT: `site-verification=${j}` });
    }
  }
  return zone;
}

/** postgrey syntax: names (a domain and its subdomains), /regexps/ on the name, addresses. */
function whitelistClients(): string {
  const lines = ['# clients never greylisted (bench)'];
  for (let n = 0; n < 24; n++) lines.push(`relay${n}.example`);
  for (let n = 0; n < 3; n++) lines.push(`bulk${n}.example`);
  for (let n = 0; n < 8; n++) lines.push(`/^(mta|out)[0-9]+\\.sender${n}\\.example$/`);
  for (let n = 0; n < 5; n++) lines.push(`10.${n}.0.0/16`);
  lines.push('172.16.5.4');
  return `${lines.join('\n')}\n`;
}

const WHITELIST_RECIPIENTS = '# recipients never greylisted (bench)\npostmaster@\nabuse@\n';

function attributes(pairs: Array<[string, string]>): Buffer {
  let text = '';
  for (const [name, value] of pairs) text += `${name}=${value}\n`;
  return Buffer.from(`${text}\n`, 'latin1');
}

/**
 * Build the zone and the requests.
 *
 * @example
 * const { zone, requests } = buildPolicyWorld();
 */
export function buildPolicyWorld(): PolicyWorld {
  const clients = Array.from({ length: CLIENT_COUNT }, (_, c) => makeClient(c));
  const random = prng(2525);
  const pick = (n: number) => Math.floor(random() * n);
  const requests: PolicyRequest[] = [];
  for (let i = 0; i < REQUEST_COUNT; i++) {
    const client = clients[i % CLIENT_COUNT]!;
    const sender = random() < 0.02 ? '' : `u${pick(20)}@s${pick(SENDER_DOMAINS)}.example`;
    const recipient =
      random() < 0.01 ? 'postmaster@ours.example' : `r${pick(RECIPIENTS)}@ours.example`;
    const instance = `${(0x1a2b + i).toString(16)}.${(0x6745e1b2 + i * 7).toString(16)}.${(0x2c4d0 + i).toString(16)}.0`;
    const bytes = attributes([
      ['request', 'smtpd_access_policy'],
      ['protocol_state', 'RCPT'],
      ['protocol_name', 'ESMTP'],
      ['client_address', client.address],
      ['client_name', client.clientName],
      ['reverse_client_name', client.reverseName],
      ['helo_name', client.helo],
      ['sender', sender],
      ['recipient', recipient],
      ['recipient_count', '0'],
      ['queue_id', ''],
      ['instance', instance],
      ['size', '0'],
      ['etrn_domain', ''],
      ['stress', ''],
      ['sasl_method', ''],
      ['sasl_username', ''],
      ['sasl_sender', ''],
      ['ccert_subject', ''],
      ['ccert_issuer', ''],
      ['ccert_fingerprint', ''],
      ['ccert_pubkey_fingerprint', ''],
      ['encryption_protocol', ''],
      ['encryption_cipher', ''],
      ['encryption_keysize', '0'],
      ['client_port', String(1024 + pick(60_000))],
      ['policy_context', ''],
      ['server_address', '198.51.100.254'],
      ['server_port', '25'],
      ['compatibility_level', '3.6'],
      ['mail_version', '3.7.11'],
    ]);
    requests.push({ kind: client.kind, clientAddress: client.address, sender, recipient, bytes });
  }
  // Shuffle so that consecutive requests come from different clients, as real traffic does.
  for (let i = requests.length - 1; i > 0; i--) {
    const j = pick(i + 1);
    [requests[i], requests[j]] = [requests[j]!, requests[i]!];
  }
  return {
    zone: buildZone(clients),
    requests,
    whitelistClients: whitelistClients(),
    whitelistRecipients: WHITELIST_RECIPIENTS,
  };
}
