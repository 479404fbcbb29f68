// Hostile records must end in a result, never in an exception of another kind: random records
// built from SPF's own vocabulary and stray bytes, with a fixed seed so a failure can be replayed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expandMacroString, parseMacroString } from '../../../src/checks/spf/macro.js';
import { SpfProblem } from '../../../src/checks/spf/problem.js';
import { parseRecord } from '../../../src/checks/spf/record.js';
import { parseIp } from '../../../src/dns/address.js';

const PIECES = [
  'a',
  'mx',
  'ptr',
  'ip4:',
  'ip6:',
  'include:',
  'exists:',
  'all',
  'redirect=',
  'exp=',
  'default=',
  '+',
  '-',
  '~',
  '?',
  ':',
  '/',
  '//',
  '.',
  '%{',
  '}',
  '%%',
  '%_',
  '%-',
  '%',
  'd',
  'i',
  'r',
  'l',
  '1',
  '0',
  '24',
  '128',
  '33',
  '192.0.2.1',
  '::1',
  'example.com',
  ' ',
  '  ',
  '\t',
  '\r',
  '\n',
  '\0',
  '\u00e9',
  '=',
  ',',
  'prt',
  'ipv4',
  'v=spf1',
];

function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 0x100000000;
  };
}

test('random records parse or fail with an SpfProblem, in strict and lax mode', () => {
  const random = lcg(20261121);
  for (let n = 0; n < 5000; n++) {
    let text = 'v=spf1';
    const length = 1 + Math.floor(random() * 12);
    for (let i = 0; i < length; i++) text += PIECES[Math.floor(random() * PIECES.length)];
    for (const lax of [false, true]) {
      try {
        parseRecord(text, lax);
      } catch (err) {
        assert.ok(err instanceof SpfProblem, `${JSON.stringify(text)}: ${(err as Error).stack}`);
      }
    }
  }
});

test('random macro strings expand to text or fail with an SpfProblem', () => {
  const random = lcg(7);
  const values = {
    sender: 'a\r\n@b.example',
    local: 'a\r\n',
    senderDomain: 'b.example',
    domain: 'b.example',
    ip: parseIp('2001:db8::1')!,
    helo: '\0',
    receiver: 'r',
    timestamp: 0,
  };
  for (let n = 0; n < 5000; n++) {
    let text = '';
    const length = 1 + Math.floor(random() * 10);
    for (let i = 0; i < length; i++) text += PIECES[Math.floor(random() * PIECES.length)];
    for (const kind of ['domain', 'explanation'] as const) {
      try {
        assert.equal(typeof expandMacroString(parseMacroString(text, kind), values), 'string');
      } catch (err) {
        assert.ok(err instanceof SpfProblem, `${JSON.stringify(text)}: ${(err as Error).stack}`);
      }
    }
  }
});
