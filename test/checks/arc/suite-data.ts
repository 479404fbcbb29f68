/**
 * Loader for the open ARC test suite (test/data/arc, MIT licence in LICENSE.txt): YAML documents
 * in the openspf suite's style, one per scenario, each with its tests and the TXT records (DKIM
 * keys) they run against.
 */
import { readFileSync } from 'node:fs';
import { isMap, isScalar, parseAllDocuments } from 'yaml';
import type { ZoneData } from '../../support/dns-server.js';

export interface ValidationTest {
  description: string;
  message: string;
  /** The expected cv as the suite writes it: `None`, `Pass`, `Fail`, or empty. */
  cv: string;
  comment?: string;
}

export interface SigningTest {
  description: string;
  message: string;
  /** Signing time, seconds. */
  t: number;
  /** h= of the new AMS, colon-separated. */
  sigHeaders: string;
  srvId: string;
  /** Expected values (tag lists; the AAR's text), empty when no set may be added. */
  as: string;
  ams: string;
  aar: string;
}

export interface Scenario<T> {
  description: string;
  /** The tests by name; of a name given twice, the later entry, as YAML readers take it. */
  tests: Record<string, T>;
  /** Entries hidden by a later one of the same name, with their own description. */
  shadowed: Array<{ name: string; test: T }>;
  /** The scenario's TXT records as a fixture zone. */
  zone: ZoneData;
  domain?: string;
  selector?: string;
  privateKey?: string;
}

interface Document {
  data: Record<string, unknown>;
  /** Every entry of `tests` in order, repeated names included. */
  entries: Array<{ name: string; raw: unknown }>;
}

function documents(path: string): Document[] {
  const out: Document[] = [];
  // The validation file repeats four test names; the suite's readers let the later one win.
  for (const doc of parseAllDocuments(readFileSync(path, 'utf8'), { uniqueKeys: false })) {
    if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors[0]!.message}`);
    const data = doc.toJS() as Record<string, unknown> | null;
    if (!data) continue;
    const entries: Document['entries'] = [];
    const tests = doc.get('tests', true);
    if (isMap(tests)) {
      for (const pair of tests.items) {
        const name = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const value = pair.value as { toJSON?: () => unknown } | null;
        entries.push({ name, raw: value?.toJSON ? value.toJSON() : value });
      }
    }
    out.push({ data, entries });
  }
  return out;
}

function split<T>(
  entries: Document['entries'],
  read: (raw: Record<string, unknown>) => T,
): Pick<Scenario<T>, 'tests' | 'shadowed'> {
  const tests: Record<string, T> = {};
  const shadowed: Array<{ name: string; test: T }> = [];
  entries.forEach(({ name, raw }, index) => {
    const test = read((raw ?? {}) as Record<string, unknown>);
    if (entries.slice(index + 1).some((later) => later.name === name))
      shadowed.push({ name, test });
    else tests[name] = test;
  });
  return { tests, shadowed };
}

function zoneOf(data: Record<string, unknown>): ZoneData {
  const zone: ZoneData = {};
  const records = (data['txt-records'] ?? {}) as Record<string, unknown>;
  // The signing file writes its key record as a YAML literal block, so its base64 arrives cut by
  // line breaks; a TXT record holds no line break, and the record meant is the one with folding
  // whitespace (which key records allow inside p=) where the breaks are.
  for (const [name, value] of Object.entries(records)) {
    zone[name] = [{ TXT: String(value).replace(/\r?\n/g, ' ') }];
  }
  return zone;
}

function text(value: unknown): string {
  return value === undefined || value === null ? '' : String(value);
}

/**
 * The validation scenarios.
 *
 * @example
 * loadValidationSuite('test/data/arc/arc-draft-validation-tests.yml')[0]!.tests.cv_empty!.cv  // 'None'
 */
export function loadValidationSuite(path: string): Scenario<ValidationTest>[] {
  return documents(path).map(({ data, entries }) => ({
    description: text(data.description).trim(),
    ...split(entries, (t) => ({
      description: text(t.description),
      message: text(t.message),
      cv: text(t.cv).trim(),
      ...(typeof t.comment === 'string' ? { comment: t.comment } : {}),
    })),
    zone: zoneOf(data),
  }));
}

/**
 * The signing scenarios, with their key.
 *
 * @example
 * loadSigningSuite('test/data/arc/arc-draft-sign-tests.yml')[0]!.selector  // 'dummy'
 */
export function loadSigningSuite(path: string): Scenario<SigningTest>[] {
  return documents(path).map(({ data, entries }) => {
    return {
      description: text(data.description).trim(),
      ...split(entries, (t) => ({
        description: text(t.description),
        message: text(t.message),
        t: Number(t.t),
        sigHeaders: text(t['sig-headers']),
        srvId: text(t['srv-id']),
        as: text(t.AS).trim(),
        ams: text(t.AMS).trim(),
        aar: text(t.AAR).trim(),
      })),
      zone: zoneOf(data),
      domain: text(data.domain),
      selector: text(data.sel),
      privateKey: text(data.privatekey),
    };
  });
}
