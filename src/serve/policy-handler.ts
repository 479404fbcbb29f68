/**
 * The policy server's handler: a Postfix policy request becomes the engine's session replayed up
 * to its protocol_state (or greylisting's request alone), and the decision becomes a Postfix
 * action. Authenticated clients and states the engine has no stage for get DUNNO here.
 */
import { parseClientIp } from '../greylist/index.js';
import type { GreylistDecision, GreylistRequest } from '../greylist/types.js';
import type { Logger } from '../observe/index.js';
import {
  type Decision,
  type GreylistActions,
  greylistToDecision,
  type PolicyEngine,
  type Stage,
} from '../policy/index.js';
import type { PolicyHandler, PolicyRequest } from '../policyd/types.js';
import { logValue } from '../text/index.js';
import { postfixAction } from './postfix-action.js';

/** What decides a greylisting request (the greylister). */
export interface GreylistDecider {
  decide(request: GreylistRequest): Promise<GreylistDecision>;
}

export interface PolicyHandlerSettings {
  /** The greylister, or null when greylisting is off. */
  greylister: GreylistDecider | null;
  /** The Postfix actions configured for greylisting's refusals. */
  actions: GreylistActions;
  /**
   * The policy engine, when the policy server runs its stages (`[policyd] policy`); null answers
   * greylisting alone, at RCPT.
   */
  engine: PolicyEngine | null;
  /** Let clients that authenticated with SMTP AUTH through unchecked. */
  skipAuthenticated: boolean;
  /** The answer for a request mailgate cannot read (no client address, no recipient). */
  errorAction: string;
  logger: Logger;
}

/** The engine's stages a request's protocol_state reaches, in order. */
const STAGES_OF: Record<string, readonly Stage[]> = {
  CONNECT: ['connect'],
  HELO: ['connect', 'helo'],
  EHLO: ['connect', 'helo'],
  MAIL: ['connect', 'helo', 'mail'],
  RCPT: ['connect', 'helo', 'mail', 'rcpt'],
};

let nextRequest = 0;

/**
 * A policy handler: the engine's stages as far as the request's protocol_state allows (a
 * request carries the whole session so far, so each is replayed from connect), with
 * greylisting at RCPT; or greylisting alone when there is no engine.
 *
 * @example
 * server.setHandler(policyHandler({ greylister, actions, engine, skipAuthenticated: true, errorAction, logger }));
 */
export function policyHandler(settings: PolicyHandlerSettings): PolicyHandler {
  const { greylister, actions, engine, skipAuthenticated, errorAction, logger } = settings;
  return async (request: PolicyRequest) => {
    const state = (request.protocol_state ?? '').toUpperCase();
    const stages = engine ? STAGES_OF[state] : state === 'RCPT' ? (['rcpt'] as const) : undefined;
    if (!stages) return 'DUNNO';
    if (skipAuthenticated && (request.sasl_username ?? '') !== '') return 'DUNNO';
    if (!engine && !greylister) return 'DUNNO';
    const ip = request.client_address ?? '';
    const recipient = request.recipient ?? '';
    // Postfix always sends both; a hand-written Exim ACL or a broken client may not.
    const problem =
      ip === ''
        ? 'no client address'
        : state === 'RCPT' && recipient === ''
          ? 'no recipient'
          : parseClientIp(ip) === null
            ? 'the client address is not an IP address'
            : undefined;
    if (problem !== undefined) {
      logger.warn(
        {
          problem,
          client: logValue(ip, 100),
          recipient: logValue(recipient, 300),
          queue_id: logValue(request.queue_id ?? '', 100),
        },
        'policy-bad-request',
      );
      return errorAction;
    }
    if (!engine) return greylistOnly(request, ip, recipient, greylister!, actions);
    return postfixAction(await runStages(engine, request, ip, stages, greylister !== null));
  };
}

/** The stages in order; the first objection answers. */
async function runStages(
  engine: PolicyEngine,
  request: PolicyRequest,
  ip: string,
  stages: readonly Stage[],
  greylist: boolean,
): Promise<Decision> {
  const clientName = request.client_name;
  const login = request.sasl_username ?? '';
  const session = engine.session(
    `p${(++nextRequest).toString(36)}`,
    {
      ip,
      ...(clientName !== undefined ? { reportedName: clientName } : {}),
      ...(login !== '' ? { login } : {}),
    },
    'policy',
  );
  let decision: Decision | undefined;
  for (const [i, stage] of stages.entries()) {
    // Stages before the request's own were decided at earlier requests: logged there.
    session.replaying = i < stages.length - 1;
    switch (stage) {
      case 'connect':
        decision = await engine.connect(session);
        break;
      case 'helo': {
        const helo = request.helo_name ?? '';
        decision = helo === '' ? decision : await engine.helo(session, helo);
        break;
      }
      case 'mail':
        decision = await engine.mail(session, request.sender ?? '');
        break;
      case 'rcpt':
        decision = await engine.rcpt(session, request.recipient ?? '', {
          greylist,
          verifyNow: true,
          ...(request.instance !== undefined ? { instance: request.instance } : {}),
          ...(clientName !== undefined ? { clientName } : {}),
        });
        break;
      default:
        break;
    }
    if (decision && decision.verdict !== 'continue') return decision;
  }
  return decision
    ? engine.withoutMessage(session, decision)
    : { verdict: 'continue', headers: [], reason: 'ok', tags: [] };
}

async function greylistOnly(
  request: PolicyRequest,
  ip: string,
  recipient: string,
  greylister: GreylistDecider,
  actions: GreylistActions,
): Promise<string> {
  const greylistRequest: GreylistRequest = {
    ip,
    sender: request.sender ?? '',
    recipient,
  };
  if (request.helo_name !== undefined) greylistRequest.helo = request.helo_name;
  // Postfix sends client_name (forward-confirmed, or "unknown"); Exim's snippet may leave it
  // out, and then the greylister looks the PTR up itself.
  if (request.client_name !== undefined) greylistRequest.clientName = request.client_name;
  const decision = await greylister.decide(greylistRequest);
  return postfixAction(greylistToDecision(decision, actions));
}
