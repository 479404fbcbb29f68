/**
 * SMFIC_* commands, MTA to milter: parsing every command of protocol version 6 into a typed
 * value (strictly: a truncated or malformed payload or an unknown command is a protocol error),
 * and encoding them back for the MTA-side test client.
 */
import { Command, Family } from './constants.js';
import {
  cbytes,
  cstring,
  describeCode,
  encodeFrame,
  MilterProtocolError,
  PayloadReader,
  u32,
} from './frame.js';
import type { ConnectInfo } from './types.js';

/** A command from the MTA, parsed. */
export type MilterCommand =
  | { type: 'optneg'; version: number; actions: number; protocol: number }
  /** `stage` is the command byte the macros are for (`C`, `H`, `M`, `R`, `T`, `L`, `N`, `B`, `E`...). */
  | { type: 'macro'; stage: number; macros: Array<[name: string, value: string]> }
  | ({ type: 'connect' } & ConnectInfo)
  | { type: 'helo'; name: string }
  /** `args[0]` is the address, the rest are ESMTP parameters. */
  | { type: 'mail'; args: string[] }
  | { type: 'rcpt'; args: string[] }
  | { type: 'data' }
  /**
   * `name` and `value` decoded as UTF-8; `raw` holds the bytes as sent (always set by
   * parseCommand; when given to encodeCommand it is what goes on the wire).
   */
  | { type: 'header'; name: string; value: string; raw?: { name: Buffer; value: Buffer } }
  | { type: 'eoh' }
  | { type: 'body'; chunk: Buffer }
  /** End of message. Sendmail may send a last body chunk with it; Postfix never does. */
  | { type: 'eob'; chunk: Buffer }
  | { type: 'abort' }
  | { type: 'quit' }
  | { type: 'quitNc' }
  | { type: 'unknown'; line: string };

const NAMES: Record<number, string> = {
  [Command.ABORT]: 'SMFIC_ABORT',
  [Command.BODY]: 'SMFIC_BODY',
  [Command.CONNECT]: 'SMFIC_CONNECT',
  [Command.MACRO]: 'SMFIC_MACRO',
  [Command.BODYEOB]: 'SMFIC_BODYEOB',
  [Command.HELO]: 'SMFIC_HELO',
  [Command.QUIT_NC]: 'SMFIC_QUIT_NC',
  [Command.HEADER]: 'SMFIC_HEADER',
  [Command.MAIL]: 'SMFIC_MAIL',
  [Command.EOH]: 'SMFIC_EOH',
  [Command.OPTNEG]: 'SMFIC_OPTNEG',
  [Command.QUIT]: 'SMFIC_QUIT',
  [Command.RCPT]: 'SMFIC_RCPT',
  [Command.DATA]: 'SMFIC_DATA',
  [Command.UNKNOWN]: 'SMFIC_UNKNOWN',
};

/**
 * The protocol's name of a command byte, for logs.
 *
 * @example
 * commandName(0x4d)  // 'SMFIC_MAIL'
 */
export function commandName(code: number): string {
  return NAMES[code] ?? `unknown command ${describeCode(code)}`;
}

function parseFamily(byte: number, what: string): ConnectInfo['family'] {
  switch (byte) {
    case Family.INET:
      return 'inet';
    case Family.INET6:
      return 'inet6';
    case Family.UNIX:
      return 'unix';
    case Family.UNKNOWN:
      return 'unknown';
    default:
      throw new MilterProtocolError(`${what}: unknown address family ${describeCode(byte)}`);
  }
}

function parseConnect(reader: PayloadReader, what: string): MilterCommand {
  const hostname = reader.string('hostname');
  const family = parseFamily(reader.u8('address family'), what);
  if (family === 'unknown') {
    reader.end();
    return { type: 'connect', hostname, family, port: 0, address: '' };
  }
  const port = reader.u16('port');
  let address = reader.string(family === 'unix' ? 'socket path' : 'address');
  reader.end();
  // Sendmail has written IPv6 clients as "IPv6:addr" (its RFC 5321 literal form); the contract
  // promises plain IP text.
  if (family === 'inet6' && /^ipv6:/i.test(address)) address = address.slice(5);
  return { type: 'connect', hostname, family, port: family === 'unix' ? 0 : port, address };
}

/**
 * Parse one command packet. Throws MilterProtocolError for an unknown command or a payload that
 * is truncated, has trailing bytes, or breaks the format (e.g. a macro name without a value).
 * OPTNEG is the exception to "no trailing bytes": like libmilter we read the three u32s and
 * ignore what a later protocol version might add.
 *
 * @example
 * parseCommand(0x48, Buffer.from('mx.example.com\0'))  // { type: 'helo', name: 'mx.example.com' }
 */
export function parseCommand(code: number, payload: Buffer): MilterCommand {
  const what = commandName(code);
  const reader = new PayloadReader(payload, what);
  const empty = <T extends MilterCommand>(command: T): T => {
    reader.end();
    return command;
  };
  switch (code) {
    case Command.OPTNEG: {
      const version = reader.u32('version');
      const actions = reader.u32('actions');
      const protocol = reader.u32('protocol flags');
      return { type: 'optneg', version, actions, protocol };
    }
    case Command.MACRO: {
      const stage = reader.u8('macro stage');
      const strings = reader.strings('macro name or value');
      if (strings.length % 2 !== 0) {
        throw new MilterProtocolError(
          `${what}: macro ${JSON.stringify(strings.at(-1))} has no value`,
        );
      }
      const macros: Array<[string, string]> = [];
      for (let i = 0; i < strings.length; i += 2) macros.push([strings[i]!, strings[i + 1]!]);
      return { type: 'macro', stage, macros };
    }
    case Command.CONNECT:
      return parseConnect(reader, what);
    case Command.HELO: {
      const name = reader.string('HELO name');
      return empty({ type: 'helo', name });
    }
    case Command.MAIL:
    case Command.RCPT: {
      const args = reader.strings(code === Command.MAIL ? 'sender' : 'recipient');
      if (args.length === 0) throw new MilterProtocolError(`${what}: no address`);
      return { type: code === Command.MAIL ? 'mail' : 'rcpt', args };
    }
    case Command.HEADER: {
      const rawName = reader.bytes('header name');
      const rawValue = reader.bytes('header value');
      return empty({
        type: 'header',
        name: rawName.toString('utf8'),
        value: rawValue.toString('utf8'),
        raw: { name: rawName, value: rawValue },
      });
    }
    case Command.BODY:
      return { type: 'body', chunk: reader.rest() };
    case Command.BODYEOB:
      return { type: 'eob', chunk: reader.rest() };
    case Command.EOH:
      return empty({ type: 'eoh' });
    case Command.DATA:
      return empty({ type: 'data' });
    case Command.ABORT:
      return empty({ type: 'abort' });
    case Command.QUIT:
      return empty({ type: 'quit' });
    case Command.QUIT_NC:
      return empty({ type: 'quitNc' });
    case Command.UNKNOWN: {
      const line = reader.string('command line');
      return empty({ type: 'unknown', line });
    }
    default:
      throw new MilterProtocolError(`unknown command ${describeCode(code)}`);
  }
}

const FAMILY_BYTE: Record<ConnectInfo['family'], number> = {
  inet: Family.INET,
  inet6: Family.INET6,
  unix: Family.UNIX,
  unknown: Family.UNKNOWN,
};

const EMPTY_COMMAND: Record<string, number> = {
  data: Command.DATA,
  eoh: Command.EOH,
  abort: Command.ABORT,
  quit: Command.QUIT,
  quitNc: Command.QUIT_NC,
};

function port16(port: number): Buffer {
  if (!(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    throw new RangeError(`port ${port} is not 0-65535`);
  }
  const bytes = Buffer.allocUnsafe(2);
  bytes.writeUInt16BE(port, 0);
  return bytes;
}

/**
 * Encode a command as the MTA sends it (for the test client and for tests).
 *
 * @example
 * encodeCommand({ type: 'rcpt', args: ['<b@example.org>'] })
 * // <00 00 00 11 52 3c 62 40 ... 3e 00>
 */
export function encodeCommand(command: MilterCommand): Buffer {
  switch (command.type) {
    case 'optneg':
      return encodeFrame(
        Command.OPTNEG,
        u32(command.version),
        u32(command.actions),
        u32(command.protocol),
      );
    case 'macro': {
      const parts: Buffer[] = [Buffer.from([command.stage])];
      for (const [name, value] of command.macros) {
        parts.push(cstring(name, 'macro name'), cstring(value, 'macro value'));
      }
      return encodeFrame(Command.MACRO, ...parts);
    }
    case 'connect': {
      const head = [
        cstring(command.hostname, 'hostname'),
        Buffer.from([FAMILY_BYTE[command.family]]),
      ];
      if (command.family === 'unknown') return encodeFrame(Command.CONNECT, ...head);
      return encodeFrame(
        Command.CONNECT,
        ...head,
        port16(command.port),
        cstring(command.address, 'address'),
      );
    }
    case 'helo':
      return encodeFrame(Command.HELO, cstring(command.name, 'HELO name'));
    case 'mail':
    case 'rcpt':
      if (command.args.length === 0) throw new TypeError(`${command.type} needs an address`);
      return encodeFrame(
        command.type === 'mail' ? Command.MAIL : Command.RCPT,
        ...command.args.map((arg) => cstring(arg, 'argument')),
      );
    case 'header':
      if (command.raw) {
        return encodeFrame(
          Command.HEADER,
          cbytes(command.raw.name, 'header name'),
          cbytes(command.raw.value, 'header value'),
        );
      }
      return encodeFrame(
        Command.HEADER,
        cstring(command.name, 'header name'),
        cstring(command.value, 'header value'),
      );
    case 'body':
      return encodeFrame(Command.BODY, command.chunk);
    case 'eob':
      return encodeFrame(Command.BODYEOB, command.chunk);
    case 'unknown':
      return encodeFrame(Command.UNKNOWN, cstring(command.line, 'command line'));
    default:
      return encodeFrame(EMPTY_COMMAND[command.type]!);
  }
}
