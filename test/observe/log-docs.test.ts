// docs/log-tags.md covers every log line the code writes: each logger call under src/ whose
// message is written in the call (a string, or a template whose ${...} parts the page writes as
// placeholders) has the message as a code span on the page, and where the page's table has a
// level column, the call's level is in it. The milter and policy libraries log through the
// daemon's logger too, so their messages count.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('../../', import.meta.url));
const DOC = join(root, 'docs', 'log-tags.md');
const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);

/** One logger call with its message as written: literal text, and `${...}` parts as null. */
interface LogCall {
  where: string;
  level: string;
  parts: Array<string | null>;
}

function* sourceFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(path);
    else if (path.endsWith('.ts') && !path.endsWith('.d.ts')) yield path;
  }
}

/**
 * Whether a call's receiver is a logger: `logger`, `this.logger`, `options.logger`,
 * `this.#logger`, ... — every logger in src/ is named so, and nothing else is.
 */
function isLogger(receiver: ts.Expression): boolean {
  const name = ts.isIdentifier(receiver)
    ? receiver.text
    : ts.isPropertyAccessExpression(receiver)
      ? receiver.name.text
      : '';
  return /^#?(logger|log)$/i.test(name) || /Logger$/.test(name);
}

/** The logger calls of src/, those with a written message and those without. */
function scan(): { calls: LogCall[]; unwritten: string[] } {
  const calls: LogCall[] = [];
  const unwritten: string[] = [];
  for (const file of sourceFiles(join(root, 'src'))) {
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest);
    const visit = (node: ts.Node): void => {
      if (
        ts.isCallExpression(node) &&
        ts.isPropertyAccessExpression(node.expression) &&
        LEVELS.has(node.expression.name.text) &&
        isLogger(node.expression.expression)
      ) {
        const { line } = source.getLineAndCharacterOfPosition(node.getStart(source));
        const where = `${relative(root, file)}:${line + 1}`;
        const level = node.expression.name.text;
        const message = node.arguments.at(-1);
        if (message && ts.isStringLiteralLike(message)) {
          calls.push({ where, level, parts: [message.text] });
        } else if (message && ts.isTemplateExpression(message)) {
          const parts: Array<string | null> = [message.head.text];
          for (const span of message.templateSpans) parts.push(null, span.literal.text);
          calls.push({ where, level, parts });
        } else {
          unwritten.push(`${where} ${level}(${message ? message.getText(source) : ''})`);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return { calls, unwritten };
}

/** A code span on the page that is this message: `${...}` parts stand for a placeholder there. */
function spanPattern(call: LogCall): RegExp {
  const quote = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const body = call.parts.map((p) => (p === null ? '[^`|]+?' : quote(p))).join('');
  return new RegExp(`\`${body}\``);
}

/**
 * The page's table rows by their first cell's code span, with the level cell when the table has
 * a `level` column.
 */
function tableRows(page: string): Array<{ first: string; level: string | undefined }> {
  const rows: Array<{ first: string; level: string | undefined }> = [];
  let levelColumn = -1;
  for (const line of page.split('\n')) {
    if (!line.startsWith('|')) {
      levelColumn = -1;
      continue;
    }
    const cells = line
      .slice(1, line.endsWith('|') ? -1 : undefined)
      .split(' | ')
      .map((c) => c.trim());
    if (/^-+$/.test(cells[0]!.replace(/\s/g, ''))) continue;
    if (levelColumn === -1 && cells.includes('level')) {
      levelColumn = cells.indexOf('level');
      continue;
    }
    rows.push({ first: cells[0]!, level: levelColumn >= 0 ? cells[levelColumn] : undefined });
  }
  return rows;
}

describe('docs/log-tags.md', () => {
  const page = readFileSync(DOC, 'utf8');
  const { calls, unwritten } = scan();

  it('finds the logger calls (the scan itself works)', (t) => {
    // Lines every run of the daemon writes: if these are not found, the scan is broken.
    const messages = new Set(calls.map((c) => c.parts.join('…')));
    for (const known of [
      'started',
      'stopped',
      'policy server listening',
      'milter server listening',
    ]) {
      assert.ok(messages.has(known), `the scan did not find "${known}"`);
    }
    assert.ok(calls.length > 50, `only ${calls.length} calls found`);
    // Messages made at run time (a decision's first tag, a file's problem line) are documented
    // by what makes them; listed here so that a new one is seen.
    t.diagnostic(`messages not written in the call: ${unwritten.join('; ')}`);
  });

  it('names the message of every logger call', () => {
    const missing = calls.filter((call) => !spanPattern(call).test(page));
    assert.deepEqual(
      missing.map((c) => `${c.where} ${c.level}: ${c.parts.map((p) => p ?? '…').join('')}`),
      [],
    );
  });

  it("gives each call's level where its table has a level column", () => {
    const rows = tableRows(page);
    const wrong: string[] = [];
    for (const call of calls) {
      const pattern = spanPattern(call);
      const documented = rows.filter((row) => pattern.test(row.first) && row.level !== undefined);
      if (documented.length === 0) continue;
      if (!documented.some((row) => row.level!.split(/[\s,/]+/).includes(call.level))) {
        wrong.push(
          `${call.where}: ${call.level}, the page says ${documented.map((r) => r.level).join(' / ')}`,
        );
      }
    }
    assert.deepEqual(wrong, []);
  });
});
