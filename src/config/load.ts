/**
 * Reading the configuration file: TOML in, a validated `Config` out, or a `ConfigError` whose
 * message names the file, the key and the problem.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseToml, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { type Config, type ConfigWarning, configSchema, noteLegacyWarnings } from './schema.js';

/** The configuration cannot be used; `problems` holds one line per bad key. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    readonly problems: readonly string[] = [],
  ) {
    super(message);
  }
}

/**
 * Validates parsed configuration data (as TOML gives it), filling in defaults.
 *
 * @example
 * parseConfig({ greylist: { period: '5m' } }).greylist.period  // 300000
 * parseConfig({ greylist: { perod: '5m' } })  // throws ConfigError: greylist: unknown key "perod"
 */
export function parseConfig(data: unknown, source = 'configuration'): Config {
  const { data: renamed, warnings, problem } = renameLegacyTables(data);
  if (problem) throw new ConfigError(`${source}: ${problem}`, [problem]);
  const result = configSchema.safeParse(renamed);
  if (result.success) {
    if (warnings.length) noteLegacyWarnings(result.data, warnings);
    return result.data;
  }
  const problems = result.error.issues.flatMap(describeIssue);
  throw new ConfigError(`${source}: ${problems.join('; ')}`, problems);
}

/**
 * Reads and validates a TOML configuration file. No path gives the defaults.
 *
 * @example
 * const config = await loadConfig('/etc/mailgate/mailgate.toml');
 */
export async function loadConfig(path?: string): Promise<Config> {
  if (path === undefined) return parseConfig({}, 'defaults');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${path}: cannot read: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  return parseConfigText(text, path);
}

/**
 * Parses and validates TOML text.
 *
 * @example
 * parseConfigText('[store]\nfail = "tempfail"\n').store.fail  // 'tempfail'
 */
export function parseConfigText(text: string, source = 'configuration'): Config {
  let data: unknown;
  try {
    data = parseToml(text);
  } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split('\n')[0] ?? 'invalid TOML';
      throw new ConfigError(`${source}:${err.line}:${err.column}: ${first}`);
    }
    throw err;
  }
  return parseConfig(data, source);
}

function describeIssue(issue: z.core.$ZodIssue): string[] {
  const where = issue.path
    .map((part, i) =>
      typeof part === 'number' ? `[${part}]` : i === 0 ? String(part) : `.${String(part)}`,
    )
    .join('');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `${where ? `${where}.` : ''}${key}: unknown key`);
  }
  return [`${where || '(top)'}: ${issue.message}`];
}

/**
 * Tables that were renamed: the old name is still read, with a warning. `[policy]` became
 * `[policyd]` when the policy engine (src/policy) got its own settings.
 */
function renameLegacyTables(data: unknown): {
  data: unknown;
  warnings: ConfigWarning[];
  problem?: string;
} {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return { data, warnings: [] };
  }
  const table = data as Record<string, unknown>;
  if (!('policy' in table)) return { data, warnings: [] };
  if ('policyd' in table) {
    return {
      data,
      warnings: [],
      problem: 'policy: the old name of [policyd]; give one of them, not both',
    };
  }
  const { policy, ...rest } = table;
  return {
    data: { ...rest, policyd: policy },
    warnings: [{ key: 'policy', problem: 'renamed [policyd]; read as [policyd] for now' }],
  };
}
