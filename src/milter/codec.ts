/**
 * The milter wire format in one import: framing (frame.ts), the MTA's commands
 * (command-codec.ts) and the milter's replies (reply-codec.ts). Bytes in, typed values out, and
 * back; no state, no sockets.
 */
export * from './command-codec.js';
export * from './frame.js';
export * from './reply-codec.js';
