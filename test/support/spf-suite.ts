/**
 * Loader for test suites in the openspf YAML format (rfc7208-tests.yml): one YAML document per
 * scenario, each with its tests and the zone they run against (see dns-server.ts for the zone).
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import type { ZoneData } from './dns-server.js';

export interface SuiteTest {
  /** Client IP address. */
  host: string;
  /** MAIL FROM, possibly empty. */
  mailfrom: string;
  helo: string;
  /** Expected result word; a list means any of them is acceptable, the first preferred. */
  result: string | string[];
  explanation?: string;
  description?: string;
  comment?: string;
  spec?: string | string[];
  header?: string;
  receiver?: string;
  [key: string]: unknown;
}

export interface SuiteScenario {
  description: string;
  comment?: string;
  tests: Record<string, SuiteTest>;
  zonedata: ZoneData;
}

/**
 * Read every scenario of a suite file. Throws with the YAML error when the file does not parse.
 *
 * @example
 * for (const scenario of loadSuite('test/data/rfc7208-tests.yml')) {
 *   server.setZone(parseSuiteZone(scenario.zonedata));
 * }
 */
export function loadSuite(path: string): SuiteScenario[] {
  const text = readFileSync(path, 'utf8');
  const scenarios: SuiteScenario[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors[0]!.message}`);
    const data = doc.toJS() as Record<string, unknown> | null;
    if (!data) continue;
    const tests: Record<string, SuiteTest> = {};
    for (const [id, raw] of Object.entries((data.tests ?? {}) as Record<string, unknown>)) {
      const t = (raw ?? {}) as Record<string, unknown>;
      // YAML may read an address or a bare name as a number; the fields are strings.
      tests[id] = {
        ...t,
        host: String(t.host ?? ''),
        mailfrom: String(t.mailfrom ?? ''),
        helo: String(t.helo ?? ''),
        result: Array.isArray(t.result) ? t.result.map(String) : String(t.result ?? ''),
      } as SuiteTest;
    }
    scenarios.push({
      description: String(data.description ?? ''),
      ...(typeof data.comment === 'string' ? { comment: data.comment } : {}),
      tests,
      zonedata: (data.zonedata ?? {}) as ZoneData,
    });
  }
  return scenarios;
}
