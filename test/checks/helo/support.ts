// Shared by the HELO check's tests: one fixture zone, and shorthands for reading outcomes.
import type { HeloOutcome, HeloResult, HeloRule } from '../../../src/checks/helo/index.js';
import type { ZoneData } from '../../support/dns-server.js';

const manyMx = Array.from({ length: 11 }, (_, i) => ({ MX: [i, `mx${i}.many.example.net`] }));
const manyHosts = Object.fromEntries(
  Array.from({ length: 11 }, (_, i) => [
    `mx${i}.many.example.net`,
    [{ A: i === 10 ? '192.0.2.1' : `198.51.100.${i + 1}` }],
  ]),
);

export const HELO_ZONE: ZoneData = {
  'mail.example.com': [{ A: '192.0.2.1' }, { AAAA: '2001:db8::1' }],
  'near.example.com': [{ A: '192.0.2.200' }, { AAAA: '2001:db8::beef' }],
  'far.example.com': [{ A: '198.51.100.1' }, { AAAA: '2001:db8:ffff::1' }],
  'v4only.example.com': [{ A: '192.0.2.1' }],
  'mxonly.example.net': [{ MX: [10, 'mx1.example.net'] }],
  'mx1.example.net': [{ A: '192.0.2.1' }, { AAAA: '2001:db8::1' }],
  'mxnear.example.net': [{ MX: [10, 'near.example.com'] }],
  'mxfar.example.net': [{ MX: [10, 'far.example.com'] }],
  'alias.example.com': [{ CNAME: 'mail.example.com' }],
  'mxalias.example.net': [{ MX: [10, 'alias.example.com'] }],
  'txtonly.example.org': [{ TXT: 'hello' }],
  'nullmx.example.org': [{ MX: [0, '.'] }],
  'slow.example.com': ['TIMEOUT'],
  'slowaaaa.example.com': [{ A: '192.0.2.1' }, { AAAA: 'TIMEOUT' }],
  'slowmx.example.net': [{ MX: 'TIMEOUT' }],
  'mxslowhost.example.net': [{ MX: [10, 'slow.example.com'] }, { MX: [20, 'far.example.com'] }],
  'mxslowok.example.net': [{ MX: [10, 'slow.example.com'] }, { MX: [20, 'mail.example.com'] }],
  'broken.example.com': [{ RCODE: 'SERVFAIL' }],
  'many.example.net': manyMx,
  ...manyHosts,
};

export function outcome(r: HeloResult, rule: HeloRule): HeloOutcome {
  const found = r.outcomes.find((o) => o.rule === rule);
  if (!found) throw new Error(`no outcome for ${rule}`);
  return found;
}

/** `result reason` of a rule, for compact assertions. */
export function said(r: HeloResult, rule: HeloRule): string {
  const o = outcome(r, rule);
  return `${o.result} ${o.reason}`;
}
