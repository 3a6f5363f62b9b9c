import { ProtocolError } from "../../core/errors";
import {
  LEDGER_STATES,
  type LedgerEntry,
  type LedgerState,
  type MailboxKey,
  type MessageKey,
} from "../../core/model";
import { LEDGER_TABLE } from "./ledger-table";

/**
 * How ledger entries, snapshots and leases are laid out as DynamoDB items (see `LEDGER_TABLE`).
 * Tenant ids and mailbox ids cannot hold `#` (tenant-config schema), so the composite keys are
 * unambiguous; a UIDL may hold `#`, but it is always the last part of the key.
 */

/**
 * Attributes that are storage details or identity, never entry fields a transition may set.
 * Every other attribute of a message item is an entry field of the same name, so a field added
 * to `LedgerEntry` later is stored and read back without touching this adapter.
 */
const RESERVED_ATTRIBUTES: ReadonlySet<string> = new Set([
  LEDGER_TABLE.partitionKey,
  LEDGER_TABLE.sortKey,
  LEDGER_TABLE.stateIndex.partitionKey,
  LEDGER_TABLE.ttlAttribute,
  "tenant",
  "mailboxId",
  "uidl",
  "state",
]);

/** The entry fields of `fields` that a write may set: no identity, no storage keys, no undefined. */
export function settableFields(fields: object): [string, unknown][] {
  return Object.entries(fields).filter(
    ([name, value]) => value !== undefined && !RESERVED_ATTRIBUTES.has(name),
  );
}

/** Partition key of every item of one mailbox. */
export function mailboxPk(mailbox: MailboxKey): string {
  return `${mailbox.tenant}#${mailbox.mailboxId}`;
}

/** Primary key of a message's item. */
export function messageItemKey(key: MessageKey): Record<string, string> {
  return { [LEDGER_TABLE.partitionKey]: mailboxPk(key), [LEDGER_TABLE.sortKey]: `msg#${key.uidl}` };
}

/** Primary key of a mailbox's snapshot item: shard 0 keeps the key of the one item before shards. */
export function snapshotItemKey(mailbox: MailboxKey, shard = 0): Record<string, string> {
  const sortKey = shard === 0 ? SNAPSHOT_SORT_KEY : `${SNAPSHOT_SORT_KEY}#${shard}`;
  return { [LEDGER_TABLE.partitionKey]: mailboxPk(mailbox), [LEDGER_TABLE.sortKey]: sortKey };
}

/** The sort key every snapshot shard's begins with (no other item of a mailbox does). */
export const SNAPSHOT_SORT_KEY = "snapshot";

/** The shard number of a snapshot item's sort key (`snapshot` is 0, `snapshot#7` is 7); NaN for another item. */
export function snapshotShardOf(sortKey: string): number {
  if (sortKey === SNAPSHOT_SORT_KEY) return 0;
  const prefix = `${SNAPSHOT_SORT_KEY}#`;
  return sortKey.startsWith(prefix) && /^[1-9][0-9]*$/.test(sortKey.slice(prefix.length))
    ? Number(sortKey.slice(prefix.length))
    : Number.NaN;
}

/** Primary key of one session slot's lease item. */
export function leaseItemKey(mailbox: MailboxKey, slot: number): Record<string, string> {
  return { [LEDGER_TABLE.partitionKey]: mailboxPk(mailbox), [LEDGER_TABLE.sortKey]: `lease#${slot}` };
}

/** Partition key of the `byState` index: a mailbox's messages in one state. */
export function statePk(mailbox: MailboxKey, state: LedgerState): string {
  return `${mailboxPk(mailbox)}#${state}`;
}

/** The full item for a new entry. */
export function entryToItem(entry: LedgerEntry): Record<string, unknown> {
  return {
    ...Object.fromEntries(settableFields(entry)),
    ...messageItemKey(entry),
    [LEDGER_TABLE.stateIndex.partitionKey]: statePk(entry, entry.state),
    tenant: entry.tenant,
    mailboxId: entry.mailboxId,
    uidl: entry.uidl,
    state: entry.state,
  };
}

/**
 * Reads an item back into an entry, dropping the storage keys. Throws on an item that is not an
 * entry: the table was written by something else.
 */
export function itemToEntry(item: Record<string, unknown>): LedgerEntry {
  const { tenant, mailboxId, uidl, state } = item;
  if (
    typeof tenant !== "string" ||
    typeof mailboxId !== "string" ||
    typeof uidl !== "string" ||
    typeof state !== "string" ||
    !(LEDGER_STATES as readonly string[]).includes(state)
  ) {
    throw new ProtocolError(
      "ledger",
      `ledger item ${String(item[LEDGER_TABLE.sortKey])} is not a message entry`,
    );
  }
  return {
    attempts: 0,
    ...Object.fromEntries(settableFields(item)),
    tenant,
    mailboxId,
    uidl,
    state,
  } as LedgerEntry;
}
