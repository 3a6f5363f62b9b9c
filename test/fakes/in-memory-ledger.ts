import { LedgerConflictError, ServiceRequestError } from "../../shared/core/errors";
import type { LedgerEntry, LedgerState, MailboxKey, MessageKey } from "../../shared/core/model";
import {
  type Ledger,
  type LedgerEntryFilter,
  type LedgerUpdate,
  MAX_SNAPSHOT_SHARD_BYTES,
  type MailboxSnapshot,
  passesLedgerFilter,
} from "../../shared/ports/ledger";

/**
 * The ledger in a Map, as strict as DynamoDB's conditional writes: a transition from the wrong
 * state or on a missing entry throws `LedgerConflictError`, snapshot shards are versioned and
 * limited to DynamoDB's item size, and every read returns a copy so a caller cannot change what
 * is stored.
 */
export class InMemoryLedger implements Ledger {
  private readonly entries = new Map<string, LedgerEntry>();
  private readonly snapshots = new Map<string, MailboxSnapshot>();

  async get(key: MessageKey): Promise<LedgerEntry | undefined> {
    const entry = this.entries.get(messageId(key));
    return entry === undefined ? undefined : { ...entry };
  }

  async createListed(entries: readonly Omit<LedgerEntry, "state" | "attempts">[]): Promise<LedgerEntry[]> {
    const created: LedgerEntry[] = [];
    for (const input of entries) {
      const id = messageId(input);
      if (this.entries.has(id)) continue;
      const entry: LedgerEntry = { ...input, state: "listed", attempts: 0 };
      this.entries.set(id, entry);
      created.push({ ...entry });
    }
    return created;
  }

  async transition(
    key: MessageKey,
    from: readonly LedgerState[],
    to: LedgerState,
    update: LedgerUpdate = {},
  ): Promise<LedgerEntry> {
    const id = messageId(key);
    const current = this.entries.get(id);
    if (current === undefined || !from.includes(current.state)) {
      throw new LedgerConflictError(
        `ledger entry ${key.uidl} is ${current?.state ?? "missing"}, expected one of ${from.join(", ")}`,
      );
    }
    const next: LedgerEntry = { ...current, ...update, state: to };
    this.entries.set(id, next);
    return { ...next };
  }

  async transitionEach(
    keys: readonly MessageKey[],
    from: readonly LedgerState[],
    to: LedgerState,
    update: LedgerUpdate = {},
  ): Promise<MessageKey[]> {
    const moved: MessageKey[] = [];
    for (const key of keys) {
      const current = this.entries.get(messageId(key));
      if (current === undefined || !from.includes(current.state)) continue;
      this.entries.set(messageId(key), { ...current, ...update, state: to });
      moved.push(key);
    }
    return moved;
  }

  async recordAttempt(key: MessageKey): Promise<number> {
    const id = messageId(key);
    const current = this.entries.get(id);
    if (current === undefined) throw new LedgerConflictError(`ledger entry ${key.uidl} is missing`);
    const attempts = current.attempts + 1;
    this.entries.set(id, { ...current, attempts });
    return attempts;
  }

  async listByServerUidl(mailbox: MailboxKey, serverUidl: string): Promise<LedgerEntry[]> {
    return [...this.entries.values()]
      .filter(
        (e) =>
          e.tenant === mailbox.tenant &&
          e.mailboxId === mailbox.mailboxId &&
          (e.uidl === serverUidl || e.uidl.startsWith(`${serverUidl} `)),
      )
      .map((e) => ({ ...e }));
  }

  async listByState(mailbox: MailboxKey, states: readonly LedgerState[]): Promise<LedgerEntry[]> {
    return [...this.entries.values()]
      .filter(
        (e) => e.tenant === mailbox.tenant && e.mailboxId === mailbox.mailboxId && states.includes(e.state),
      )
      .map((e) => ({ ...e }));
  }

  async findInState(
    mailbox: MailboxKey,
    states: readonly LedgerState[],
    where: LedgerEntryFilter,
  ): Promise<LedgerEntry | undefined> {
    return (await this.listByState(mailbox, states)).find((e) => passesLedgerFilter(e, where));
  }

  async getSnapshot(mailbox: MailboxKey): Promise<MailboxSnapshot | undefined> {
    const snapshot = this.snapshots.get(shardId(mailbox, 0));
    return snapshot === undefined ? undefined : { version: snapshot.version, body: snapshot.body.slice() };
  }

  async getSnapshotShards(mailbox: MailboxKey): Promise<Map<number, MailboxSnapshot>> {
    const shards = new Map<number, MailboxSnapshot>();
    for (const [id, snapshot] of this.snapshots) {
      const [tenant, box, shard] = JSON.parse(id) as [string, string, number];
      if (tenant !== mailbox.tenant || box !== mailbox.mailboxId) continue;
      shards.set(shard, { version: snapshot.version, body: snapshot.body.slice() });
    }
    return shards;
  }

  async putSnapshot(
    mailbox: MailboxKey,
    body: Uint8Array,
    expectedVersion: number | undefined,
    shard = 0,
  ): Promise<void> {
    if (body.byteLength > MAX_SNAPSHOT_SHARD_BYTES) {
      throw new ServiceRequestError(
        "ledger",
        "ValidationException",
        `snapshot shard of ${body.byteLength} bytes is above the ${MAX_SNAPSHOT_SHARD_BYTES}-byte item limit`,
      );
    }
    const id = shardId(mailbox, shard);
    const current = this.snapshots.get(id);
    if (current?.version !== expectedVersion) {
      throw new LedgerConflictError(
        `snapshot of ${mailbox.mailboxId} is at version ${current?.version ?? "none"}, expected ${expectedVersion ?? "none"}`,
      );
    }
    this.snapshots.set(id, { version: (expectedVersion ?? 0) + 1, body: body.slice() });
  }

  /** Every entry, for assertions. */
  all(): LedgerEntry[] {
    return [...this.entries.values()].map((e) => ({ ...e }));
  }
}

/** Counts calls per method of any ledger, to prove how many a use case makes. */
export class CountingLedger implements Ledger {
  readonly calls = new Map<keyof Ledger, number>();

  constructor(private readonly inner: Ledger) {}

  get total(): number {
    return [...this.calls.values()].reduce((sum, n) => sum + n, 0);
  }

  reset(): void {
    this.calls.clear();
  }

  get(key: MessageKey) {
    return this.count("get", () => this.inner.get(key));
  }
  createListed(entries: readonly Omit<LedgerEntry, "state" | "attempts">[]) {
    return this.count("createListed", () => this.inner.createListed(entries));
  }
  transition(key: MessageKey, from: readonly LedgerState[], to: LedgerState, update?: LedgerUpdate) {
    return this.count("transition", () => this.inner.transition(key, from, to, update));
  }
  recordAttempt(key: MessageKey) {
    return this.count("recordAttempt", () => this.inner.recordAttempt(key));
  }
  transitionEach(
    keys: readonly MessageKey[],
    from: readonly LedgerState[],
    to: LedgerState,
    update?: LedgerUpdate,
  ) {
    return this.count("transitionEach", async () => {
      if (this.inner.transitionEach !== undefined) return this.inner.transitionEach(keys, from, to, update);
      const moved: MessageKey[] = [];
      for (const key of keys) {
        try {
          await this.inner.transition(key, from, to, update);
          moved.push(key);
        } catch {
          // Not in `from`: left alone, as the port says.
        }
      }
      return moved;
    });
  }
  listByServerUidl(mailbox: MailboxKey, serverUidl: string) {
    return this.count("listByServerUidl", () => this.inner.listByServerUidl(mailbox, serverUidl));
  }
  listByState(mailbox: MailboxKey, states: readonly LedgerState[]) {
    return this.count("listByState", () => this.inner.listByState(mailbox, states));
  }
  findInState(mailbox: MailboxKey, states: readonly LedgerState[], where: LedgerEntryFilter) {
    return this.count("findInState", () => this.inner.findInState(mailbox, states, where));
  }
  getSnapshot(mailbox: MailboxKey) {
    return this.count("getSnapshot", () => this.inner.getSnapshot(mailbox));
  }
  getSnapshotShards(mailbox: MailboxKey) {
    return this.count("getSnapshotShards", () => this.inner.getSnapshotShards(mailbox));
  }
  putSnapshot(mailbox: MailboxKey, body: Uint8Array, expectedVersion: number | undefined, shard?: number) {
    return this.count("putSnapshot", () => this.inner.putSnapshot(mailbox, body, expectedVersion, shard));
  }

  private count<T>(method: keyof Ledger, call: () => Promise<T>): Promise<T> {
    this.calls.set(method, (this.calls.get(method) ?? 0) + 1);
    return call();
  }
}

function messageId(key: MessageKey): string {
  return JSON.stringify([key.tenant, key.mailboxId, key.uidl]);
}

function shardId(key: MailboxKey, shard: number): string {
  return JSON.stringify([key.tenant, key.mailboxId, shard]);
}
