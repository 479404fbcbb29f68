// The fixture zone the DMARC tests share, and a resolver pointed at it: the real resolver, the
// fixture DNS server. Each name says what it is there for.
import { after, before } from 'node:test';
import {
  checkDmarc,
  type DmarcInput,
  type DmarcResult,
  type DmarcServices,
  type DmarcSettings,
} from '../../../src/checks/dmarc/index.js';
import { fieldFromText } from '../../../src/checks/message/index.js';
import { createResolver } from '../../../src/dns/index.js';
import type { Resolver } from '../../../src/dns/types.js';
import { type FixtureDnsServer, startDnsServer } from '../../support/dns-server.js';

const A = { A: '192.0.2.1' };

export const ZONE = {
  // A record at the From domain.
  '_dmarc.exact.example': [{ TXT: 'v=DMARC1; p=reject' }],
  // An organizational domain with a subdomain policy; a record between it and the From domain
  // applies to its own name only.
  '_dmarc.org.example': [{ TXT: 'v=DMARC1; p=quarantine; sp=reject' }],
  '_dmarc.mail.org.example': [{ TXT: 'v=DMARC1; p=none' }],
  'a.b.org.example': [A],
  // A record in two strings, beside TXT records that are not DMARC's.
  '_dmarc.split.example': [
    { TXT: ['v=DMARC1; ', 'p=reject'] },
    { TXT: 'v=spf1 -all' },
    { TXT: 'site-verification=abc' },
  ],
  // psd=n: a department is its own organizational domain.
  '_dmarc.dept.psdn.example': [{ TXT: 'v=DMARC1; p=reject; psd=n' }],
  '_dmarc.psdn.example': [{ TXT: 'v=DMARC1; p=none' }],
  // A public suffix operator's record (psd=y), an agency under it without a record of its own,
  // and a city with one.
  '_dmarc.gov': [{ TXT: 'v=DMARC1; p=reject; sp=quarantine; np=reject; psd=y' }],
  'agency.gov': [A],
  'mail.agency.gov': [A],
  '_dmarc.city.gov': [{ TXT: 'v=DMARC1; p=none' }],
  // np= for subdomains that do not exist; sp= without np=.
  '_dmarc.np.example': [{ TXT: 'v=DMARC1; p=none; sp=quarantine; np=reject' }],
  'np.example': [A],
  'real.np.example': [A],
  'slowghost.np.example': ['TIMEOUT'],
  '_dmarc.spo.example': [{ TXT: 'v=DMARC1; p=none; sp=reject' }],
  // Long names and the walk's shortcut.
  '_dmarc.long.example': [{ TXT: 'v=DMARC1; p=reject; sp=quarantine' }],
  // Several DMARC records at one name.
  '_dmarc.two.parent2.example': [{ TXT: 'v=DMARC1; p=none' }, { TXT: 'v=DMARC1; p=reject' }],
  '_dmarc.parent2.example': [{ TXT: 'v=DMARC1; p=quarantine' }],
  '_dmarc.alone2.example': [{ TXT: 'v=DMARC1; p=none' }, { TXT: 'v=DMARC1; p=reject' }],
  // Records with an invalid p=, with and without a valid rua=.
  '_dmarc.badp.example': [{ TXT: 'v=DMARC1; p=rejectt' }],
  '_dmarc.badprua.example': [{ TXT: 'v=DMARC1; p=rejectt; rua=mailto:d@badprua.example' }],
  // DNS trouble.
  '_dmarc.servfail.example': [{ RCODE: 'SERVFAIL' }],
  '_dmarc.slow.example': ['TIMEOUT'],
  '_dmarc.brokenparent.example': [{ RCODE: 'SERVFAIL' }],
  '_dmarc.align.example': [{ TXT: 'v=DMARC1; p=reject' }],
  '_dmarc.mail.align.example': ['TIMEOUT'],
  // The public suffix list's view against the walk's.
  '_dmarc.example.co.uk': [{ TXT: 'v=DMARC1; p=reject' }],
  '_dmarc.b.pslorg.example': [{ TXT: 'v=DMARC1; p=none' }],
  '_dmarc.pslorg.example': [{ TXT: 'v=DMARC1; p=quarantine; sp=reject' }],
  // Alignment modes.
  '_dmarc.relaxed.example': [{ TXT: 'v=DMARC1; p=reject' }],
  '_dmarc.strict.example': [{ TXT: 'v=DMARC1; p=reject; adkim=s; aspf=s' }],
  '_dmarc.halfstrict.example': [{ TXT: 'v=DMARC1; p=reject; adkim=s' }],
  // Testing mode and sampling.
  '_dmarc.testing.example': [{ TXT: 'v=DMARC1; p=reject; t=y' }],
  '_dmarc.testq.example': [{ TXT: 'v=DMARC1; p=quarantine; t=y' }],
  '_dmarc.pct.example': [{ TXT: 'v=DMARC1; p=reject; pct=50' }],
  '_dmarc.pct0.example': [{ TXT: 'v=DMARC1; p=quarantine; pct=0' }],
  // Hostile records.
  '_dmarc.hostile.example': [{ TXT: 'v=DMARC1; p=\r\nreject\u0000; rua=mailto:x@\u00ff.example' }],
  '_dmarc.huge.example': [{ TXT: `v=DMARC1; p=reject; rua=mailto:${'a'.repeat(5000)}@x.example` }],
};

let server: FixtureDnsServer;
let resolver: Resolver;

/** Starts the fixture server for the file that calls it (in its top level). */
export function useZone(): void {
  before(async () => {
    server = await startDnsServer(ZONE);
    resolver = createResolver({
      servers: [server.address],
      timeout: 200,
      attempts: 1,
      cache: false,
    });
  });
  after(() => server.close());
}

/** The resolver pointed at the fixture server (once `useZone` has started it). */
export function fixtureResolver(): Resolver {
  return resolver;
}

/** The names asked of the server since `body` started, in order. */
export async function askedDuring<T>(
  body: () => Promise<T>,
): Promise<{ value: T; names: string[] }> {
  server.resetLog();
  const value = await body();
  return { value, names: server.queries.map((q) => `${q.type} ${q.name}`) };
}

/** The From fields of a message with these From values. */
export function fromFields(...values: string[]) {
  return values.map((value) => fieldFromText(`From: ${value}`));
}

/** The check for a From value and authentication results. */
export function dmarc(
  from: string | string[],
  auth: Omit<DmarcInput, 'from' | 'dkim'> & { dkim?: DmarcInput['dkim'] } = {},
  settings: Partial<DmarcSettings> = {},
  services: Omit<DmarcServices, 'resolver'> = {},
): Promise<DmarcResult> {
  const input: DmarcInput = {
    from: fromFields(...(Array.isArray(from) ? from : [from])),
    dkim: auth.dkim ?? [],
  };
  if (auth.spf) input.spf = auth.spf;
  return checkDmarc(input, settings, { resolver, ...services });
}

/** An SPF pass for a domain's MAIL FROM. */
export const spfPass = (domain: string) => ({
  domain,
  result: 'pass' as const,
  scope: 'mfrom' as const,
});
/** A DKIM pass for a d= domain. */
export const dkimPass = (domain: string) => ({ domain, result: 'pass', selector: 's1' });
