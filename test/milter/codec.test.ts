import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  encodeCommand,
  encodeFrame,
  encodeReplaceBody,
  encodeReply,
  FrameDecoder,
  type MilterCommand,
  MilterProtocolError,
  type MilterReply,
  parseCommand,
  parseReply,
} from '../../src/milter/index.js';
import { be16, be32, cs, pkt } from './helpers.js';

/** Parse a hand-built packet with the decoder and the command parser. */
function parse(packet: Buffer): MilterCommand {
  const decoder = new FrameDecoder();
  decoder.push(packet);
  const frame = decoder.next();
  assert.ok(frame, 'a whole packet');
  assert.equal(decoder.next(), undefined);
  return parseCommand(frame.code, frame.payload);
}

function protocolError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(
    fn,
    (err: unknown) => err instanceof MilterProtocolError && pattern.test(err.message),
  );
}

describe('framing', () => {
  test('a packet is a u32 length counting the command byte, the byte, the payload', () => {
    assert.deepEqual(encodeFrame(0x63), Buffer.from([0, 0, 0, 1, 0x63]));
    assert.deepEqual(
      encodeFrame(0x48, Buffer.from('mx'), Buffer.from([0])),
      Buffer.from([0, 0, 0, 4, 0x48, 0x6d, 0x78, 0]),
    );
  });

  test('partial reads: one byte at a time', () => {
    const bytes = Buffer.concat([pkt('H', cs('mx.example')), pkt('N')]);
    const decoder = new FrameDecoder();
    const got: string[] = [];
    for (const byte of bytes) {
      decoder.push(Buffer.from([byte]));
      for (let f = decoder.next(); f; f = decoder.next()) {
        got.push(`${String.fromCharCode(f.code)}:${f.payload.toString('latin1')}`);
      }
    }
    assert.deepEqual(got, ['H:mx.example\0', 'N:']);
    assert.equal(decoder.buffered, 0);
  });

  test('coalesced reads: many packets in one chunk, and one packet over three chunks', () => {
    const decoder = new FrameDecoder();
    decoder.push(Buffer.concat([pkt('A'), pkt('B', 'xyz'), pkt('Q')]));
    assert.deepEqual(
      [decoder.next(), decoder.next(), decoder.next(), decoder.next()].map((f) =>
        f ? `${String.fromCharCode(f.code)}${f.payload.toString('latin1')}` : null,
      ),
      ['A', 'Bxyz', 'Q', null],
    );
    const body = Buffer.alloc(1000, 7);
    const packet = pkt('B', body);
    decoder.push(packet.subarray(0, 3));
    decoder.push(packet.subarray(3, 500));
    assert.equal(decoder.next(), undefined);
    decoder.push(packet.subarray(500));
    const frame = decoder.next();
    assert.ok(frame);
    assert.deepEqual(frame.payload, body);
  });

  test('binary body bytes survive, NULs and all', () => {
    const chunk = Buffer.from([0, 1, 2, 0xff, 0, 13, 10, 0]);
    assert.deepEqual(parse(pkt('B', chunk)), { type: 'body', chunk });
  });

  test('a zero length is a protocol error, and stays one', () => {
    const decoder = new FrameDecoder();
    decoder.push(Buffer.from([0, 0, 0, 0, 0x41]));
    protocolError(() => decoder.next(), /length 0/);
    protocolError(() => decoder.next(), /length 0/);
  });

  test('an oversize length is refused before any payload is buffered', () => {
    const decoder = new FrameDecoder();
    decoder.push(be32(1024 * 1024 + 1024 + 1));
    protocolError(() => decoder.next(), /exceeds the limit of 1049600/);
    const small = new FrameDecoder({ maxPacketBytes: 10 });
    small.push(pkt('B', Buffer.alloc(10)));
    protocolError(() => small.next(), /length 11 exceeds the limit of 10/);
  });
});

describe('commands (MTA to milter)', () => {
  test('OPTNEG: version, actions, protocol', () => {
    assert.deepEqual(parse(pkt('O', be32(6), be32(0x1ff), be32(0x1fffff))), {
      type: 'optneg',
      version: 6,
      actions: 0x1ff,
      protocol: 0x1fffff,
    });
    protocolError(() => parse(pkt('O', be32(6), be32(0x1ff))), /SMFIC_OPTNEG: truncated/);
  });

  test('MACRO: stage byte, then name/value pairs; no pairs is valid', () => {
    assert.deepEqual(parse(pkt('D', 'C', cs('j'), cs('mx'), cs('{daemon_name}'), cs('smtpd'))), {
      type: 'macro',
      stage: 0x43,
      macros: [
        ['j', 'mx'],
        ['{daemon_name}', 'smtpd'],
      ],
    });
    assert.deepEqual(parse(pkt('D', 'H')), { type: 'macro', stage: 0x48, macros: [] });
    assert.deepEqual(parse(pkt('D', 'Z')), { type: 'macro', stage: 0x5a, macros: [] });
    protocolError(() => parse(pkt('D')), /SMFIC_MACRO: truncated: no macro stage/);
    protocolError(() => parse(pkt('D', 'C', cs('j'))), /macro "j" has no value/);
    protocolError(() => parse(pkt('D', 'C', cs('j'), 'mx')), /no terminating NUL/);
  });

  test('CONNECT: inet, inet6, unix and unknown families', () => {
    assert.deepEqual(parse(pkt('C', cs('client.example'), '4', be16(40000), cs('192.0.2.1'))), {
      type: 'connect',
      hostname: 'client.example',
      family: 'inet',
      port: 40000,
      address: '192.0.2.1',
    });
    assert.deepEqual(parse(pkt('C', cs('[2001:db8::1]'), '6', be16(25), cs('IPv6:2001:db8::1'))), {
      type: 'connect',
      hostname: '[2001:db8::1]',
      family: 'inet6',
      port: 25,
      address: '2001:db8::1',
    });
    assert.deepEqual(parse(pkt('C', cs('localhost'), 'L', be16(0), cs('/run/smtp.sock'))), {
      type: 'connect',
      hostname: 'localhost',
      family: 'unix',
      port: 0,
      address: '/run/smtp.sock',
    });
    assert.deepEqual(parse(pkt('C', cs('unknown'), 'U')), {
      type: 'connect',
      hostname: 'unknown',
      family: 'unknown',
      port: 0,
      address: '',
    });
    protocolError(
      () => parse(pkt('C', cs('h'), 'X', be16(1), cs('a'))),
      /unknown address family 'X'/,
    );
    protocolError(() => parse(pkt('C', cs('h'), '4', Buffer.from([1]))), /port needs 2 bytes/);
    protocolError(
      () => parse(pkt('C', cs('h'), '4', be16(1), '1.2.3.4')),
      /address has no terminating NUL/,
    );
    protocolError(() => parse(pkt('C', cs('h'))), /no address family/);
    protocolError(() => parse(pkt('C', cs('h'), 'U', 'x')), /1 unexpected trailing bytes/);
  });

  test('HELO, MAIL, RCPT, HEADER, UNKNOWN', () => {
    assert.deepEqual(parse(pkt('H', cs('client.example'))), {
      type: 'helo',
      name: 'client.example',
    });
    assert.deepEqual(parse(pkt('M', cs('<a@example.com>'), cs('SIZE=100'), cs('BODY=8BITMIME'))), {
      type: 'mail',
      args: ['<a@example.com>', 'SIZE=100', 'BODY=8BITMIME'],
    });
    assert.deepEqual(parse(pkt('R', cs('<b@example.org>'))), {
      type: 'rcpt',
      args: ['<b@example.org>'],
    });
    assert.deepEqual(parse(pkt('L', cs('Subject'), cs(' hi'))), {
      type: 'header',
      name: 'Subject',
      value: ' hi',
      raw: { name: Buffer.from('Subject'), value: Buffer.from(' hi') },
    });
    const eightBit = parse(pkt('L', cs('X'), Buffer.from([0x20, 0xe9, 0xff, 0])));
    assert.ok(eightBit.type === 'header');
    assert.equal(eightBit.value, ' \ufffd\ufffd');
    assert.deepEqual(eightBit.raw?.value, Buffer.from([0x20, 0xe9, 0xff]));
    assert.deepEqual(
      encodeCommand(eightBit),
      pkt('L', cs('X'), Buffer.from([0x20, 0xe9, 0xff, 0])),
    );
    assert.deepEqual(parse(pkt('U', cs('XFOO bar'))), { type: 'unknown', line: 'XFOO bar' });
    protocolError(() => parse(pkt('M')), /SMFIC_MAIL: no address/);
    protocolError(() => parse(pkt('R', '<b@example.org>')), /SMFIC_RCPT: truncated/);
    protocolError(() => parse(pkt('L', cs('Subject'))), /header value has no terminating NUL/);
    protocolError(() => parse(pkt('H', cs('a'), cs('b'))), /trailing bytes/);
  });

  test('empty commands: EOH, DATA, ABORT, QUIT, QUIT_NC; end of message with or without a chunk', () => {
    assert.deepEqual(parse(pkt('N')), { type: 'eoh' });
    assert.deepEqual(parse(pkt('T')), { type: 'data' });
    assert.deepEqual(parse(pkt('A')), { type: 'abort' });
    assert.deepEqual(parse(pkt('Q')), { type: 'quit' });
    assert.deepEqual(parse(pkt('K')), { type: 'quitNc' });
    assert.deepEqual(parse(pkt('E')), { type: 'eob', chunk: Buffer.alloc(0) });
    assert.deepEqual(parse(pkt('E', 'tail')), { type: 'eob', chunk: Buffer.from('tail') });
    protocolError(() => parse(pkt('N', 'x')), /SMFIC_EOH: 1 unexpected trailing bytes/);
  });

  test('an unknown command is a protocol error, named without raw bytes', () => {
    protocolError(() => parse(pkt('z')), /unknown command 'z' \(0x7a\)/);
    protocolError(() => parse(pkt(0x0a)), /unknown command 0x0a$/);
  });

  test('encodeCommand writes what parseCommand reads', () => {
    const commands: MilterCommand[] = [
      { type: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff },
      { type: 'macro', stage: 0x43, macros: [['j', 'mx']] },
      { type: 'connect', hostname: 'h', family: 'inet', port: 25, address: '192.0.2.1' },
      { type: 'connect', hostname: 'h', family: 'unknown', port: 0, address: '' },
      { type: 'helo', name: 'h' },
      { type: 'mail', args: ['<a@b>', 'SIZE=1'] },
      { type: 'rcpt', args: ['<c@d>'] },
      { type: 'data' },
      {
        type: 'header',
        name: 'From',
        value: 'x',
        raw: { name: Buffer.from('From'), value: Buffer.from('x') },
      },
      { type: 'eoh' },
      { type: 'body', chunk: Buffer.from([0, 1, 2]) },
      { type: 'eob', chunk: Buffer.alloc(0) },
      { type: 'abort' },
      { type: 'quit' },
      { type: 'quitNc' },
      { type: 'unknown', line: 'XYZZY' },
    ];
    for (const command of commands) assert.deepEqual(parse(encodeCommand(command)), command);
    assert.deepEqual(encodeCommand({ type: 'rcpt', args: ['<b@x>'] }), pkt('R', cs('<b@x>')));
  });
});

describe('replies (milter to MTA)', () => {
  const vectors: Array<[MilterReply, Buffer]> = [
    [{ type: 'continue' }, pkt('c')],
    [{ type: 'accept' }, pkt('a')],
    [{ type: 'reject' }, pkt('r')],
    [{ type: 'tempfail' }, pkt('t')],
    [{ type: 'discard' }, pkt('d')],
    [{ type: 'skip' }, pkt('s')],
    [{ type: 'progress' }, pkt('p')],
    [{ type: 'shutdown' }, pkt('4')],
    [{ type: 'connFail' }, pkt('f')],
    [{ type: 'replyCode', text: '550 5.7.1 no' }, pkt('y', cs('550 5.7.1 no'))],
    [{ type: 'addHeader', name: 'X-A', value: 'b' }, pkt('h', cs('X-A'), cs('b'))],
    [
      { type: 'insertHeader', index: 0, name: 'X-A', value: 'b' },
      pkt('i', be32(0), cs('X-A'), cs('b')),
    ],
    [
      { type: 'changeHeader', index: 2, name: 'Subject', value: '' },
      pkt('m', be32(2), cs('Subject'), cs('')),
    ],
    [{ type: 'addRecipient', recipient: '<c@d>' }, pkt('+', cs('<c@d>'))],
    [
      { type: 'addRecipientWithArgs', recipient: '<c@d>', args: 'NOTIFY=NEVER' },
      pkt('2', cs('<c@d>'), cs('NOTIFY=NEVER')),
    ],
    [{ type: 'addRecipientWithArgs', recipient: '<c@d>' }, pkt('2', cs('<c@d>'))],
    [{ type: 'deleteRecipient', recipient: '<c@d>' }, pkt('-', cs('<c@d>'))],
    [{ type: 'changeFrom', sender: '<e@f>' }, pkt('e', cs('<e@f>'))],
    [{ type: 'changeFrom', sender: '<e@f>', args: 'SIZE=1' }, pkt('e', cs('<e@f>'), cs('SIZE=1'))],
    [
      { type: 'replaceBody', chunk: Buffer.from([0, 0xff, 13, 10]) },
      pkt('b', Buffer.from([0, 0xff, 13, 10])),
    ],
    [{ type: 'quarantine', reason: 'suspicious' }, pkt('q', cs('suspicious'))],
    [
      {
        type: 'optneg',
        version: 6,
        actions: 0x101,
        protocol: 0x400,
        symbols: [
          { stage: 0, names: 'j {daemon_name}' },
          { stage: 2, names: '{auth_authen}' },
        ],
      },
      pkt(
        'O',
        be32(6),
        be32(0x101),
        be32(0x400),
        be32(0),
        cs('j {daemon_name}'),
        be32(2),
        cs('{auth_authen}'),
      ),
    ],
  ];

  test('every reply has the bytes the protocol says, and parses back', () => {
    for (const [reply, bytes] of vectors) {
      assert.deepEqual(encodeReply(reply), bytes, reply.type);
      assert.deepEqual(parseReply(bytes[4]!, bytes.subarray(5)), reply, reply.type);
    }
  });

  test('a body replacement is cut into packets of at most 65535 bytes, binary-safe', () => {
    const body = Buffer.alloc(70000);
    for (let i = 0; i < body.length; i += 1) body[i] = i % 256;
    const bytes = encodeReplaceBody(body);
    assert.equal(bytes.readUInt32BE(0), 65536);
    assert.equal(String.fromCharCode(bytes[4]!), 'b');
    const second = 5 + 65535;
    assert.equal(bytes.readUInt32BE(second), 70000 - 65535 + 1);
    assert.deepEqual(Buffer.concat([bytes.subarray(5, second), bytes.subarray(second + 5)]), body);
    assert.deepEqual(encodeReply({ type: 'replaceBody', chunk: body }), bytes);
  });

  test('a malformed or unknown reply is a protocol error', () => {
    assert.throws(() => parseReply(0x68, cs('X-A')), /SMFIR_ADDHEADER: truncated/);
    assert.throws(
      () => parseReply(0x63, Buffer.from('x')),
      /SMFIR_CONTINUE: 1 unexpected trailing/,
    );
    assert.throws(() => parseReply(0x7a, Buffer.alloc(0)), /unknown reply 'z'/);
  });

  test('a NUL inside a string cannot be encoded', () => {
    assert.throws(() => encodeReply({ type: 'addHeader', name: 'X', value: 'a\0b' }), /NUL/);
  });
});
