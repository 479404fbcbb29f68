/**
 * src/policy — the policy engine: session facts (each check run once, when first needed), one
 * pure function per stage (connect, helo, mail, rcpt, eom) over those facts, the settings and
 * injected services, and the Decision every door translates. The SPF policy is a table with an
 * access map over it; call-backs, DSNs and greylisting are services passed in.
 *
 * May import src/checks, src/greylist (types and decisions), src/dns (types and address helpers),
 * src/store (types), src/reputation (events and subjects), src/notify (the verifier's world side)
 * and src/text; never a protocol
 * library, the daemon or the CLI.
 */
export * from './access-map.js';
export * from './access-map-file.js';
export * from './auth-results.js';
export * from './classify.js';
export * from './decision.js';
export { type EngineServices, PolicyEngine, type Stage } from './engine.js';
export * from './facts.js';
export * from './greylist.js';
export * from './message-checks.js';
export * from './services.js';
export * from './session.js';
export * from './settings.js';
export * from './spf-policy.js';
export * from './verifier.js';
