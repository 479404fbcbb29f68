/**
 * The parts of docs/install.md that the install tests run, read from the page itself so that
 * what is tested is what the page says: its example configuration and its main.cf lines.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export const INSTALL_DOC = fileURLToPath(new URL('../../docs/install.md', import.meta.url));

/** The fenced blocks of a Markdown text: the info string and the text inside. */
export function fencedBlocks(markdown: string): Array<{ info: string; text: string }> {
  const blocks: Array<{ info: string; text: string }> = [];
  for (const m of markdown.matchAll(/^```([^\n`]*)\n([\s\S]*?)^```$/gm)) {
    blocks.push({ info: m[1]!.trim(), text: m[2]! });
  }
  return blocks;
}

/** The one fenced block whose first line is `firstLine`; fails when there is not exactly one. */
async function blockStartingWith(firstLine: string): Promise<string> {
  const found = fencedBlocks(await readFile(INSTALL_DOC, 'utf8')).filter(
    (b) => b.text.split('\n')[0]!.trim() === firstLine,
  );
  if (found.length !== 1) {
    throw new Error(`docs/install.md: ${found.length} fenced blocks start with "${firstLine}"`);
  }
  return found[0]!.text;
}

/**
 * The example configuration file of the guide.
 *
 * @example
 * const toml = await exampleConfig();  // '# /etc/mailgate/mailgate.toml\nhostname = ...'
 */
export function exampleConfig(): Promise<string> {
  return blockStartingWith('# /etc/mailgate/mailgate.toml');
}

/**
 * The guide's main.cf lines as parameters, in order.
 *
 * @example
 * (await exampleMainCf()).get('milter_default_action')  // 'tempfail'
 */
export async function exampleMainCf(): Promise<Map<string, string>> {
  const params = new Map<string, string>();
  for (const line of (await blockStartingWith('# /etc/postfix/main.cf')).split('\n')) {
    const m = /^([a-z_]+)\s*=\s*(.*)$/.exec(line.trim());
    if (m) params.set(m[1]!, m[2]!);
  }
  return params;
}
