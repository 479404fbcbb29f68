/**
 * Macros (Sendmail's "symbols") as libmilter keeps them: one set per stage, a stage's set
 * replaced by the next SMFIC_MACRO for it, later stages forgotten when an earlier one is set
 * again, and lookups from the latest stage back.
 */
import { Command } from './constants.js';
import type { MacroStageName } from './types.js';

/** Stages in protocol order; the index is what MacroStore works with. */
export const MACRO_STAGES: readonly MacroStageName[] = [
  'connect',
  'helo',
  'envfrom',
  'envrcpt',
  'data',
  'eoh',
  'eom',
];

export const STAGE = {
  connect: 0,
  helo: 1,
  envfrom: 2,
  envrcpt: 3,
  data: 4,
  eoh: 5,
  eom: 6,
} as const satisfies Record<MacroStageName, number>;

/**
 * The stage a SMFIC_MACRO packet's command byte belongs to. Besides libmilter's seven, Postfix
 * sends the end-of-header macros before each header (`L`) and the end-of-message macros before
 * each body chunk (`B`); we file them under eoh and eom, so a header callback already sees them.
 * Other bytes (libmilter ignores those packets) give undefined and their macros are dropped.
 *
 * @example
 * stageOfCommand(0x4d)  // 2 (envfrom)
 */
export function stageOfCommand(command: number): number | undefined {
  switch (command) {
    case Command.CONNECT:
      return STAGE.connect;
    case Command.HELO:
      return STAGE.helo;
    case Command.MAIL:
      return STAGE.envfrom;
    case Command.RCPT:
      return STAGE.envrcpt;
    case Command.DATA:
      return STAGE.data;
    case Command.EOH:
    case Command.HEADER:
      return STAGE.eoh;
    case Command.BODYEOB:
    case Command.BODY:
      return STAGE.eom;
    default:
      return undefined;
  }
}

/**
 * A macro name without its braces: `{daemon_name}` and `daemon_name` are the same macro, and so
 * are `j` and `{j}`.
 *
 * @example
 * bareMacroName('{auth_authen}')  // 'auth_authen'
 */
export function bareMacroName(name: string): string {
  return name.length > 2 && name.startsWith('{') && name.endsWith('}') ? name.slice(1, -1) : name;
}

/**
 * A macro name as it goes in a SETSYMLIST list: one-letter names bare, longer ones in braces,
 * which is how Sendmail writes them and what Postfix accepts.
 *
 * @example
 * wireMacroName('daemon_name')  // '{daemon_name}'
 * wireMacroName('j')            // 'j'
 */
export function wireMacroName(name: string): string {
  const bare = bareMacroName(name);
  return bare.length === 1 ? bare : `{${bare}}`;
}

/** The macros of one connection, per stage. */
export class MacroStore {
  private readonly stages: Array<Map<string, string> | undefined> = new Array(MACRO_STAGES.length);

  /** Replace a stage's macros and forget those of every later stage. */
  set(stage: number, pairs: ReadonlyArray<readonly [string, string]>): void {
    const map = new Map<string, string>();
    for (const [name, value] of pairs) map.set(bareMacroName(name), value);
    this.stages[stage] = map;
    this.clearFrom(stage + 1);
  }

  /** Forget the macros of `stage` and every later one. */
  clearFrom(stage: number): void {
    for (let i = stage; i < this.stages.length; i += 1) this.stages[i] = undefined;
  }

  /** A macro's value, looked up from the latest stage back to connect. */
  get(name: string): string | undefined {
    const bare = bareMacroName(name);
    for (let i = this.stages.length - 1; i >= 0; i -= 1) {
      const value = this.stages[i]?.get(bare);
      if (value !== undefined) return value;
    }
    return undefined;
  }
}
