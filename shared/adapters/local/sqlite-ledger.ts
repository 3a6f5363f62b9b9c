import { closeSync, fsync, fsyncSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import {
  environmentErrorOf,
  errnoCodeOf,
  isEnvironmentCode,
  LedgerConflictError,
  ServiceRequestError,
  TransientError,
} from "../../core/errors";
import type { LedgerEntry, LedgerState, MailboxKey, MessageKey } from "../../core/model";
import {
  type Ledger,
  type LedgerEntryFilter,
  type LedgerUpdate,
  MAX_SNAPSHOT_SHARD_BYTES,
  type MailboxSnapshot,
  passesLedgerFilter,
} from "../../ports/ledger";
import type { SessionLease, SessionLeases } from "../../ports/session-leases";

/** How a `SqliteLedger` is built. */
export interface SqliteLedgerOptions {
  /** The database file (`<dataDir>/ledger.sqlite`); ":memory:" for a throwaway one. */
  readonly path: string;
  /** Epoch ms; injected so lease expiry is testable without waiting. Default `Date.now`. */
  readonly now?: () => number;
  /**
   * Called inside each group's transaction after its writes ran and before its COMMIT, with the
   * number of writes in the group (tests: count commits, or kill the process at that point).
   */
  readonly beforeCommit?: (writes: number) => void;
  /** Called after each group's COMMIT returned (visible, not yet fsynced), with its number of writes. */
  readonly afterCommit?: (writes: number) => void;
  /**
   * Called after each fsync of the write-ahead log returned (every write it covers is on disk),
   * before any of their callers settles, with the number of writes it made durable.
   */
  readonly afterSync?: (writes: number) => void;
}

/** One queued write of a group commit: runs inside the group's transaction, in its own savepoint. */
interface QueuedWrite {
  readonly run: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

type WriteOutcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: unknown };

/** A committed group waiting for the fsync that makes it durable. */
interface CommittedGroup {
  readonly writes: number;
  /** Settles every caller of the group with its own outcome. */
  readonly settle: () => void;
  /** Rejects every caller of the group with `error`. */
  readonly fail: (error: unknown) => void;
}

/** When the last poll of a mailbox ended, and whether it could reach the server. */
export interface PollRecord extends MailboxKey {
  readonly at: number;
  readonly ok: boolean;
  /** The error code of a failed poll (never a message text that could hold a secret). */
  readonly errorCode?: string;
  /** When a poll last reached the server (set on reads; equals `at` after a successful poll). */
  readonly lastOkAt?: number;
}

// Columns are the key, the state (indexed, for listByState) and the entry as JSON: the entry's
// optional fields grow with the core, and a JSON column follows without a migration.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (
  tenant TEXT NOT NULL, mailbox_id TEXT NOT NULL, uidl TEXT NOT NULL,
  state TEXT NOT NULL, entry TEXT NOT NULL,
  PRIMARY KEY (tenant, mailbox_id, uidl)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_by_state ON messages (tenant, mailbox_id, state);
CREATE TABLE IF NOT EXISTS snapshots (
  tenant TEXT NOT NULL, mailbox_id TEXT NOT NULL, version INTEGER NOT NULL, body BLOB NOT NULL,
  PRIMARY KEY (tenant, mailbox_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshot_shards (
  tenant TEXT NOT NULL, mailbox_id TEXT NOT NULL, shard INTEGER NOT NULL,
  version INTEGER NOT NULL, body BLOB NOT NULL,
  PRIMARY KEY (tenant, mailbox_id, shard)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
  tenant TEXT NOT NULL, mailbox_id TEXT NOT NULL, slot INTEGER NOT NULL,
  holder TEXT NOT NULL, expires_at INTEGER NOT NULL,
  PRIMARY KEY (tenant, mailbox_id, slot)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS polls (
  tenant TEXT NOT NULL, mailbox_id TEXT NOT NULL, at INTEGER NOT NULL, ok INTEGER NOT NULL,
  error_code TEXT, last_ok_at INTEGER, PRIMARY KEY (tenant, mailbox_id)
) WITHOUT ROWID;
`;

interface MessageRow {
  entry: string;
}

/**
 * The ledger and session leases of the local runtime in one SQLite file (WAL mode, so `status`
 * can read while `run` writes). Same semantics as `DynamoDbLedger`: every state change checks
 * the current state inside an immediate (write-locked) transaction, so two processes racing on
 * one message cannot both win; the loser gets `LedgerConflictError`.
 *
 * Writes are group-committed (docs/pipeline.md "Group commit"): every write the process asks for
 * before the next turn of the event loop (from any mailbox) runs in one immediate transaction,
 * each in its own savepoint. The COMMIT does not fsync (`synchronous = NORMAL`); the ledger
 * fsyncs the write-ahead log itself, off the event loop (libuv's thread pool), and every group
 * committed while one fsync runs waits for the next one: one fsync for all of them. A caller's
 * promise settles only after the fsync that covers its group returned, so "the write is on disk
 * when the call returns" holds for each (DESIGN.md invariant 1), as with `synchronous = FULL`.
 * A write whose condition fails rolls back its own savepoint and rejects only its caller; a
 * fault of the database itself (a full disk, an I/O error: `isEnvironmentCode`) rolls back the
 * whole group and rejects every caller in it; a failed fsync rejects every caller it covers.
 */
export class SqliteLedger implements Ledger, SessionLeases {
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly beforeCommit: ((writes: number) => void) | undefined;
  private readonly afterCommit: ((writes: number) => void) | undefined;
  private readonly afterSync: ((writes: number) => void) | undefined;
  /** The write-ahead log the COMMITs append to (undefined for ":memory:": nothing to fsync). */
  private readonly walPath: string | undefined;
  private walFd: number | undefined;
  private queued: QueuedWrite[] = [];
  private flushScheduled = false;
  /** Committed groups whose fsync has not started yet. */
  private unsynced: CommittedGroup[] = [];
  private syncing = false;
  private closed = false;

  constructor(options: SqliteLedgerOptions) {
    this.now = options.now ?? Date.now;
    this.beforeCommit = options.beforeCommit;
    this.afterCommit = options.afterCommit;
    this.afterSync = options.afterSync;
    this.walPath = options.path === ":memory:" ? undefined : `${options.path}-wal`;
    try {
      if (options.path !== ":memory:") mkdirSync(dirname(options.path), { recursive: true });
      this.db = new Database(options.path);
      this.db.pragma("journal_mode = WAL");
      // A second process (status next to run) waits for the write lock instead of failing.
      this.db.pragma("busy_timeout = 5000");
      // NORMAL: a COMMIT writes the log but does not fsync it; `startSync` fsyncs it before
      // any caller hears back (docs/pipeline.md "Group commit"). Checkpoints still fsync the
      // log before and the database after copying.
      this.db.pragma("synchronous = NORMAL");
      this.db.exec(SCHEMA);
    } catch (cause) {
      throw new TransientError("ledger", `cannot open the ledger database ${options.path}`, {
        cause,
        hint: "Check that the data directory exists, is writable and is not on a network share.",
      });
    }
  }

  /** Commits the writes still queued and makes them durable, then closes the database file. */
  close(): void {
    this.flush();
    const groups = this.unsynced;
    this.unsynced = [];
    if (groups.length > 0) {
      try {
        fsyncSync(this.openWal());
        for (const group of groups) group.settle();
      } catch (error) {
        const failure = environmentErrorOf(error, "ledger", "sync the ledger database") ?? error;
        for (const group of groups) group.fail(failure);
      }
    }
    this.closed = true;
    this.db.close();
    // An fsync still running closes the file when it returns.
    if (!this.syncing) this.closeWal();
  }

  async get(key: MessageKey): Promise<LedgerEntry | undefined> {
    const row = this.db
      .prepare<[string, string, string], MessageRow>(
        "SELECT entry FROM messages WHERE tenant = ? AND mailbox_id = ? AND uidl = ?",
      )
      .get(key.tenant, key.mailboxId, key.uidl);
    return row === undefined ? undefined : parseEntry(row.entry);
  }

  async createListed(entries: readonly Omit<LedgerEntry, "state" | "attempts">[]): Promise<LedgerEntry[]> {
    const insert = this.db.prepare(
      "INSERT OR IGNORE INTO messages (tenant, mailbox_id, uidl, state, entry) VALUES (?, ?, ?, 'listed', ?)",
    );
    return this.enqueue(() => {
      const created: LedgerEntry[] = [];
      for (const input of entries) {
        const entry: LedgerEntry = { ...input, state: "listed", attempts: 0 };
        const result = insert.run(entry.tenant, entry.mailboxId, entry.uidl, JSON.stringify(entry));
        if (result.changes === 1) created.push(entry);
      }
      return created;
    });
  }

  async transition(
    key: MessageKey,
    from: readonly LedgerState[],
    to: LedgerState,
    update: LedgerUpdate = {},
  ): Promise<LedgerEntry> {
    return this.enqueue(() => {
      const current = this.readForWrite(key);
      if (current === undefined || !from.includes(current.state)) {
        throw new LedgerConflictError(
          `ledger entry ${key.tenant}/${key.mailboxId}/${key.uidl} is ${current?.state ?? "missing"}, not ${from.join("|")} (wanted ${to})`,
        );
      }
      const next: LedgerEntry = { ...current, ...definedFields(update), state: to };
      this.write(next);
      return next;
    });
  }

  async transitionEach(
    keys: readonly MessageKey[],
    from: readonly LedgerState[],
    to: LedgerState,
    update: LedgerUpdate = {},
  ): Promise<MessageKey[]> {
    // One write of a group, so one fsync for a whole batch (a copy batch's `deleted` marks).
    return this.enqueue(() => {
      const moved: MessageKey[] = [];
      for (const key of keys) {
        const current = this.readForWrite(key);
        if (current === undefined || !from.includes(current.state)) continue;
        this.write({ ...current, ...definedFields(update), state: to });
        moved.push(key);
      }
      return moved;
    });
  }

  async recordAttempt(key: MessageKey): Promise<number> {
    return this.enqueue(() => {
      const current = this.readForWrite(key);
      if (current === undefined) {
        throw new LedgerConflictError(`ledger entry ${key.tenant}/${key.mailboxId}/${key.uidl} is missing`);
      }
      const next = { ...current, attempts: current.attempts + 1 };
      this.write(next);
      return next.attempts;
    });
  }

  async listByServerUidl(mailbox: MailboxKey, serverUidl: string): Promise<LedgerEntry[]> {
    // The primary key's index serves both: the UIDL itself, and ids that continue it with a space.
    const rows = this.db
      .prepare<[string, string, string, string, string], MessageRow>(
        "SELECT entry FROM messages WHERE tenant = ? AND mailbox_id = ? AND (uidl = ? OR (uidl > ? AND uidl < ?)) ORDER BY uidl",
      )
      .all(mailbox.tenant, mailbox.mailboxId, serverUidl, `${serverUidl} `, `${serverUidl}!`);
    return rows.map((row) => parseEntry(row.entry));
  }

  async listByState(mailbox: MailboxKey, states: readonly LedgerState[]): Promise<LedgerEntry[]> {
    const unique = [...new Set(states)];
    if (unique.length === 0) return [];
    const rows = this.db
      .prepare<string[], MessageRow>(
        `SELECT entry FROM messages WHERE tenant = ? AND mailbox_id = ? AND state IN (${unique.map(() => "?").join(", ")}) ORDER BY uidl`,
      )
      .all(mailbox.tenant, mailbox.mailboxId, ...unique);
    return rows.map((row) => parseEntry(row.entry));
  }

  /** The state index narrows to the mailbox's entries in `states`; the time test runs on them here. */
  async findInState(
    mailbox: MailboxKey,
    states: readonly LedgerState[],
    where: LedgerEntryFilter,
  ): Promise<LedgerEntry | undefined> {
    return (await this.listByState(mailbox, states)).find((entry) => passesLedgerFilter(entry, where));
  }

  async getSnapshot(mailbox: MailboxKey): Promise<MailboxSnapshot | undefined> {
    const row = this.db
      .prepare<[string, string], { version: number; body: Buffer }>(
        "SELECT version, body FROM snapshots WHERE tenant = ? AND mailbox_id = ?",
      )
      .get(mailbox.tenant, mailbox.mailboxId);
    return row === undefined ? undefined : { version: row.version, body: new Uint8Array(row.body) };
  }

  /** Shard 0 lives in `snapshots` (where a ledger from before shards keeps its snapshot), the rest in `snapshot_shards`. */
  async getSnapshotShards(mailbox: MailboxKey): Promise<Map<number, MailboxSnapshot>> {
    const rows = this.db
      .prepare<[string, string, string, string], { shard: number; version: number; body: Buffer }>(
        `SELECT 0 AS shard, version, body FROM snapshots WHERE tenant = ? AND mailbox_id = ?
         UNION ALL SELECT shard, version, body FROM snapshot_shards WHERE tenant = ? AND mailbox_id = ?`,
      )
      .all(mailbox.tenant, mailbox.mailboxId, mailbox.tenant, mailbox.mailboxId);
    return new Map(rows.map((row) => [row.shard, { version: row.version, body: new Uint8Array(row.body) }]));
  }

  async putSnapshot(
    mailbox: MailboxKey,
    body: Uint8Array,
    expectedVersion: number | undefined,
    shard = 0,
  ): Promise<void> {
    if (body.byteLength > MAX_SNAPSHOT_SHARD_BYTES) {
      // The same limit as DynamoDB's item size, so a mailbox outgrowing it fails here first.
      throw new ServiceRequestError(
        "ledger",
        "ItemTooLarge",
        `snapshot shard of ${body.byteLength} bytes is above the ${MAX_SNAPSHOT_SHARD_BYTES}-byte limit`,
      );
    }
    const [read, write] =
      shard === 0
        ? [
            "SELECT version FROM snapshots WHERE tenant = ? AND mailbox_id = ?",
            "INSERT OR REPLACE INTO snapshots (tenant, mailbox_id, version, body) VALUES (?, ?, ?, ?)",
          ]
        : [
            "SELECT version FROM snapshot_shards WHERE tenant = ? AND mailbox_id = ? AND shard = ?",
            "INSERT OR REPLACE INTO snapshot_shards (tenant, mailbox_id, version, body, shard) VALUES (?, ?, ?, ?, ?)",
          ];
    const shardArgs = shard === 0 ? [] : [shard];
    await this.enqueue(() => {
      const row = this.db
        .prepare<unknown[], { version: number }>(read)
        .get(mailbox.tenant, mailbox.mailboxId, ...shardArgs);
      if (row?.version !== expectedVersion) {
        throw new LedgerConflictError(
          `snapshot shard ${shard} of ${mailbox.tenant}/${mailbox.mailboxId} is at version ${row?.version ?? "none"}, not ${expectedVersion ?? "none"}`,
        );
      }
      this.db
        .prepare(write)
        .run(mailbox.tenant, mailbox.mailboxId, (expectedVersion ?? 0) + 1, Buffer.from(body), ...shardArgs);
    });
  }

  async acquire(
    mailbox: MailboxKey,
    slots: number,
    holder: string,
    leaseMs: number,
  ): Promise<SessionLease | undefined> {
    const now = this.now();
    return this.enqueue(() => {
      for (let slot = 0; slot < slots; slot++) {
        const result = this.db
          .prepare(
            `INSERT INTO leases (tenant, mailbox_id, slot, holder, expires_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (tenant, mailbox_id, slot) DO UPDATE SET holder = excluded.holder,
             expires_at = excluded.expires_at WHERE leases.expires_at <= ?`,
          )
          .run(mailbox.tenant, mailbox.mailboxId, slot, holder, now + leaseMs, now);
        if (result.changes === 1) return { slot, holder };
      }
      return undefined;
    });
  }

  async release(mailbox: MailboxKey, lease: SessionLease): Promise<void> {
    await this.enqueue(() => {
      this.db
        .prepare("DELETE FROM leases WHERE tenant = ? AND mailbox_id = ? AND slot = ? AND holder = ?")
        .run(mailbox.tenant, mailbox.mailboxId, lease.slot, lease.holder);
    });
  }

  /**
   * Drops every lease. Only for a process that holds the data directory's run lock: any lease
   * then belongs to a process that died (SIGKILL, power loss) and would block the mailbox until
   * it expires.
   */
  releaseAllLeases(): number {
    return this.db.prepare("DELETE FROM leases").run().changes;
  }

  /** Records the end of a poll, for `pop2gmail status`; a failed poll keeps the last good time. */
  recordPoll(record: Omit<PollRecord, "lastOkAt">): void {
    this.db
      .prepare(
        `INSERT INTO polls (tenant, mailbox_id, at, ok, error_code, last_ok_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (tenant, mailbox_id) DO UPDATE SET at = excluded.at, ok = excluded.ok,
         error_code = excluded.error_code, last_ok_at = COALESCE(excluded.last_ok_at, polls.last_ok_at)`,
      )
      .run(
        record.tenant,
        record.mailboxId,
        record.at,
        record.ok ? 1 : 0,
        record.errorCode ?? null,
        record.ok ? record.at : null,
      );
  }

  /** The last poll of every mailbox that was polled at least once. */
  lastPolls(): PollRecord[] {
    return this.db
      .prepare<
        [],
        {
          tenant: string;
          mailbox_id: string;
          at: number;
          ok: number;
          error_code: string | null;
          last_ok_at: number | null;
        }
      >("SELECT tenant, mailbox_id, at, ok, error_code, last_ok_at FROM polls ORDER BY tenant, mailbox_id")
      .all()
      .map((row) => ({
        tenant: row.tenant,
        mailboxId: row.mailbox_id,
        at: row.at,
        ok: row.ok === 1,
        ...(row.error_code === null ? {} : { errorCode: row.error_code }),
        ...(row.last_ok_at === null ? {} : { lastOkAt: row.last_ok_at }),
      }));
  }

  /** Entries per state of one mailbox, for `pop2gmail status`. */
  countByState(mailbox: MailboxKey): Partial<Record<LedgerState, number>> {
    const rows = this.db
      .prepare<[string, string], { state: LedgerState; n: number }>(
        "SELECT state, COUNT(*) AS n FROM messages WHERE tenant = ? AND mailbox_id = ? GROUP BY state",
      )
      .all(mailbox.tenant, mailbox.mailboxId);
    return Object.fromEntries(rows.map((row) => [row.state, row.n]));
  }

  /**
   * Queues `run` for the next group commit and settles with its result once the fsync that
   * covers the group's COMMIT returned. The group runs when the event loop next reaches its check phase (`setImmediate`),
   * so every write asked for by the I/O callbacks of one loop turn (replies of many mailboxes'
   * Gmail imports and POP3 sessions) shares one transaction.
   */
  private enqueue<T>(run: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queued.push({ run, resolve: resolve as (value: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Runs the queued writes as one group: one transaction, a savepoint each, one COMMIT. */
  private flush(): void {
    this.flushScheduled = false;
    const group = this.queued;
    this.queued = [];
    if (group.length === 0) return;
    let outcomes: WriteOutcome[];
    try {
      outcomes = this.db
        .transaction(() => {
          const each: WriteOutcome[] = [];
          for (const write of group) {
            try {
              // Nested inside the group's transaction, better-sqlite3 makes this a savepoint:
              // a throw rolls back this write only.
              each.push({ ok: true, value: this.db.transaction(write.run)() });
            } catch (error) {
              // A fault of the database (or SQLite having rolled the whole transaction back)
              // fails the group: none of its writes may be reported durable.
              if (!this.db.inTransaction || isEnvironmentCode(errnoCodeOf(error))) throw error;
              each.push({ ok: false, error });
            }
          }
          this.beforeCommit?.(group.length);
          return each;
        })
        .immediate();
    } catch (error) {
      const failure = environmentErrorOf(error, "ledger", "commit to the ledger database") ?? error;
      for (const write of group) write.reject(failure);
      return;
    }
    this.afterCommit?.(group.length);
    const settle = (): void =>
      group.forEach((write, index) => {
        const outcome = outcomes[index] as WriteOutcome;
        if (outcome.ok) write.resolve(outcome.value);
        else write.reject(outcome.error);
      });
    if (this.walPath === undefined) {
      settle();
      return;
    }
    this.unsynced.push({
      writes: group.length,
      settle,
      fail: (error) => {
        for (const write of group) write.reject(error);
      },
    });
    this.startSync();
  }

  /**
   * Fsyncs the write-ahead log for every group committed so far, unless an fsync runs already:
   * then the groups wait for the next one, which starts when it returns. One fsync covers all
   * the log's frames written before it started (Linux syncs the file, whichever descriptor).
   */
  private startSync(): void {
    if (this.syncing || this.unsynced.length === 0) return;
    const groups = this.unsynced;
    this.unsynced = [];
    const fail = (error: unknown): void => {
      const failure = environmentErrorOf(error, "ledger", "sync the ledger database") ?? error;
      for (const group of groups) group.fail(failure);
    };
    let fd: number;
    try {
      fd = this.openWal();
    } catch (error) {
      fail(error);
      return;
    }
    this.syncing = true;
    fsync(fd, (error) => {
      this.syncing = false;
      if (error === null) {
        this.afterSync?.(groups.reduce((sum, group) => sum + group.writes, 0));
        for (const group of groups) group.settle();
      } else {
        fail(error);
      }
      if (this.closed) this.closeWal();
      else this.startSync();
    });
  }

  private openWal(): number {
    this.walFd ??= openSync(this.walPath as string, "r+");
    return this.walFd;
  }

  private closeWal(): void {
    if (this.walFd === undefined) return;
    closeSync(this.walFd);
    this.walFd = undefined;
  }

  private readForWrite(key: MessageKey): LedgerEntry | undefined {
    const row = this.db
      .prepare<[string, string, string], MessageRow>(
        "SELECT entry FROM messages WHERE tenant = ? AND mailbox_id = ? AND uidl = ?",
      )
      .get(key.tenant, key.mailboxId, key.uidl);
    return row === undefined ? undefined : parseEntry(row.entry);
  }

  private write(entry: LedgerEntry): void {
    this.db
      .prepare("UPDATE messages SET state = ?, entry = ? WHERE tenant = ? AND mailbox_id = ? AND uidl = ?")
      .run(entry.state, JSON.stringify(entry), entry.tenant, entry.mailboxId, entry.uidl);
  }
}

function parseEntry(json: string): LedgerEntry {
  return JSON.parse(json) as LedgerEntry;
}

/** Like DynamoDB's `removeUndefinedValues`: an undefined field in an update leaves the stored one. */
function definedFields(update: LedgerUpdate): LedgerUpdate {
  return Object.fromEntries(Object.entries(update).filter(([, value]) => value !== undefined));
}
