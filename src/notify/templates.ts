/**
 * DSN templates: the built-in five, a site's directory of `<name>.txt` files overriding them,
 * and the checks `serve --check` reports.
 *
 * File format: header lines (`Name: value`, folded lines allowed), at least `Subject:`, a blank
 * line, the body. Placeholders are written `%(name)s` (see placeholders.ts).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { logValue } from '../text/index.js';
import { BUILTIN_TEMPLATE_TEXT } from './builtin-templates.js';
import { unknownPlaceholders } from './placeholders.js';

export const DSN_TEMPLATE_NAMES = [
  'strike3',
  'softfail',
  'neutral',
  'permerror',
  'quarantine',
] as const;

export type DsnTemplateName = (typeof DSN_TEMPLATE_NAMES)[number];

export interface TemplateHeader {
  name: string;
  /** Unfolded, placeholders not yet expanded. */
  value: string;
}

export interface DsnTemplate {
  name: string;
  /** `built-in`, or the file it was read from. */
  source: string;
  headers: TemplateHeader[];
  /** LF line ends, placeholders not yet expanded. */
  body: string;
}

export type DsnTemplates = Readonly<Record<DsnTemplateName, DsnTemplate>>;

/** A template that cannot be used; `file` names it. */
export class TemplateError extends Error {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'TemplateError';
  }
}

/**
 * Header fields the composer writes itself; a template's own are ignored (and reported by
 * checkTemplate), so that no template can change who a DSN goes to or how it is encoded.
 */
export const RESERVED_HEADERS = [
  'from',
  'to',
  'cc',
  'bcc',
  'sender',
  'date',
  'message-id',
  'auto-submitted',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'return-path',
  'received',
] as const;

const RESERVED = new Set<string>(RESERVED_HEADERS);
const MAX_TEMPLATE_BYTES = 64 * 1024;
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]{1,76}$/;

/**
 * Parse template file text. Throws a TemplateError naming `source` when a header line is
 * malformed, the blank line is missing, or there is no Subject.
 *
 * @example
 * const t = parseTemplate('Subject: SPF %(result)s\n\nHello %(sender)s\n', 'softfail', 'softfail.txt');
 * t.headers  // [{ name: 'Subject', value: 'SPF %(result)s' }]
 */
export function parseTemplate(text: string, name: string, source: string): DsnTemplate {
  const lines = text
    .replace(/^\ufeff/, '')
    .replace(/\r\n?/g, '\n')
    .split('\n');
  const blank = lines.indexOf('');
  if (blank < 0) throw new TemplateError(source, 'no blank line between the header and the body');
  const headers: TemplateHeader[] = [];
  for (let i = 0; i < blank; i++) {
    const line = lines[i]!;
    if (/^[ \t]/.test(line)) {
      const last = headers[headers.length - 1];
      if (!last) throw new TemplateError(source, `line ${i + 1}: continuation before any header`);
      last.value = `${last.value} ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    const field = colon > 0 ? line.slice(0, colon) : '';
    if (!FIELD_NAME.test(field)) {
      throw new TemplateError(source, `line ${i + 1}: not a header field: ${logValue(line, 60)}`);
    }
    headers.push({ name: field, value: line.slice(colon + 1).trim() });
  }
  if (!headers.some((h) => h.name.toLowerCase() === 'subject')) {
    throw new TemplateError(source, 'no Subject header');
  }
  return { name, source, headers, body: lines.slice(blank + 1).join('\n') };
}

/**
 * The built-in templates.
 *
 * @example
 * builtinTemplates().softfail.source  // 'built-in'
 */
export function builtinTemplates(): Record<DsnTemplateName, DsnTemplate> {
  const out = {} as Record<DsnTemplateName, DsnTemplate>;
  for (const name of DSN_TEMPLATE_NAMES) {
    out[name] = parseTemplate(BUILTIN_TEMPLATE_TEXT[name], name, 'built-in');
  }
  return out;
}

/**
 * The templates to use: the built-ins, each replaced by `<name>.txt` from `dir` when that file
 * exists. Other files in the directory are not read. Throws a TemplateError naming the file (or
 * the directory) when one cannot be read, is not UTF-8, is over 64 KiB, or does not parse.
 *
 * @example
 * const templates = await loadTemplates('/etc/mailgate/dsn');
 * templates.softfail.source  // '/etc/mailgate/dsn/softfail.txt' when that file exists
 */
export async function loadTemplates(dir?: string): Promise<DsnTemplates> {
  const templates = builtinTemplates();
  if (dir === undefined) return templates;
  let present: Set<string>;
  try {
    present = new Set(await readdir(dir));
  } catch (err) {
    throw new TemplateError(dir, `cannot read the template directory (${errorCode(err)})`);
  }
  for (const name of DSN_TEMPLATE_NAMES) {
    const file = `${name}.txt`;
    if (!present.has(file)) continue;
    const path = join(dir, file);
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      throw new TemplateError(path, `cannot read the template (${errorCode(err)})`);
    }
    if (bytes.length > MAX_TEMPLATE_BYTES) {
      throw new TemplateError(path, `larger than ${MAX_TEMPLATE_BYTES} bytes`);
    }
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new TemplateError(path, 'not UTF-8 text');
    }
    templates[name] = parseTemplate(text, name, path);
  }
  return templates;
}

/** Something about a template worth telling the postmaster; none of it stops the daemon. */
export interface TemplateProblem {
  template: string;
  source: string;
  kind: 'unknown-placeholder' | 'ignored-header';
  detail: string;
}

/**
 * What `serve --check` reports about a template: placeholders that will be left as written, and
 * header fields the composer sets itself.
 *
 * @example
 * checkTemplate(parseTemplate('Subject: %(subjct)s\n\n', 'x', 'x.txt'))
 * // [{ template: 'x', source: 'x.txt', kind: 'unknown-placeholder',
 * //    detail: 'Subject: %(subjct)s is not a known placeholder; it is left as written' }]
 */
export function checkTemplate(template: DsnTemplate): TemplateProblem[] {
  const problems: TemplateProblem[] = [];
  const report = (kind: TemplateProblem['kind'], detail: string) =>
    problems.push({ template: template.name, source: template.source, kind, detail });
  for (const header of template.headers) {
    if (RESERVED.has(header.name.toLowerCase())) {
      report('ignored-header', `${header.name}: set by mailgate; the template's value is ignored`);
      continue;
    }
    for (const token of unknownPlaceholders(header.value)) {
      report(
        'unknown-placeholder',
        `${header.name}: ${logValue(token, 80)} is not a known placeholder; it is left as written`,
      );
    }
  }
  const lines = template.body.split('\n');
  lines.forEach((line, i) => {
    for (const token of unknownPlaceholders(line)) {
      report(
        'unknown-placeholder',
        `body line ${i + 1}: ${logValue(token, 80)} is not a known placeholder; it is left as written`,
      );
    }
  });
  return problems;
}

function errorCode(err: unknown): string {
  const code = (err as NodeJS.ErrnoException)?.code;
  return typeof code === 'string' ? code : 'error';
}
