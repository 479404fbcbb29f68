import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  MilterActionError,
  MilterCallbackTimeout,
  type MilterContext,
  type MilterDefinition,
  type MilterHandler,
  MilterProtocolError,
  MilterReplyError,
  reply,
} from '../../src/milter/index.js';
import { be16, be32, cs, Harness, macroPkt, optnegPkt, pkt, splitPackets } from './helpers.js';

const CONNECT = pkt('C', cs('client.example'), '4', be16(40000), cs('192.0.2.1'));

/** A milter that records every call, with Postfix-like needs. */
function recorder(
  overrides: Partial<MilterHandler> = {},
  definition: Partial<MilterDefinition> = {},
) {
  const calls: string[] = [];
  let made = 0;
  const base: MilterDefinition = {
    name: 'recorder',
    actions: ['addHeader', 'changeHeader'],
    noReply: ['header'],
    macros: { connect: ['j', 'daemon_name'], envfrom: ['i', '{auth_authen}'] },
    handler: () => {
      made += 1;
      const id = made;
      return {
        connect(ctx, info) {
          ctx.state.set('id', id);
          calls.push(
            `connect ${info.hostname} ${info.family} ${info.port} ${info.address} j=${ctx.getSymbol('j')} daemon=${ctx.getSymbol('{daemon_name}')}`,
          );
          return 'continue';
        },
        helo(ctx, name) {
          calls.push(`helo ${name} #${ctx.state.get('id')}`);
          return 'continue';
        },
        envfrom(ctx, sender, params) {
          calls.push(`envfrom ${sender} [${params.join(',')}] i=${ctx.getSymbol('{i}')}`);
          return 'continue';
        },
        envrcpt(ctx, recipient) {
          calls.push(`envrcpt ${recipient} rcpt_addr=${ctx.getSymbol('rcpt_addr')}`);
          return 'continue';
        },
        data() {
          calls.push('data');
          return 'continue';
        },
        header(_ctx, name, value) {
          calls.push(`header ${name}=${value}`);
          return 'continue';
        },
        eoh() {
          calls.push('eoh');
          return 'continue';
        },
        body(_ctx, chunk) {
          calls.push(`body ${chunk.toString('latin1')}`);
          return 'continue';
        },
        eom(ctx) {
          calls.push(
            `eom i=${ctx.getSymbol('i')} j=${ctx.getSymbol('j')} host=${ctx.connection?.hostname}`,
          );
          ctx.addHeader('X-Checked', 'yes');
          ctx.changeHeader('Subject', 1, 'changed');
          return 'accept';
        },
        abort() {
          calls.push('abort');
        },
        close(ctx) {
          calls.push(`close #${ctx.state.get('id')}`);
        },
        ...overrides,
      };
    },
    ...definition,
  };
  return { definition: base, calls, made: () => made };
}

describe('the sequence Postfix 3.7 sends', () => {
  test('negotiation, macros, replies (none for NR steps), one write at eom, A A Q', async () => {
    const { definition, calls } = recorder();
    const h = new Harness(definition);

    await h.send(optnegPkt());
    // Version 6; actions ADDHDRS|CHGHDRS|SETSYMLIST; protocol NOUNKNOWN|NR_HDR|SKIP; two lists.
    assert.deepEqual(h.writes, [
      Buffer.concat([
        be32(53),
        Buffer.from('O'),
        be32(6),
        be32(0x111),
        be32(0x580),
        be32(0),
        cs('j {daemon_name}'),
        be32(2),
        cs('i {auth_authen}'),
      ]),
    ]);
    h.take();

    await h.send(
      macroPkt('C', { j: 'mx.example.org', '{daemon_name}': 'smtpd', v: 'Postfix 3.7' }),
      CONNECT,
    );
    assert.equal(h.letters(), 'c');
    await h.send(macroPkt('H'), pkt('H', cs('client.example')));
    assert.equal(h.letters(), 'c');
    await h.send(
      macroPkt('M', { i: 'QUEUEID1', '{auth_authen}': 'alice' }),
      pkt('M', cs('<a@example.com>'), cs('SIZE=100')),
    );
    assert.equal(h.letters(), 'c');
    await h.send(
      macroPkt('R', { '{rcpt_addr}': 'b@example.org' }),
      pkt('R', cs('<b@example.org>')),
    );
    await h.send(
      macroPkt('R', { '{rcpt_addr}': 'c@example.org' }),
      pkt('R', cs('<c@example.org>')),
    );
    assert.equal(h.letters(), 'cc');
    await h.send(pkt('T'));
    assert.equal(h.letters(), 'c');
    await h.send(macroPkt('L'), pkt('L', cs('From'), cs('a@example.com')));
    await h.send(macroPkt('L'), pkt('L', cs('Subject'), cs('hi')));
    assert.equal(h.letters(), '', 'NR_HDR: no reply to headers');
    await h.send(pkt('N'));
    await h.send(pkt('B', 'hello\r\n'));
    assert.equal(h.letters(), 'cc');
    await h.send(macroPkt('E'), pkt('E'));
    const eom = h.take();
    assert.equal(eom.length, 1, 'all end-of-message replies in one write');
    assert.deepEqual(
      eom[0]!.map(([letter, payload]) => `${letter}:${payload.toString('latin1')}`),
      ['h:X-Checked\0yes\0', `m:${'\0\0\0\x01'}Subject\0changed\0`, 'a:'],
    );
    await h.send(pkt('A'), pkt('A'), pkt('Q'));
    assert.equal(h.letters(), '', 'no reply to A or Q');
    await h.idle();
    assert.deepEqual(h.closedWith, [undefined], 'closed gracefully after QUIT');

    assert.deepEqual(calls, [
      'connect client.example inet 40000 192.0.2.1 j=mx.example.org daemon=smtpd',
      'helo client.example #1',
      'envfrom <a@example.com> [SIZE=100] i=QUEUEID1',
      'envrcpt <b@example.org> rcpt_addr=b@example.org',
      'envrcpt <c@example.org> rcpt_addr=c@example.org',
      'data',
      'header From=a@example.com',
      'header Subject=hi',
      'eoh',
      'body hello\r\n',
      'eom i=QUEUEID1 j=mx.example.org host=client.example',
      'close #1',
    ]);
    assert.deepEqual(h.logger.lines, []);
  });
});

describe('option negotiation', () => {
  test('steps without a callback are asked not to be sent; the MTA sending them anyway gets continue', async () => {
    const h = new Harness({ name: 'helo-only', handler: () => ({ helo: () => 'continue' }) });
    await h.send(optnegPkt());
    // NOMAIL NORCPT NOBODY NOHDRS NOEOH NOUNKNOWN NODATA SKIP, and NR_CONN: CONNECT is still
    // wanted, for ctx.connection, but needs no reply. No actions, no lists.
    assert.deepEqual(h.writes, [pkt('O', be32(6), be32(0), be32(0x177c))]);
    h.take();
    await h.send(CONNECT, pkt('M', cs('<a@b>')), pkt('T'), pkt('L', cs('X'), cs('y')), pkt('E'));
    assert.equal(h.letters(), 'cccc');
  });

  test('what is asked for is a subset of what was offered', async () => {
    const offers: Array<[number, number, number]> = [
      [2, 0x01, 0x3f],
      [6, 0x1ff, 0x1fffff],
      [6, 0x00, 0x000000],
      [4, 0x3f, 0x7f],
      [6, 0x1ff, 0x0fc400],
    ];
    for (const [version, actions, protocol] of offers) {
      const { definition } = recorder(
        { unknown: undefined, data: undefined },
        {
          actions: ['addHeader', 'quarantine', 'replaceBody'],
          noReply: ['connect', 'header', 'body'],
          rejectedRecipients: true,
          headerLeadingSpace: true,
        },
      );
      const h = new Harness(definition);
      await h.send(optnegPkt(version, actions, protocol));
      const packet = h.writes[0]!;
      assert.equal(packet.readUInt32BE(5), Math.min(6, version));
      assert.equal(
        packet.readUInt32BE(9) & ~actions,
        0,
        `actions within 0x${actions.toString(16)}`,
      );
      assert.equal(
        packet.readUInt32BE(13) & ~protocol,
        0,
        `protocol within 0x${protocol.toString(16)}`,
      );
      if (!(actions & 0x100)) assert.equal(packet.length, 17, 'no macro lists without SETSYMLIST');
    }
  });

  test('an MTA that cannot leave out a step it need not wait for is asked for NR_* instead', async () => {
    const h = new Harness({ name: 'x', handler: () => ({ helo: () => 'continue' }) });
    // Offers NR_DATA (0x10000) but not NODATA (0x200).
    await h.send(optnegPkt(6, 0, 0x10000));
    assert.equal(h.writes[0]!.readUInt32BE(13), 0x10000);
    h.take();
    await h.send(pkt('T'));
    assert.equal(h.letters(), '');
  });

  test('RCPT_REJ and HDR_LEADSPC when asked; header values come as the MTA sends them', async () => {
    const values: string[] = [];
    const h = new Harness({
      name: 'x',
      rejectedRecipients: true,
      headerLeadingSpace: true,
      handler: () => ({
        header: (_ctx, _name, value) => {
          values.push(value);
          return 'continue';
        },
      }),
    });
    await h.send(optnegPkt());
    const protocol = h.writes[0]!.readUInt32BE(13);
    assert.equal(protocol & 0x100800, 0x100800);
    await h.send(pkt('L', cs('Subject'), cs(' hi there')));
    assert.deepEqual(values, [' hi there']);
  });

  test('a header reaches the handler also as the bytes sent, 8-bit and folds included', async () => {
    const seen: Array<{ value: string; raw: Buffer; name: Buffer; leadingSpace: boolean }> = [];
    const make = (headerLeadingSpace: boolean) =>
      new Harness({
        name: 'x',
        headerLeadingSpace,
        handler: () => ({
          header: (_ctx, _name, value, raw) => {
            seen.push({ value, raw: raw.value, name: raw.name, leadingSpace: raw.leadingSpace });
            return 'continue';
          },
        }),
      });
    const bytes = Buffer.from(' caf\xe9\n\tsecond line', 'latin1');
    const kept = make(true);
    await kept.send(optnegPkt());
    await kept.send(pkt('L', cs('X-Test'), Buffer.concat([bytes, Buffer.from([0])])));
    assert.equal(seen[0]!.value, ' caf\ufffd\n\tsecond line', 'the text has U+FFFD');
    assert.deepEqual(seen[0]!.raw, bytes, 'the bytes are as sent');
    assert.equal(seen[0]!.name.toString(), 'X-Test');
    assert.equal(seen[0]!.leadingSpace, true);
    const stripped = make(false);
    await stripped.send(optnegPkt());
    await stripped.send(pkt('L', cs('X-Test'), cs('plain')));
    assert.equal(seen[1]!.leadingSpace, false);
  });

  test('versions below 2 are refused as a protocol error; commands before OPTNEG too', async () => {
    const old = new Harness({ name: 'x', handler: () => ({}) });
    await old.send(optnegPkt(1));
    assert.equal(old.writes.length, 0);
    assert.ok(old.closedWith[0] instanceof MilterProtocolError);
    assert.match(old.closedWith[0].message, /version 1 is older than 2/);

    const early = new Harness({ name: 'x', handler: () => ({}) });
    await early.send(pkt('H', cs('x')));
    assert.ok(early.closedWith[0] instanceof MilterProtocolError);
    assert.match(early.closedWith[0].message, /SMFIC_HELO before option negotiation/);

    const twice = new Harness({ name: 'x', handler: () => ({}) });
    await twice.send(optnegPkt(), optnegPkt());
    assert.match(String(twice.closedWith[0]), /second SMFIC_OPTNEG/);
  });

  test('a version below ours is answered with the MTA version', async () => {
    const h = new Harness({ name: 'x', handler: () => ({}) });
    await h.send(optnegPkt(2, 0x0f, 0x7f));
    assert.equal(h.writes[0]!.readUInt32BE(5), 2);
  });
});

describe('macros', () => {
  test('a stage replaces its macros and forgets later ones; x and {x} are one name', async () => {
    const seen: string[] = [];
    const look = (ctx: MilterContext) =>
      ['j', '{j}', 'i', 'rcpt_addr', '{mail_addr}']
        .map((n) => `${n}=${ctx.getSymbol(n)}`)
        .join(' ');
    const h = new Harness({
      name: 'x',
      handler: () => ({
        helo: (ctx) => {
          seen.push(`helo ${look(ctx)}`);
          return 'continue';
        },
        envfrom: (ctx) => {
          seen.push(`mail ${look(ctx)}`);
          return 'continue';
        },
        envrcpt: (ctx) => {
          seen.push(`rcpt ${look(ctx)}`);
          return 'continue';
        },
      }),
    });
    await h.send(optnegPkt(), macroPkt('C', { '{j}': 'mx' }), CONNECT, pkt('H', cs('h')));
    await h.send(macroPkt('M', { i: 'Q1', mail_addr: 'a@b' }), pkt('M', cs('<a@b>')));
    await h.send(macroPkt('R', { '{rcpt_addr}': 'c@d' }), pkt('R', cs('<c@d>')));
    // A new HELO stage set forgets mail and rcpt macros.
    await h.send(macroPkt('H', { j: 'ignored-later?' }), pkt('H', cs('h2')));
    // Macros for stages libmilter does not know are ignored, not an error.
    await h.send(macroPkt('Z', { j: 'zzz' }));
    assert.deepEqual(seen, [
      'helo j=mx {j}=mx i=undefined rcpt_addr=undefined {mail_addr}=undefined',
      'mail j=mx {j}=mx i=Q1 rcpt_addr=undefined {mail_addr}=a@b',
      'rcpt j=mx {j}=mx i=Q1 rcpt_addr=c@d {mail_addr}=a@b',
      // The helo stage's j is found first: later stages are looked at first.
      'helo j=ignored-later? {j}=ignored-later? i=undefined rcpt_addr=undefined {mail_addr}=undefined',
    ]);
    assert.equal(h.closedWith.length, 0);
  });
});

describe('abort, messages, QUIT_NC', () => {
  test('ABORT calls abort once per open message, keeps the connection, forgets message macros', async () => {
    const { definition, calls } = recorder();
    const h = new Harness(definition);
    await h.send(optnegPkt(), CONNECT, pkt('H', cs('h')));
    await h.send(macroPkt('M', { i: 'Q1' }), pkt('M', cs('<a@b>')), pkt('R', cs('<c@d>')));
    await h.send(pkt('A'), pkt('A'));
    await h.send(pkt('M', cs('<e@f>')), pkt('R', cs('<g@h>')), pkt('E'));
    await h.send(pkt('A'), pkt('A'));
    assert.deepEqual(calls.slice(2), [
      'envfrom <a@b> [] i=Q1',
      'envrcpt <c@d> rcpt_addr=undefined',
      'abort',
      'envfrom <e@f> [] i=undefined',
      'envrcpt <g@h> rcpt_addr=undefined',
      'eom i=undefined j=undefined host=client.example',
    ]);
  });

  test('a MAIL or HELO in the middle of a message aborts it first', async () => {
    const { definition, calls } = recorder();
    const h = new Harness(definition);
    await h.send(optnegPkt(), CONNECT, pkt('M', cs('<a@b>')), pkt('M', cs('<c@d>')));
    await h.send(pkt('R', cs('<e@f>')), pkt('H', cs('again')));
    assert.deepEqual(calls.slice(1), [
      'envfrom <a@b> [] i=undefined',
      'abort',
      'envfrom <c@d> [] i=undefined',
      'envrcpt <e@f> rcpt_addr=undefined',
      'abort',
      'helo again #1',
    ]);
  });

  test('several messages per connection, each ending in one write', async () => {
    const { definition, calls } = recorder();
    const h = new Harness(definition);
    await h.send(optnegPkt(), CONNECT);
    h.take();
    for (const sender of ['<one@x>', '<two@x>', '<three@x>']) {
      await h.send(pkt('M', cs(sender)), pkt('R', cs('<r@y>')), pkt('E'));
      const writes = h.take();
      assert.deepEqual(
        writes.map((w) => w.map(([l]) => l).join('')),
        ['c', 'c', 'hma'],
      );
    }
    assert.equal(calls.filter((c) => c.startsWith('eom')).length, 3);
  });

  test('QUIT_NC closes the handler; the next CONNECT gets a new one and the same options', async () => {
    const { definition, calls, made } = recorder({}, { noReply: ['helo'] });
    const h = new Harness(definition);
    await h.send(optnegPkt(), CONNECT, pkt('H', cs('first')), pkt('M', cs('<a@b>')));
    await h.send(pkt('K'));
    await h.send(macroPkt('C', { j: 'second-mx' }), CONNECT, pkt('H', cs('second')), pkt('Q'));
    await h.idle();
    assert.equal(made(), 2);
    assert.deepEqual(calls, [
      'connect client.example inet 40000 192.0.2.1 j=undefined daemon=undefined',
      'helo first #1',
      'envfrom <a@b> [] i=undefined',
      'abort',
      'close #1',
      'connect client.example inet 40000 192.0.2.1 j=second-mx daemon=undefined',
      'helo second #2',
      'close #2',
    ]);
    // O, C, M of the first connection and C of the second; no reply to HELO (NR_HELO) either time.
    assert.equal(h.letters(), 'Occc');
  });
});

describe('verdicts', () => {
  test('a final verdict at connect decides the connection; the handler is not called again', async () => {
    const { definition, calls } = recorder({
      connect: () => reply(554, '5.7.1', 'go away'),
    });
    const h = new Harness(definition);
    await h.send(optnegPkt(), CONNECT);
    h.take();
    await h.send(pkt('H', cs('h')), pkt('M', cs('<a@b>')), pkt('E'));
    assert.equal(h.letters(), 'yyy');
    assert.deepEqual(calls, []);
    await h.send(pkt('Q'));
    await h.idle();
    assert.deepEqual(calls, ['close #undefined']);
  });

  test('reject at envrcpt is that recipient only; accept at envfrom ends the message', async () => {
    const rejected = new Set(['<bad@x>']);
    const { definition, calls } = recorder({
      envrcpt: (_ctx, r) => {
        calls.push(`envrcpt ${r}`);
        return rejected.has(r) ? 'reject' : 'continue';
      },
    });
    const h = new Harness(definition);
    await h.send(optnegPkt(), CONNECT, pkt('M', cs('<a@b>')));
    h.take();
    await h.send(pkt('R', cs('<bad@x>')), pkt('R', cs('<good@x>')), pkt('E'));
    assert.equal(h.letters(), 'rchma');
    assert.deepEqual(calls.slice(2), [
      'envrcpt <bad@x>',
      'envrcpt <good@x>',
      'eom i=undefined j=undefined host=client.example',
    ]);

    const second = recorder({ envfrom: () => 'accept' });
    const h2 = new Harness(second.definition);
    await h2.send(optnegPkt(), CONNECT, pkt('M', cs('<a@b>')), pkt('R', cs('<c@d>')), pkt('E'));
    await h2.send(pkt('A'), pkt('M', cs('<e@f>')));
    assert.equal(h2.letters(), 'Ocaaaa');
    // Accepted message: envrcpt and eom were not called, and ABORT does not call abort.
    assert.deepEqual(second.calls.slice(1), []);
  });

  test('reject at a header ends the message; the next MAIL starts afresh', async () => {
    const { definition, calls } = recorder({ header: () => 'reject' }, { noReply: [] });
    const h = new Harness(definition);
    await h.send(optnegPkt(), CONNECT, pkt('M', cs('<a@b>')), pkt('L', cs('X'), cs('1')));
    await h.send(pkt('L', cs('Y'), cs('2')), pkt('B', 'x'), pkt('E'));
    await h.send(pkt('A'), pkt('M', cs('<c@d>')));
    assert.equal(h.letters(), 'Occrrrrc');
    assert.deepEqual(calls.slice(1), [
      'envfrom <a@b> [] i=undefined',
      'envfrom <c@d> [] i=undefined',
    ]);
  });

  test('skip: only where negotiated and meaningful', async () => {
    const bodies: string[] = [];
    const definition: MilterDefinition = {
      name: 'skipper',
      handler: () => ({
        helo: () => 'skip',
        header: () => 'skip',
        body: (_ctx, chunk) => {
          bodies.push(chunk.toString());
          return 'skip';
        },
        eom: () => 'skip',
      }),
    };
    const h = new Harness(definition);
    await h.send(
      optnegPkt(),
      pkt('H', cs('h')),
      pkt('L', cs('A'), cs('1')),
      pkt('L', cs('B'), cs('2')),
    );
    await h.send(pkt('B', 'one'), pkt('B', 'two'), pkt('E'));
    assert.equal(h.letters(), 'Ocssssc');
    assert.deepEqual(bodies, ['one']);

    const without = new Harness(definition);
    bodies.length = 0;
    await without.send(optnegPkt(6, 0, 0x1fffff & ~0x400), pkt('B', 'one'), pkt('B', 'two'));
    assert.equal(without.letters(), 'Occ');
    assert.deepEqual(bodies, ['one', 'two']);
  });

  test('Sendmail end of message with a last chunk: body first, then eom', async () => {
    const { definition, calls } = recorder();
    const h = new Harness(definition);
    await h.send(optnegPkt(), pkt('M', cs('<a@b>')), pkt('E', 'tail'));
    assert.deepEqual(calls.slice(1), ['body tail', 'eom i=undefined j=undefined host=undefined']);
  });

  test('callbacks are processed strictly in order, queueing behind a pending one', async () => {
    let release!: () => void;
    const order: string[] = [];
    const h = new Harness({
      name: 'slow',
      handler: () => ({
        helo: () =>
          new Promise<'continue'>((resolve) => {
            order.push('helo start');
            release = () => {
              order.push('helo done');
              resolve('continue');
            };
          }),
        envfrom: () => {
          order.push('envfrom');
          return 'reject';
        },
      }),
    });
    await h.send(optnegPkt());
    h.take();
    h.session.receive({ code: 0x48, payload: cs('h') });
    h.session.receive({ code: 0x4d, payload: cs('<a@b>') });
    assert.deepEqual(order, ['helo start']);
    assert.equal(h.session.busy, true);
    release();
    await h.idle();
    assert.deepEqual(order, ['helo start', 'helo done', 'envfrom']);
    assert.equal(h.letters(), 'cr');
  });
});

describe('end-of-message actions', () => {
  test('each action encodes as the protocol says; replaceBody parts and progress', async () => {
    const h = new Harness({
      name: 'editor',
      actions: [
        'addHeader',
        'changeHeader',
        'addRecipient',
        'addRecipientWithArgs',
        'deleteRecipient',
        'changeFrom',
        'replaceBody',
        'quarantine',
      ],
      handler: () => ({
        eom: (ctx) => {
          ctx.progress();
          ctx.addHeader('X-A', 'folded\n\tvalue');
          ctx.insertHeader(0, 'X-First', 'top');
          ctx.changeHeader('Subject', 2, null);
          ctx.addRecipient('<new@x>');
          ctx.addRecipient('<par@x>', 'NOTIFY=NEVER');
          ctx.deleteRecipient('<old@x>');
          ctx.replaceBody('part one, ');
          ctx.changeFrom('<bounce@x>', 'SIZE=10');
          ctx.replaceBody(Buffer.from([0, 1, 2]));
          ctx.quarantine('looks odd');
          return reply(451, '4.7.1', 'later');
        },
      }),
    });
    await h.send(optnegPkt(), pkt('E'));
    const writes = h.take();
    assert.equal(writes.length, 3, 'negotiation, progress at once, then one write');
    assert.deepEqual(
      writes[1]!.map(([l]) => l),
      ['p'],
    );
    assert.deepEqual(
      writes[2]!.map(([l, p]) => `${l}:${p.toString('latin1')}`),
      [
        'h:X-A\0folded\n\tvalue\0',
        'i:\0\0\0\0X-First\0top\0',
        'm:\0\0\0\x02Subject\0\0',
        '+:<new@x>\0',
        '2:<par@x>\0NOTIFY=NEVER\0',
        '-:<old@x>\0',
        'e:<bounce@x>\0SIZE=10\0',
        'q:looks odd\0',
        // Body parts travel together, after the other modifications, as Postfix needs.
        'b:part one, \0\x01\x02',
        'y:451 4.7.1 later\0',
      ],
    );
  });

  test('actions outside eom, not listed, not offered, or with bad arguments throw MilterActionError', async () => {
    const errors: string[] = [];
    const attempt = (what: string, fn: () => void) => {
      try {
        fn();
        errors.push(`${what}: no error`);
      } catch (err) {
        assert.ok(err instanceof MilterActionError, `${what}: ${String(err)}`);
        errors.push(`${what}: ${err.message}`);
      }
    };
    const definition: MilterDefinition = {
      name: 'rules',
      actions: ['addHeader', 'addRecipient'],
      handler: () => ({
        helo: (ctx) => {
          attempt('addHeader in helo', () => ctx.addHeader('X-A', 'b'));
          attempt('progress in helo', () => ctx.progress());
          return 'continue';
        },
        eom: (ctx) => {
          attempt('changeFrom not listed', () => ctx.changeFrom('<a@b>'));
          attempt('addRecipient with args', () => ctx.addRecipient('<a@b>', 'NOTIFY=NEVER'));
          attempt('bad header name', () => ctx.addHeader('X Bad', 'v'));
          attempt('bare LF', () => ctx.addHeader('X-A', 'a\nb'));
          attempt('CR in recipient', () => ctx.addRecipient('<a@b>\r\n'));
          attempt('fine', () => ctx.addHeader('X-Fine', 'ok'));
          return 'continue';
        },
      }),
    };
    const h = new Harness(definition);
    await h.send(optnegPkt(), pkt('H', cs('h')), pkt('E'));
    assert.deepEqual(errors, [
      'addHeader in helo: addHeader() is only allowed in the eom callback (end of message)',
      'progress in helo: no error',
      "changeFrom not listed: changeFrom() needs the 'changeFrom' action: list it in the milter definition's actions",
      "addRecipient with args: addRecipient() needs the 'addRecipientWithArgs' action: list it in the milter definition's actions",
      'bad header name: addHeader(): header name "X Bad" must be printable ASCII without spaces or colon',
      'bare LF: addHeader(): the value contains CR, NUL or an LF not followed by a space or tab (fold with "\\n\\t")',
      'CR in recipient: addRecipient(): the recipient must be a non-empty string without CR, LF or NUL',
      'fine: no error',
    ]);
    assert.equal(h.letters(), 'Opchc'); // the progress in helo goes out at once
    assert.equal(h.logger.lines.length, 0);

    errors.length = 0;
    const notOffered = new Harness(definition);
    await notOffered.send(optnegPkt(6, 0x04, 0x1fffff), pkt('E'));
    assert.match(
      errors[5]!,
      /needs the 'addHeader' action, which the MTA did not offer \(it offered actions 0x4\)/,
    );
    assert.equal(
      notOffered.logger.lines[0]?.level,
      'warn',
      'a missing action is logged at negotiation',
    );
  });
});

describe('replies and failures', () => {
  test('custom replies: % doubled, multi-line as smfi_setmlreply, default enhanced code', async () => {
    const replies = [
      reply(550, '5.7.1', '100% sure'),
      { code: 451, xcode: '4.7.1', lines: ['one', 'two', 'three'] },
      { code: 550, lines: ['no code'] },
    ];
    let i = 0;
    const h = new Harness({ name: 'r', handler: () => ({ helo: () => replies[i++]! }) });
    await h.send(optnegPkt());
    h.take();
    await h.send(
      pkt('K'),
      pkt('H', cs('a')),
      pkt('K'),
      pkt('H', cs('b')),
      pkt('K'),
      pkt('H', cs('c')),
    );
    assert.deepEqual(
      h.take().map((w) => w[0]![1].toString('latin1')),
      [
        '550 5.7.1 100%% sure\0',
        '451-4.7.1 one\r\n451-4.7.1 two\r\n451 4.7.1 three\0',
        '550 5.0.0 no code\0',
      ],
    );
  });

  test('invalid replies are programming errors: reply() throws, a returned one answers onError', async () => {
    assert.throws(() => reply(250, undefined, 'ok'), MilterReplyError);
    assert.throws(() => reply(550, '4.7.1', 'x'), /class must be 5/);
    assert.throws(() => reply(550, '5.7', 'x'), /not of the form/);
    assert.throws(() => reply(550, '5.7.1'), /1 to 32 lines/);
    assert.throws(() => reply(550, '5.7.1', ...Array(33).fill('x')), /1 to 32 lines/);
    assert.throws(() => reply(550, '5.7.1', 'a\r\nb'), /CR, LF or NUL/);

    const bad: unknown[] = [
      { code: 250, lines: ['x'] },
      { code: 550, xcode: '4.1.1', lines: ['x'] },
      { code: 550, lines: ['a\nb'] },
      undefined,
      'maybe',
    ];
    let i = 0;
    const h = new Harness({
      name: 'bad',
      handler: () => ({ helo: () => bad[i++] as 'continue' }),
    });
    await h.send(optnegPkt());
    h.take();
    for (let n = 0; n < bad.length; n += 1) await h.send(pkt('K'), pkt('H', cs('h')));
    assert.equal(h.letters(), 'ttttt');
    assert.equal(h.logger.lines.length, bad.length);
    for (const line of h.logger.lines) {
      assert.equal(line.level, 'error');
      assert.equal(line.fields.step, 'helo');
      assert.ok(line.fields.err instanceof MilterReplyError);
    }
    assert.match(String(h.logger.lines[3]!.fields.err), /returned undefined/);
  });

  test('a throwing or rejecting callback answers per onError, with one log line carrying the stack', async () => {
    for (const [onError, letter] of [
      [undefined, 't'],
      ['tempfail', 't'],
      ['continue', 'c'],
      ['reject', 'r'],
    ] as const) {
      const h = new Harness({
        name: 'boom',
        onError,
        handler: () => ({
          envrcpt: (_ctx, recipient) => {
            if (recipient === '<sync@x>') throw new Error('envrcpt exploded');
            return Promise.reject(new Error('envrcpt rejected'));
          },
        }),
      });
      // A failed recipient does not end the message, so both are asked.
      await h.send(optnegPkt(), pkt('R', cs('<sync@x>')), pkt('R', cs('<async@x>')));
      assert.equal(h.letters(), `O${letter}${letter}`);
      assert.equal(h.logger.lines.length, 2);
      const [first, second] = h.logger.lines;
      assert.equal(first!.level, 'error');
      assert.equal(first!.fields.step, 'envrcpt');
      assert.match((first!.fields.err as Error).stack!, /envrcpt exploded\n\s+at /);
      assert.match((second!.fields.err as Error).stack!, /envrcpt rejected\n\s+at /);
    }
  });

  test('a callback that exceeds callbackTimeoutMs answers onError; its late actions throw', async () => {
    let finishEom!: () => void;
    let late: unknown;
    const h = new Harness(
      {
        name: 'sloth',
        actions: ['addHeader'],
        handler: () => ({
          helo: () => new Promise<'continue'>(() => {}),
          eom: (ctx) => {
            ctx.addHeader('X-Early', 'dropped');
            return new Promise<'accept'>((resolve) => {
              finishEom = () => {
                try {
                  ctx.addHeader('X-Late', 'no');
                } catch (err) {
                  late = err;
                }
                resolve('accept');
              };
            });
          },
        }),
      },
      { callbackTimeoutMs: 20 },
    );
    // The timed-out HELO decides the connection (tempfail); QUIT_NC starts a new one.
    await h.send(optnegPkt(), pkt('H', cs('h')), pkt('K'), pkt('E'));
    assert.equal(h.letters(), 'Ott', 'the early header is dropped with the failed eom');
    assert.equal(h.logger.lines.length, 2);
    assert.ok(h.logger.lines[0]!.fields.err instanceof MilterCallbackTimeout);
    assert.match(
      String(h.logger.lines[0]!.fields.err),
      /helo callback did not finish within 20 ms/,
    );
    finishEom();
    assert.ok(late instanceof MilterActionError);
    await h.send(pkt('Q'));
    assert.deepEqual(h.closedWith, [undefined]);
  });

  test('a handler without connect and helo callbacks still knows the connection and HELO', async () => {
    let seen: unknown;
    const h = new Harness({
      name: 'facts',
      handler: () => ({
        envfrom: (ctx) => {
          seen = { address: ctx.connection?.address, helo: ctx.helo };
          return 'continue';
        },
      }),
    });
    await h.send(optnegPkt(), CONNECT, pkt('H', cs('client.example')), pkt('M', cs('<a@b>')));
    // CONNECT and HELO need no reply (NR_CONN, NR_HELO); MAIL is answered.
    assert.equal(h.letters(), 'Oc');
    assert.deepEqual(seen, { address: '192.0.2.1', helo: 'client.example' });
  });

  test('discard at connect is sent once and does not end the connection', async () => {
    let mails = 0;
    const h = new Harness({
      name: 'discarder',
      handler: () => ({
        connect: () => 'discard',
        envfrom: () => {
          mails += 1;
          return 'continue';
        },
      }),
    });
    await h.send(optnegPkt(), CONNECT, pkt('M', cs('<a@b>')));
    assert.equal(h.letters(), 'Odc');
    assert.equal(mails, 1);
    assert.equal(h.logger.lines.length, 1);
  });

  test("a timed-out eom's late actions do not land in the next message's end of message", async () => {
    let finishFirst!: () => void;
    let late: unknown;
    let calls = 0;
    const h = new Harness(
      {
        name: 'late',
        actions: ['addHeader'],
        handler: () => ({
          eom: (ctx) => {
            calls += 1;
            if (calls === 2) {
              // The second message's eom is running while the first one's late action comes.
              finishFirst();
              ctx.addHeader('X-Second', '2');
              return 'continue';
            }
            return new Promise<'continue'>((resolve) => {
              finishFirst = () => {
                try {
                  ctx.addHeader('X-From-First', '1');
                } catch (err) {
                  late = err;
                }
                resolve('continue');
              };
            });
          },
        }),
      },
      { callbackTimeoutMs: 20 },
    );
    await h.send(optnegPkt(), pkt('E'));
    assert.equal(h.letters(), 'Ot', 'the first eom timed out');
    h.take();
    await h.send(pkt('E'));
    assert.ok(late instanceof MilterActionError, 'the late action was refused');
    const packets = splitPackets(Buffer.concat(h.writes));
    assert.deepEqual(
      packets.map(([letter]) => letter),
      ['h', 'c'],
    );
    assert.match(packets[0]![1].toString('latin1'), /^X-Second\0/);
  });

  test('abort and close failures are logged, and change nothing else', async () => {
    const h = new Harness({
      name: 'x',
      handler: () => ({
        envfrom: () => 'continue',
        abort: () => {
          throw new Error('abort failed');
        },
        close: async () => {
          throw new Error('close failed');
        },
      }),
    });
    await h.send(optnegPkt(), pkt('M', cs('<a@b>')), pkt('A'), pkt('Q'));
    await h.idle();
    assert.deepEqual(
      h.logger.lines.map((l) => `${l.level} ${l.fields.step}`),
      ['error abort', 'error close'],
    );
    assert.deepEqual(h.closedWith, [undefined]);
  });

  test('a handler factory that throws gets the connection the onError answer', async () => {
    let made = 0;
    const h = new Harness({
      name: 'fragile',
      handler: () => {
        made += 1;
        if (made > 1) throw new Error('no more handlers');
        return { helo: () => 'continue' };
      },
    });
    await h.send(
      optnegPkt(),
      pkt('H', cs('first')),
      pkt('K'),
      pkt('H', cs('second')),
      pkt('M', cs('<a@b>')),
    );
    assert.equal(h.letters(), 'Octt');
    assert.equal(h.logger.lines.length, 1);
    assert.match(String(h.logger.lines[0]!.fields.err), /no more handlers/);
  });

  test('terminate while a callback runs: no more writes, then abort and close', async () => {
    let release!: () => void;
    const calls: string[] = [];
    const h = new Harness({
      name: 'x',
      handler: () => ({
        envrcpt: () =>
          new Promise<'continue'>((resolve) => {
            release = () => resolve('continue');
          }),
        abort: () => {
          calls.push('abort');
        },
        close: () => {
          calls.push('close');
        },
      }),
    });
    await h.send(optnegPkt(), pkt('M', cs('<a@b>')));
    h.take();
    h.session.receive({ code: 0x52, payload: cs('<c@d>') });
    const finished = h.session.terminate();
    assert.deepEqual(calls, []);
    release();
    await finished;
    assert.deepEqual(calls, ['abort', 'close']);
    assert.equal(h.writes.length, 0);
  });
});

describe('hostile input', () => {
  test('random packets never crash the session: each run ends answered, quit or refused', async () => {
    // A fixed seed, so that a failure can be replayed.
    let seed = 0x5eed;
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const letters = 'ABCDEHKLMNOQRTUXy\0';
    for (let run = 0; run < 300; run += 1) {
      const { definition } = recorder();
      const h = new Harness(definition);
      const packets = [optnegPkt()];
      for (let n = Math.floor(random() * 12); n > 0; n -= 1) {
        const letter = letters[Math.floor(random() * letters.length)]!;
        const payload = Buffer.alloc(Math.floor(random() * 12));
        for (let i = 0; i < payload.length; i += 1)
          payload[i] = random() < 0.3 ? 0 : Math.floor(random() * 256);
        packets.push(pkt(letter, payload));
      }
      await h.send(...packets);
      await h.idle();
      for (const closed of h.closedWith) {
        assert.ok(closed === undefined || closed instanceof MilterProtocolError, String(closed));
      }
    }
  });
});
