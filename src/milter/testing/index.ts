/**
 * src/milter/testing — the MTA side of the milter protocol, for testing milters: a client that
 * plays an SMTP session against a milter, and a helper that applies its modifications as an MTA
 * would. Imports nothing of ours outside src/milter but src/listen.
 */
export { applyModifications, type MessageEnvelope } from './apply.js';
export {
  type ClientLogEntry,
  type ClientOptions,
  type EomResult,
  MilterClient,
  MilterClientError,
  type MilterResponse,
  type Modification,
  type NegotiationResult,
  type ResponseVerdict,
  type Transaction,
  type TransactionResult,
} from './client.js';
