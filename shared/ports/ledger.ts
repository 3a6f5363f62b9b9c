import type { LedgerEntry, LedgerState, MailboxKey, MessageKey } from "../core/model";

/** Fields a transition may set alongside the new state. */
export type LedgerUpdate = Partial<Omit<LedgerEntry, "tenant" | "mailboxId" | "uidl" | "state">>;

/** An opaque, versioned per-mailbox blob the core uses to make idle polls O(1) ledger calls. */
export interface MailboxSnapshot {
  readonly version: number;
  readonly body: Uint8Array;
}

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
  getSnapshot(mailbox: MailboxKey): Promise<MailboxSnapshot | undefined>;
  /**
   * Writes the snapshot only if the stored one still has `expectedVersion` (undefined: none
   * stored yet); throws `LedgerConflictError` otherwise. The new version is expectedVersion + 1.
   */
  putSnapshot(mailbox: MailboxKey, body: Uint8Array, expectedVersion: number | undefined): Promise<void>;
}
