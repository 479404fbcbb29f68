/**
 * The message a command reads: a file, or standard input when none is named. An unreadable file
 * is a usage error (exit 2), as a wrong argument is.
 */
import { readFile } from 'node:fs/promises';
import { escapeForLog } from '../text/index.js';
import { UsageError } from './usage.js';

/** Largest message read: bigger than any a mail server accepts. */
const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

/**
 * @example
 * const message = await readMessage(file);  // Buffer; standard input when file is undefined
 */
export async function readMessage(file: string | undefined): Promise<Buffer> {
  if (file === undefined || file === '-') return readStdin();
  try {
    const bytes = await readFile(file);
    if (bytes.length > MAX_MESSAGE_BYTES) {
      throw new UsageError(`${escapeForLog(file)}: larger than ${MAX_MESSAGE_BYTES} bytes`);
    }
    return bytes;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read ${escapeForLog(file)}: ${(err as Error).message}`);
  }
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of process.stdin) {
      const bytes = chunk as Buffer;
      size += bytes.length;
      if (size > MAX_MESSAGE_BYTES) {
        throw new UsageError(`standard input: larger than ${MAX_MESSAGE_BYTES} bytes`);
      }
      chunks.push(bytes);
    }
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read standard input: ${(err as Error).message}`);
  }
  return Buffer.concat(chunks);
}
