/**
 * `mailgate reputation`: what the store knows of a sender domain or a client network — score,
 * confidence, good standing and the decayed count of each event — as the daemon sees it.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import {
  REPUTATION_EVENT_NAMES,
  type ReputationStanding,
  readReputation,
  subjectOf,
} from '../reputation/index.js';
import { reputationSettings, storeSettings } from '../serve/settings.js';
import { openStore, StoreError } from '../store/index.js';
import { parseStoreUrl } from '../store/url.js';
import { escapeForLog } from '../text/index.js';
import { configFromOption } from './services.js';
import { failure, UsageError } from './usage.js';

interface ReputationCommandOptions {
  config?: string;
  json?: boolean;
}

/**
 * Registers `mailgate reputation DOMAIN|IP...`.
 *
 * @example
 * registerReputationCommand(program);
 * // mailgate reputation example.org 192.0.2.7 --config /etc/mailgate/mailgate.toml --json
 */
export function registerReputationCommand(program: Command): void {
  program
    .command('reputation')
    .description("show what the store knows of a sender domain's or a client network's reputation")
    .argument(
      '<subject...>',
      'a sender domain (example.org), or a client address (for its /24 or /64)',
    )
    .option(
      '-c, --config <file>',
      "the daemon's configuration: its store and [reputation] settings",
    )
    .option(
      '--json',
      'print { "subjects": [ { "subject", "score", "confidence", "observations", "goodStanding", "lastSeen", "counts" } ] }',
    )
    .action(async (given: string[], options: ReputationCommandOptions) => {
      const subjects = given.map((text) => {
        const subject = subjectOf(text);
        if (!subject) {
          throw new UsageError(`not a domain nor an IP address: ${escapeForLog(text)}`);
        }
        return subject;
      });
      const config = await configFromOption(options.config);
      const settings = reputationSettings(config);
      const { url, options: storeOptions } = storeSettings(config);
      // Reading must not create an empty database where there is none (a relative path from
      // another directory, say): that would show "nothing known" instead of the mistake.
      const target = parseStoreUrl(url);
      if (target.kind === 'sqlite' && target.path !== ':memory:' && !existsSync(target.path)) {
        throw failure(
          `no store at ${target.description} (give the daemon's --config, or run from its directory)`,
        );
      }
      let standings: ReputationStanding[];
      try {
        const store = await openStore(url, storeOptions);
        try {
          standings = await readReputation(store, subjects, settings, Date.now());
        } finally {
          await store.close();
        }
      } catch (err) {
        if (err instanceof StoreError) throw failure(err.message);
        throw err;
      }
      process.stdout.write(
        options.json
          ? `${JSON.stringify({ subjects: standings.map(toJson) })}\n`
          : standings.map(toText).join('\n'),
      );
    });
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function toJson(r: ReputationStanding): Record<string, unknown> {
  return {
    subject: r.subject,
    score: r.score,
    confidence: r.confidence,
    observations: r.observations,
    goodStanding: r.goodStanding,
    lastSeen: iso(r.lastSeen),
    counts: r.counts,
  };
}

function toText(r: ReputationStanding): string {
  const lines: Array<[string, string]> = [
    ['score', r.score.toFixed(3)],
    ['confidence', r.confidence.toFixed(3)],
    ['observations', r.observations.toFixed(2)],
    ['good standing', r.goodStanding ? 'yes' : 'no'],
    ['last seen', iso(r.lastSeen) ?? 'never'],
  ];
  for (const event of REPUTATION_EVENT_NAMES) {
    const count = r.counts[event];
    if (count !== undefined) lines.push([event, count.toFixed(2)]);
  }
  let out = `${escapeForLog(r.subject)}\n`;
  for (const [label, value] of lines) out += `  ${label.padEnd(17)}${value}\n`;
  return out;
}
