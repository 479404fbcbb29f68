/**
 * Applying end-of-message modifications to a message the way an MTA does, so that a test can
 * compare the message a milter would leave behind with the one it expects.
 */
import type { Modification } from './client.js';

/** A message as the MTA holds it at end of message. */
export interface MessageEnvelope {
  /** Header fields in order; values as the milter protocol carries them. */
  headers: Array<[name: string, value: string]>;
  body: Buffer;
  sender: string;
  recipients: string[];
  /** Set by a quarantine modification. */
  quarantine?: string;
}

/** `<a@B.example>` and `a@b.example` are the same address to an MTA. */
function sameAddress(a: string, b: string): boolean {
  const bare = (text: string) =>
    text
      .trim()
      .replace(/^<(.*)>$/s, '$1')
      .toLowerCase();
  return bare(a) === bare(b);
}

/**
 * The message after the modifications, applied in order with Sendmail's and Postfix's rules:
 * addHeader appends; insertHeader puts the header at `index` (0 = first); changeHeader replaces
 * the `index`th header of that name (1-based, names compared without case, 0 taken as 1), an
 * empty value deletes it, and a missing one is appended (Sendmail compatibility, which Postfix
 * keeps); deleteRecipient removes the recipients with that address; replaceBody replaces the
 * body; progress changes nothing. The input is not changed.
 *
 * @example
 * const after = applyModifications(
 *   { headers: [['Subject', 'hi']], body: Buffer.from('x\r\n'), sender: '<a@x>', recipients: ['<b@y>'] },
 *   eom.modifications,
 * );
 */
export function applyModifications(
  message: MessageEnvelope,
  modifications: readonly Modification[],
): MessageEnvelope {
  const headers = message.headers.map(([name, value]) => [name, value] as [string, string]);
  let body = message.body;
  let sender = message.sender;
  let recipients = [...message.recipients];
  let quarantine = message.quarantine;
  for (const modification of modifications) {
    switch (modification.action) {
      case 'addHeader':
        headers.push([modification.name, modification.value]);
        break;
      case 'insertHeader':
        headers.splice(Math.min(modification.index, headers.length), 0, [
          modification.name,
          modification.value,
        ]);
        break;
      case 'changeHeader': {
        const wanted = Math.max(1, modification.index);
        const lower = modification.name.toLowerCase();
        let seen = 0;
        const at = headers.findIndex(([name]) => name.toLowerCase() === lower && ++seen === wanted);
        if (at >= 0) {
          if (modification.value === '') headers.splice(at, 1);
          else headers[at] = [headers[at]![0], modification.value];
        } else if (modification.value !== '') {
          headers.push([modification.name, modification.value]);
        }
        break;
      }
      case 'addRecipient':
      case 'addRecipientWithArgs':
        recipients.push(modification.recipient);
        break;
      case 'deleteRecipient':
        recipients = recipients.filter((r) => !sameAddress(r, modification.recipient));
        break;
      case 'changeFrom':
        sender = modification.sender;
        break;
      case 'replaceBody':
        body = modification.body;
        break;
      case 'quarantine':
        quarantine = modification.reason;
        break;
      case 'progress':
        break;
    }
  }
  const result: MessageEnvelope = { headers, body, sender, recipients };
  if (quarantine !== undefined) result.quarantine = quarantine;
  return result;
}
