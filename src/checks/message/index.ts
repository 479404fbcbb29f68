/**
 * src/checks/message — a message as the authentication checks read it: header fields as the
 * bytes the MTA sent (DKIM's simple canonicalization needs them exactly), and the body as CRLF
 * lines. Built from the milter's header callbacks or from a whole message (the CLI). Imports
 * nothing of ours.
 */
export * from './field.js';
export * from './parse.js';
