/**
 * src/text — making hostile text safe for the places it ends up: header values, SMTP replies and
 * log lines. Everything from an SMTP client, and everything from DNS, passes through here first.
 * Imports nothing of ours; anything in src/ may import it.
 */
export * from './date.js';
export * from './safe.js';
