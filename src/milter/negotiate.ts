/**
 * Option negotiation (SMFIC_OPTNEG): what a milter needs, derived once from its definition, and
 * the answer to what one MTA offers. Everything asked for is a subset of what was offered.
 */
import { Action, MacroStage, MILTER_VERSION, Protocol } from './constants.js';
import { wireMacroName } from './macros.js';
import type { MilterReply } from './reply-codec.js';
import type {
  MacroStageName,
  MilterDefinition,
  MilterHandler,
  ModificationAction,
  Step,
} from './types.js';

/** The oldest protocol version we talk to; older MTAs are refused (as libmilter does). */
export const MIN_MILTER_VERSION = 2;

/** Per step: the flag that says "do not send it" and the one that says "no reply needed". */
export const STEP_FLAGS: Record<Step, { no: number; noReply: number }> = {
  connect: { no: Protocol.NOCONNECT, noReply: Protocol.NR_CONN },
  helo: { no: Protocol.NOHELO, noReply: Protocol.NR_HELO },
  envfrom: { no: Protocol.NOMAIL, noReply: Protocol.NR_MAIL },
  envrcpt: { no: Protocol.NORCPT, noReply: Protocol.NR_RCPT },
  data: { no: Protocol.NODATA, noReply: Protocol.NR_DATA },
  header: { no: Protocol.NOHDRS, noReply: Protocol.NR_HDR },
  eoh: { no: Protocol.NOEOH, noReply: Protocol.NR_EOH },
  body: { no: Protocol.NOBODY, noReply: Protocol.NR_BODY },
  unknown: { no: Protocol.NOUNKNOWN, noReply: Protocol.NR_UNKN },
};

const STEPS = Object.keys(STEP_FLAGS) as Step[];

/** The SMFIF_* flag each end-of-message action needs. */
export const ACTION_FLAGS: Record<ModificationAction, number> = {
  addHeader: Action.ADDHDRS,
  changeHeader: Action.CHGHDRS,
  addRecipient: Action.ADDRCPT,
  addRecipientWithArgs: Action.ADDRCPT_PAR,
  deleteRecipient: Action.DELRCPT,
  changeFrom: Action.CHGFROM,
  replaceBody: Action.CHGBODY,
  quarantine: Action.QUARANTINE,
};

/** SMFIM_* numbers of the macro stages. */
export const MACRO_STAGE_NUMBER: Record<MacroStageName, number> = {
  connect: MacroStage.CONNECT,
  helo: MacroStage.HELO,
  envfrom: MacroStage.ENVFROM,
  envrcpt: MacroStage.ENVRCPT,
  data: MacroStage.DATA,
  eom: MacroStage.EOM,
  eoh: MacroStage.EOH,
};

/** What a milter needs, whatever the MTA: derived from its definition and one handler. */
export interface NegotiationPlan {
  /** Steps the handler has a callback for. */
  callbacks: ReadonlySet<Step>;
  /** Steps whose callback gets no reply (definition.noReply). */
  noReply: ReadonlySet<Step>;
  /** SMFIF_* flags for the actions listed in the definition. */
  actions: number;
  /** SETSYMLIST lists: SMFIM_* stage and space-separated names. */
  symbols: Array<{ stage: number; names: string }>;
  rejectedRecipients: boolean;
  headerLeadingSpace: boolean;
}

/** What was agreed with one MTA. */
export interface Negotiated {
  version: number;
  actions: number;
  protocol: number;
  /** What the MTA offered. */
  offered: { version: number; actions: number; protocol: number };
  /** Actions the definition lists that the MTA did not offer (they will throw when used). */
  missingActions: number;
}

function fail(definition: MilterDefinition, problem: string): never {
  throw new TypeError(`milter ${JSON.stringify(definition.name)}: ${problem}`);
}

/**
 * Derive the negotiation needs from a definition and one of its handlers (which callbacks it
 * has). Checks the definition too: unknown actions, steps or macro stages and bad macro names
 * throw a TypeError here, at start-up, rather than at the first connection.
 *
 * @example
 * planNegotiation({ name: 'x', handler, actions: ['addHeader'] }, handler())
 */
export function planNegotiation(
  definition: MilterDefinition,
  handler: MilterHandler,
): NegotiationPlan {
  const callbacks = new Set<Step>();
  for (const step of STEPS) {
    if (typeof handler[step] === 'function') callbacks.add(step);
  }
  let actions = 0;
  for (const action of definition.actions ?? []) {
    const flag = ACTION_FLAGS[action];
    if (flag === undefined) fail(definition, `unknown action ${JSON.stringify(action)}`);
    actions |= flag;
  }
  const noReply = new Set<Step>();
  for (const step of definition.noReply ?? []) {
    if (!(step in STEP_FLAGS)) fail(definition, `unknown step ${JSON.stringify(step)} in noReply`);
    noReply.add(step);
  }
  const symbols: Array<{ stage: number; names: string }> = [];
  for (const [stage, names] of Object.entries(definition.macros ?? {})) {
    const number = MACRO_STAGE_NUMBER[stage as MacroStageName];
    if (number === undefined) fail(definition, `unknown macro stage ${JSON.stringify(stage)}`);
    if (names === undefined) continue;
    for (const name of names) {
      if (typeof name !== 'string' || !/^\{?[A-Za-z0-9_]+\}?$/.test(name)) {
        fail(definition, `macro name ${JSON.stringify(name)} is not a macro name`);
      }
    }
    symbols.push({ stage: number, names: names.map(wireMacroName).join(' ') });
  }
  if (symbols.length > 0) actions |= Action.SETSYMLIST;
  const onError = definition.onError;
  if (onError !== undefined && !['tempfail', 'continue', 'reject'].includes(onError)) {
    fail(
      definition,
      `onError must be tempfail, continue or reject, not ${JSON.stringify(onError)}`,
    );
  }
  return {
    callbacks,
    noReply,
    actions,
    symbols,
    rejectedRecipients: definition.rejectedRecipients === true,
    headerLeadingSpace: definition.headerLeadingSpace === true,
  };
}

/**
 * Answer an MTA's offer: the lower of the two versions; our actions that were offered; NO*
 * flags for steps without a callback and NR_* flags for noReply steps (and for steps without a
 * callback the MTA cannot leave out), when offered; SKIP when offered; RCPT_REJ and HDR_LEADSPC
 * when the definition asks and they were offered; macro lists when SETSYMLIST was agreed.
 * Versions below 2 are refused with an Error, as libmilter refuses them.
 *
 * @example
 * negotiate(plan, { version: 6, actions: 0x1ff, protocol: 0x1fffff }).reply
 * // { type: 'optneg', version: 6, actions: 0x01, protocol: 0x0e03fe, symbols: [] } (say)
 */
export function negotiate(
  plan: NegotiationPlan,
  offered: { version: number; actions: number; protocol: number },
): { negotiated: Negotiated; reply: Extract<MilterReply, { type: 'optneg' }> } {
  if (offered.version < MIN_MILTER_VERSION) {
    throw new Error(`MTA protocol version ${offered.version} is older than ${MIN_MILTER_VERSION}`);
  }
  const version = Math.min(MILTER_VERSION, offered.version);
  const actions = plan.actions & offered.actions;
  const mta = offered.protocol;
  let protocol = 0;
  for (const step of STEPS) {
    const flags = STEP_FLAGS[step];
    // CONNECT and HELO are always wanted: they carry the facts ctx.connection and ctx.helo give
    // every later callback. Without a callback they need no reply, which saves the round trip.
    const factStep = step === 'connect' || step === 'helo';
    if (!plan.callbacks.has(step) && factStep) {
      if (mta & flags.noReply) protocol |= flags.noReply;
    } else if (!plan.callbacks.has(step)) {
      if (mta & flags.no) protocol |= flags.no;
      // Not sent at all is best; if the MTA cannot leave it out, at least it need not wait.
      else if (mta & flags.noReply) protocol |= flags.noReply;
    } else if (plan.noReply.has(step) && mta & flags.noReply) {
      protocol |= flags.noReply;
    }
  }
  if (mta & Protocol.SKIP) protocol |= Protocol.SKIP;
  if (plan.rejectedRecipients && mta & Protocol.RCPT_REJ) protocol |= Protocol.RCPT_REJ;
  if (plan.headerLeadingSpace && mta & Protocol.HDR_LEADSPC) protocol |= Protocol.HDR_LEADSPC;
  const symbols = actions & Action.SETSYMLIST ? plan.symbols : [];
  return {
    negotiated: {
      version,
      actions,
      protocol: protocol >>> 0,
      offered: { ...offered },
      missingActions: (plan.actions & ~offered.actions) >>> 0,
    },
    reply: { type: 'optneg', version, actions: actions >>> 0, protocol: protocol >>> 0, symbols },
  };
}

/** A definition made ready for serving: validated, its needs planned, its handlers made. */
export interface PreparedMilter {
  readonly definition: MilterDefinition;
  readonly plan: NegotiationPlan;
  /** A handler for a new SMTP connection: the one inspected for the plan first, then new ones. */
  createHandler(): MilterHandler;
}

/**
 * Validate a definition and plan its negotiation. Negotiation happens before any SMTP
 * connection (and so before any handler) exists, so one handler is made up front to see which
 * callbacks it has; it serves the first connection, so that no handler is made for nothing.
 *
 * @example
 * const prepared = prepareMilter({ name: 'sample', handler: () => ({ helo: () => 'continue' }) });
 * prepared.plan.callbacks  // Set { 'helo' }
 */
export function prepareMilter(definition: MilterDefinition): PreparedMilter {
  if (typeof definition !== 'object' || definition === null) {
    throw new TypeError('a milter definition must be an object');
  }
  if (typeof definition.name !== 'string' || definition.name.length === 0) {
    throw new TypeError('a milter definition needs a name');
  }
  if (typeof definition.handler !== 'function') {
    fail(definition, 'handler must be a function that makes a handler');
  }
  let first: MilterHandler | undefined = definition.handler();
  if (typeof first !== 'object' || first === null) {
    fail(definition, 'handler() must return an object');
  }
  const plan = planNegotiation(definition, first);
  return {
    definition,
    plan,
    createHandler(): MilterHandler {
      if (first !== undefined) {
        const handler = first;
        first = undefined;
        return handler;
      }
      return definition.handler();
    },
  };
}
