/**
 * src/notify — talking to other mail servers on the policy engine's behalf: call-back
 * verification (is the sender's address deliverable?) and delivery status notifications built
 * from templates, both over the SmtpClient world service, to mail hosts found by MX with the
 * fraud rules (never ourselves, never loopback). Caching and rate limits are the caller's.
 *
 * May import src/dns, src/text, node built-ins and npm packages (nodemailer); nothing else of
 * ours: no store, no policy, no config.
 */
export type { HostAttempt } from './attempts.js';
export { systemClock, TimeBudget } from './budget.js';
export {
  type CallbackOutcome,
  type CallbackResult,
  type CallbackSettings,
  callbackVerify,
  DEFAULT_CALLBACK_HOST_TIMEOUT_MS,
  DEFAULT_CALLBACK_TIMEOUT_MS,
} from './callback.js';
export { type ComposeDsnInput, composeDsn, DSN_LIMITS, type DsnValues } from './compose.js';
export {
  type AddressRules,
  addressRules,
  type ForbiddenReason,
  forbiddenAddress,
} from './fraud.js';
export {
  DEFAULT_MAX_HOSTS,
  DEFAULT_SMTP_PORT,
  type MailHosts,
  type MailHostsOptions,
  type MailTarget,
  mailHosts,
  type RefusedHost,
} from './mail-hosts.js';
export { isHeloName, isHostName, type Mailbox, parseMailbox } from './mailbox.js';
export { DSN_PLACEHOLDERS, type DsnPlaceholder } from './placeholders.js';
export { greetingName, namedHost, replyCode, replyText } from './reply.js';
export {
  DEFAULT_DSN_HOST_TIMEOUT_MS,
  DEFAULT_DSN_TIMEOUT_MS,
  type DsnOutcome,
  type DsnResult,
  type DsnSettings,
  sendDsn,
} from './send-dsn.js';
export type { NotifyServices, RemoteSettings } from './settings.js';
export { createSmtpClient, type SmtpClientOptions } from './smtp-client.js';
export {
  builtinTemplates,
  checkTemplate,
  DSN_TEMPLATE_NAMES,
  type DsnTemplate,
  type DsnTemplateName,
  type DsnTemplates,
  loadTemplates,
  parseTemplate,
  RESERVED_HEADERS,
  TemplateError,
  type TemplateHeader,
  type TemplateProblem,
} from './templates.js';
export type * from './types.js';
