/**
 * A Postfix-like policy client for tests: one connection, requests sent as Postfix sends them,
 * replies read up to the empty line.
 */
import { connect, type Socket } from 'node:net';

/** The attributes Postfix 3.7 sends at RCPT, with test values; override what a test needs. */
export function rcptRequest(attributes: Record<string, string> = {}): Record<string, string> {
  return {
    request: 'smtpd_access_policy',
    protocol_state: 'RCPT',
    protocol_name: 'ESMTP',
    client_address: '192.0.2.10',
    client_name: 'unknown',
    reverse_client_name: 'unknown',
    helo_name: 'client.example',
    sender: 'sender@example.org',
    recipient: 'user@example.net',
    recipient_count: '0',
    queue_id: '',
    instance: '1a2b.6543210.1234.0',
    size: '0',
    sasl_method: '',
    sasl_username: '',
    sasl_sender: '',
    ...attributes,
  };
}

/** Encodes a request: `name=value` lines and the empty line. */
export function encodeRequest(attributes: Record<string, string>): string {
  let text = '';
  for (const [name, value] of Object.entries(attributes)) text += `${name}=${value}\n`;
  return `${text}\n`;
}

export interface PolicyClient {
  /** Sends one request and resolves to the action (the text after `action=`). */
  ask(attributes: Record<string, string>): Promise<string>;
  /** Whether the server closed the connection. */
  readonly closed: boolean;
  close(): void;
}

/**
 * Connects to a policy server at 127.0.0.1:port (or a unix socket path).
 *
 * @example
 * const client = await policyClient(10027);
 * assert.equal(await client.ask(rcptRequest()), 'DUNNO');
 */
export async function policyClient(where: number | string): Promise<PolicyClient> {
  const socket: Socket = typeof where === 'number' ? connect(where, '127.0.0.1') : connect(where);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let buffer = '';
  let closed = false;
  const waiting: Array<{ resolve: (a: string) => void; reject: (e: Error) => void }> = [];
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const reply = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const next = waiting.shift();
      if (!next) continue;
      if (reply.startsWith('action=')) next.resolve(reply.slice('action='.length));
      else next.reject(new Error(`not a policy reply: ${JSON.stringify(reply)}`));
    }
  });
  const fail = (err: Error) => {
    closed = true;
    for (const w of waiting.splice(0)) w.reject(err);
  };
  socket.on('error', fail);
  socket.on('close', () => fail(new Error('connection closed by the server')));
  return {
    ask(attributes) {
      return new Promise((resolve, reject) => {
        if (closed) {
          reject(new Error('connection closed'));
          return;
        }
        waiting.push({ resolve, reject });
        socket.write(encodeRequest(attributes));
      });
    },
    get closed() {
      return closed;
    },
    close() {
      socket.destroy();
    },
  };
}
