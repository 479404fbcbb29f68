/**
 * src/policy — the policy engine: session facts, the checks to run at each stage, and how their
 * results become one decision. Today it holds connection classification.
 *
 * May import src/checks, src/dns (types and address helpers) and src/text; never a protocol
 * library, the daemon or the CLI.
 */
export * from './classify.js';
