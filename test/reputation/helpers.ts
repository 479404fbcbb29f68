// Test helpers for reputation: real SQLite stores in a temp directory, and a store wrapper that
// counts calls and can be switched to a real store that fails (a closed one) or made to hang.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  openStore,
  type ReputationDelta,
  type ReputationRow,
  type Store,
} from '../../src/store/index.js';

/** A directory of SQLite files, removed by `cleanUp`. */
export class TempStores {
  private readonly dir = mkdtempSync(join(tmpdir(), 'mailgate-reputation-'));
  private readonly opened: Store[] = [];
  private serial = 0;

  /** The URL of a new database file. */
  url(): string {
    return `sqlite:${join(this.dir, `reputation-${++this.serial}.db`)}`;
  }

  /** A store on a file of its own that is closed already: every call rejects with a StoreError. */
  async broken(): Promise<Store> {
    const store = await openStore(this.url());
    await store.close();
    return store;
  }

  /** `store` (default a new one) behind a ControlledStore. */
  async controlled(store?: Store): Promise<ControlledStore> {
    return new ControlledStore(store ?? (await this.open()), await this.broken());
  }

  /** Opens a store on `url` (default: a new file); closed by `cleanUp`. */
  async open(url = this.url()): Promise<Store> {
    const store = await openStore(url);
    this.opened.push(store);
    return store;
  }

  async cleanUp(): Promise<void> {
    await Promise.all(this.opened.map((store) => store.close()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** How the wrapped store's reputation calls behave. */
export type Mode = 'pass' | 'fail' | 'hang';

/**
 * The reputation methods of a real store, counted, and switchable to failing (a closed real
 * store answers instead) or hanging (the call goes on only when `release` is called).
 */
export class ControlledStore {
  readonly description = 'controlled';
  mode: Mode = 'pass';
  readonly adds: { deltas: ReputationDelta[]; halfLifeMs: number }[] = [];
  readonly gets: string[][] = [];
  private hung: (() => void)[] = [];

  constructor(
    private readonly inner: Store,
    private readonly closed: Store,
  ) {}

  addReputation(deltas: readonly ReputationDelta[], halfLifeMs: number): Promise<void> {
    this.adds.push({ deltas: deltas.map((d) => ({ ...d })), halfLifeMs });
    return this.behave((store) => store.addReputation(deltas, halfLifeMs));
  }

  getReputation(subjects: readonly string[]): Promise<ReputationRow[]> {
    this.gets.push([...subjects]);
    return this.behave((store) => store.getReputation(subjects));
  }

  /** Lets every hanging call go on to the real store. */
  release(): void {
    const waiting = this.hung;
    this.hung = [];
    for (const go of waiting) go();
  }

  private behave<T>(call: (store: Store) => Promise<T>): Promise<T> {
    if (this.mode === 'fail') return call(this.closed);
    if (this.mode === 'hang') {
      return new Promise<void>((resolve) => this.hung.push(resolve)).then(() => call(this.inner));
    }
    return call(this.inner);
  }
}
