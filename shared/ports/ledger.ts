import type { LedgerEntry, LedgerState, MailboxKey, MessageKey } from "../core/model";

/**
 * What `Ledger.findInState` looks for: an entry first listed before `listedBefore` (epoch ms,
 * exclusive), or one quarantined at or after `quarantinedSince` (epoch ms; an entry without
 * `quarantinedAt` never matches).
 */
export type LedgerEntryFilter = { readonly listedBefore: number } | { readonly quarantinedSince: number };

/** Whether `entry` passes `where` (every adapter's rule, and the in-memory ones' whole filter). */
export function passesLedgerFilter(entry: LedgerEntry, where: LedgerEntryFilter): boolean {
  if ("listedBefore" in where) return entry.listedAt < where.listedBefore;
  return entry.quarantinedAt !== undefined && entry.quarantinedAt >= where.quarantinedSince;
}

/** Fields a transition may set alongside the new state. */
export type LedgerUpdate = Partial<Omit<LedgerEntry, "tenant" | "mailboxId" | "uidl" | "state">>;

/**
 * One shard of the mailbox snapshot: an opaque, versioned blob the core uses to make idle polls
 * O(1) ledger calls (docs/pipeline.md "Why the snapshot"). Shard 0 is the item older versions
 * stored the whole snapshot in.
 */
export interface MailboxSnapshot {
  readonly version: number;
  readonly body: Uint8Array;
}

/**
 * The largest snapshot shard body every ledger stores: DynamoDB holds at most 400 KB per item
 * (key and version included), and the other ledgers refuse the same, so the core shards before
 * any of them would fail (docs/pipeline.md "Why the snapshot").
 */
export const MAX_SNAPSHOT_SHARD_BYTES = 380 * 1024;

/**
 * The record of every message's progress (DESIGN.md "Ledger states"). Every write is
 * conditional, so two workers racing on one message cannot both win.
 */
export interface Ledger {
  get(key: MessageKey): Promise<LedgerEntry | undefined>;
  /**
   * Creates entries in state `listed` for UIDLs not yet known (attribute_not_exists); entries
   * that already exist are left untouched. Returns only those it created.
   */
  createListed(entries: readonly Omit<LedgerEntry, "state" | "attempts">[]): Promise<LedgerEntry[]>;
  /**
   * Moves one entry from one of `from` to `to`, setting `update`. Throws `LedgerConflictError`
   * when the entry is missing or in another state. Returns the entry as written.
   */
  transition(
    key: MessageKey,
    from: readonly LedgerState[],
    to: LedgerState,
    update?: LedgerUpdate,
  ): Promise<LedgerEntry>;
  /**
   * Moves every entry of `keys` that is in one of `from` to `to`, setting `update`, in one commit;
   * an entry in another state (or missing) is left alone. Returns the keys it moved. Optional: the
   * core makes one `transition` per key without it (docs/pipeline.md, "Ledger commits").
   */
  transitionEach?(
    keys: readonly MessageKey[],
    from: readonly LedgerState[],
    to: LedgerState,
    update?: LedgerUpdate,
  ): Promise<MessageKey[]>;
  /** Adds one to `attempts` whatever the state; returns the new count. */
  recordAttempt(key: MessageKey): Promise<number>;
  /**
   * Every entry whose ledger id names the server UIDL `serverUidl`: the UIDL itself, its later
   * generations (`<uidl> <n>`) and its content identities (`<uidl> #...`), in any state
   * (docs/pipeline.md "Message identity"). Never an entry of another UIDL that merely starts
   * with the same characters.
   */
  listByServerUidl(mailbox: MailboxKey, serverUidl: string): Promise<LedgerEntry[]>;
  /** Every entry of a mailbox in one of `states` (paged internally). */
  listByState(mailbox: MailboxKey, states: readonly LedgerState[]): Promise<LedgerEntry[]>;
  /**
   * One entry of the mailbox in one of `states` that `where` admits, or undefined when none does:
   * a yes/no question the keeper asks of every mailbox once a minute (shared/core/tenant-problems.ts),
   * so it reads as little as the store allows (DynamoDB: the `byState` index in small pages with a
   * filter, stopping at the first page that holds a match). Which matching entry comes back is
   * unspecified.
   */
  findInState(
    mailbox: MailboxKey,
    states: readonly LedgerState[],
    where: LedgerEntryFilter,
  ): Promise<LedgerEntry | undefined>;
  /** Shard 0 of the mailbox snapshot (strongly consistent), or undefined before its first write. */
  getSnapshot(mailbox: MailboxKey): Promise<MailboxSnapshot | undefined>;
  /**
   * Every stored shard of the mailbox snapshot, by shard number, in one call (DynamoDB: one
   * eventually consistent Query, paged by 1 MB: the snapshot is a cache, and a stale shard only
   * loses its conditional write); empty before the first write.
   */
  getSnapshotShards(mailbox: MailboxKey): Promise<Map<number, MailboxSnapshot>>;
  /**
   * Writes one shard (default 0) only if the stored one still has `expectedVersion` (undefined:
   * none stored yet); throws `LedgerConflictError` otherwise. The new version is
   * expectedVersion + 1. A body above `MAX_SNAPSHOT_SHARD_BYTES` is refused with a non-retryable
   * `ServiceRequestError`.
   */
  putSnapshot(
    mailbox: MailboxKey,
    body: Uint8Array,
    expectedVersion: number | undefined,
    shard?: number,
  ): Promise<void>;
}
