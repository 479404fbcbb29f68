/**
 * The policy server's handler: a Postfix policy request becomes greylisting's request, and its
 * decision becomes a Postfix action. What is not greylisting's business (other protocol states,
 * authenticated clients, greylisting turned off) is answered here.
 */
import { parseClientIp } from '../greylist/index.js';
import type { GreylistDecision, GreylistRequest } from '../greylist/types.js';
import type { Logger } from '../observe/index.js';
import { type GreylistActions, greylistToDecision } from '../policy/index.js';
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
  /** Let clients that authenticated with SMTP AUTH through unchecked. */
  skipAuthenticated: boolean;
  /** The answer for a request mailgate cannot read (no client address, no recipient). */
  errorAction: string;
  logger: Logger;
}

/**
 * A policy handler that greylists at RCPT.
 *
 * @example
 * server.setHandler(policyHandler({ greylister, actions, skipAuthenticated: true, errorAction, logger }));
 */
export function policyHandler(settings: PolicyHandlerSettings): PolicyHandler {
  const { greylister, actions, skipAuthenticated, errorAction, logger } = settings;
  return async (request: PolicyRequest) => {
    const state = (request.protocol_state ?? '').toUpperCase();
    if (state !== 'RCPT') return 'DUNNO';
    if (skipAuthenticated && (request.sasl_username ?? '') !== '') return 'DUNNO';
    if (!greylister) return 'DUNNO';
    const ip = request.client_address ?? '';
    const recipient = request.recipient ?? '';
    // Postfix always sends both; a hand-written Exim ACL or a broken client may not.
    const problem =
      ip === ''
        ? 'no client address'
        : recipient === ''
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
  };
}
