// Test helpers for greylisting: a clock that moves only when told, and a logger that records.
import type { Clock } from '../../src/dns/types.js';
import type { GreylistLogger } from '../../src/greylist/index.js';

export class ManualClock implements Clock {
  constructor(private time: number) {}
  now(): number {
    return this.time;
  }
  advance(ms: number): void {
    this.time += ms;
  }
  set(ms: number): void {
    this.time = ms;
  }
}

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  message: string;
}

export class RecordingLogger implements GreylistLogger {
  readonly lines: LogLine[] = [];
  info(fields: Record<string, unknown>, message: string): void {
    this.lines.push({ level: 'info', fields, message });
  }
  warn(fields: Record<string, unknown>, message: string): void {
    this.lines.push({ level: 'warn', fields, message });
  }
  error(fields: Record<string, unknown>, message: string): void {
    this.lines.push({ level: 'error', fields, message });
  }
  has(level: LogLine['level'], message: string): boolean {
    return this.count(level, message) > 0;
  }
  count(level: LogLine['level'], message: string): number {
    return this.lines.filter((l) => l.level === level && l.message === message).length;
  }
  of(message: string): LogLine[] {
    return this.lines.filter((l) => l.message === message);
  }
}
