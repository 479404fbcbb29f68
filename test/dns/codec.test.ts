// Wire-level pieces without a network: name checks, response decoding and validation, and the
// mapping of a response to an outcome.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as packet from 'dns-packet';
import {
  answersQuestion,
  decodeResponse,
  encodeQuery,
  queryName,
  rcodeName,
} from '../../src/dns/codec.js';
import { interpret } from '../../src/dns/outcome.js';

test('queryName accepts what the wire can carry and nothing else', () => {
  assert.equal(queryName('Example.COM.'), 'Example.COM');
  assert.equal(queryName('.'), '.');
  assert.equal(queryName(`${'a'.repeat(63)}.example`), `${'a'.repeat(63)}.example`);
  assert.equal(queryName(`${'a'.repeat(64)}.example`), null);
  assert.equal(queryName(`${'é'.repeat(32)}.example`), null, 'labels are measured in octets');
  assert.equal(queryName('a..example'), null);
  assert.equal(queryName('example..'), null);
  assert.equal(queryName(''), null);
  const max = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
  assert.equal(max.length, 253);
  assert.equal(queryName(max), max);
  assert.equal(queryName(`${max}.`), max);
  assert.equal(queryName(`x${max}`), null);
});

test('encodeQuery asks recursively, with OPT only when EDNS is on', () => {
  const withOpt = packet.decode(encodeQuery({ id: 99, name: 'example.com', type: 'SPF' }, 1232));
  assert.equal(withOpt.id, 99);
  assert.equal(withOpt.flag_rd, true);
  assert.deepEqual(withOpt.questions, [{ name: 'example.com', type: 'SPF', class: 'IN' }]);
  const opt = withOpt.additionals?.[0] as packet.OptAnswer;
  assert.equal(opt.type, 'OPT');
  assert.equal(opt.udpPayloadSize, 1232);
  const plain = packet.decode(encodeQuery({ id: 1, name: 'example.com', type: 'A' }, 0));
  assert.equal(plain.additionals?.length, 0);
});

function reply(p: Partial<packet.Packet> & { rcode?: number; ext?: number } = {}): Buffer {
  return packet.encode({
    type: 'response',
    id: p.id ?? 5,
    flags: 0x0180 | (p.rcode ?? 0),
    questions: p.questions ?? [{ name: 'Example.com', type: 'A', class: 'IN' }],
    answers: p.answers ?? [],
    authorities: p.authorities ?? [],
    additionals:
      p.ext === undefined
        ? []
        : [
            {
              name: '.',
              type: 'OPT',
              udpPayloadSize: 1232,
              extendedRcode: p.ext,
              ednsVersion: 0,
              flags: 0,
              flag_do: false,
              options: [],
            },
          ],
  });
}

test('decodeResponse rejects garbage, queries and other opcodes', () => {
  assert.equal(decodeResponse(Buffer.from([1, 2, 3])), null);
  assert.equal(decodeResponse(Buffer.alloc(300, 0xc0)), null);
  const query = encodeQuery({ id: 5, name: 'example.com', type: 'A' }, 0);
  assert.equal(decodeResponse(query), null);
  const notify = Buffer.from(reply());
  notify[2] = notify[2]! | (4 << 3);
  assert.equal(decodeResponse(notify), null);
  const truncatedMidRecord = reply({
    answers: [{ name: 'example.com', type: 'A', ttl: 1, data: '192.0.2.1' }],
  }).subarray(0, 40);
  assert.equal(decodeResponse(truncatedMidRecord), null);
});

test('decodeResponse folds the EDNS extended rcode in and drops odd records', () => {
  assert.equal(decodeResponse(reply({ ext: 1 }))?.rcode, 16);
  assert.equal(rcodeName(16), 'BADVERS');
  const message = decodeResponse(
    reply({
      answers: [
        { name: 'example.com', type: 'A', ttl: 1, data: '192.0.2.1' },
        { name: 'example.com', type: 'A', ttl: 1, class: 'CH', data: '192.0.2.2' },
        { name: 'example.com', type: 'HINFO', ttl: 1, data: { cpu: 'x', os: 'y' } },
        { name: 'example.com', type: 'SPF' as 'NULL', ttl: 1, data: Buffer.from([9, 0x61]) },
      ],
    }),
  );
  assert.deepEqual(message?.answers, [
    { type: 'A', name: 'example.com', ttl: 1, address: '192.0.2.1' },
  ]);
});

test('answersQuestion matches ID, name in any case, type and class', () => {
  const q = { id: 5, name: 'example.COM', type: 'A' as const };
  assert.equal(answersQuestion(decodeResponse(reply())!, q), true);
  assert.equal(answersQuestion(decodeResponse(reply({ id: 6 }))!, q), false);
  const otherType = reply({ questions: [{ name: 'example.com', type: 'AAAA' }] });
  assert.equal(answersQuestion(decodeResponse(otherType)!, q), false);
  const otherClass = reply({ questions: [{ name: 'example.com', type: 'A', class: 'CH' }] });
  assert.equal(answersQuestion(decodeResponse(otherClass)!, q), false);
  const otherName = reply({ questions: [{ name: 'example.net', type: 'A' }] });
  assert.equal(answersQuestion(decodeResponse(otherName)!, q), false);
  // An error without a question is believed on its ID; an answer without one is not.
  assert.equal(answersQuestion(decodeResponse(reply({ questions: [], rcode: 1 }))!, q), true);
  assert.equal(answersQuestion(decodeResponse(reply({ questions: [] }))!, q), false);
  assert.equal(answersQuestion(decodeResponse(reply({ questions: [], rcode: 3 }))!, q), false);
});

const soa = {
  name: 'example.com',
  type: 'SOA' as const,
  ttl: 600,
  data: { mname: 'ns', rname: 'host', serial: 1, minimum: 120 },
};
const cname = (name: string, target: string, ttl = 300) => ({
  name,
  type: 'CNAME' as const,
  ttl,
  data: target,
});

test('interpret walks the chain from the question and only the chain', () => {
  const message = decodeResponse(
    reply({
      answers: [
        cname('example.com', 'B.example.com', 50),
        { name: 'c.example.com', type: 'A', ttl: 10, data: '198.51.100.1' },
        { name: 'b.example.com', type: 'A', ttl: 300, data: '192.0.2.1' },
      ],
    }),
  )!;
  const outcome = interpret('EXAMPLE.com', 'A', message);
  assert.equal(outcome.kind, 'final');
  assert.ok(outcome.kind === 'final' && outcome.result.kind === 'answer');
  assert.deepEqual(
    outcome.result.records.map((r) => r.type === 'A' && r.address),
    ['192.0.2.1'],
  );
  assert.equal(outcome.ttl, 50);
});

test('interpret: NODATA with SOA, an unfinished chain, NXDOMAIN at the end, a loop', () => {
  const nodata = interpret('example.com', 'MX', decodeResponse(reply({ authorities: [soa] }))!);
  assert.deepEqual(nodata, { kind: 'final', result: { kind: 'nodata', cached: false }, ttl: 120 });
  const unfinished = interpret(
    'example.com',
    'A',
    decodeResponse(reply({ answers: [cname('example.com', 'elsewhere.example.net')] }))!,
  );
  assert.equal(unfinished.kind === 'follow' && unfinished.next, 'elsewhere.example.net');
  const finishedEmpty = interpret(
    'example.com',
    'A',
    decodeResponse(
      reply({ answers: [cname('example.com', 'x.example.com', 30)], authorities: [soa] }),
    )!,
  );
  assert.deepEqual(finishedEmpty, {
    kind: 'final',
    result: { kind: 'nodata', cached: false },
    ttl: 30,
  });
  const nx = interpret(
    'example.com',
    'A',
    decodeResponse(
      reply({ rcode: 3, answers: [cname('example.com', 'gone.example.com')], authorities: [soa] }),
    )!,
  );
  assert.deepEqual(nx, { kind: 'final', result: { kind: 'nxdomain', cached: false }, ttl: 120 });
  const noSoa = interpret('example.com', 'A', decodeResponse(reply({ rcode: 3 }))!);
  assert.deepEqual(noSoa, {
    kind: 'final',
    result: { kind: 'nxdomain', cached: false },
    ttl: undefined,
  });
  const loop = interpret(
    'a.example',
    'A',
    decodeResponse(
      reply({
        questions: [{ name: 'a.example', type: 'A' }],
        answers: [cname('a.example', 'b.example'), cname('b.example', 'A.example')],
      }),
    )!,
  );
  assert.deepEqual(loop, {
    kind: 'final',
    result: { kind: 'nodata', cached: false },
    ttl: undefined,
  });
  const asked = interpret(
    'example.com',
    'CNAME',
    decodeResponse(reply({ answers: [cname('example.com', 'x.example.com')] }))!,
  );
  assert.ok(asked.kind === 'final' && asked.result.kind === 'answer');
});
