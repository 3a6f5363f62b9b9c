import type { Ledger } from "../ports/ledger";
import type { Telemetry } from "../ports/telemetry";
import { LedgerConflictError } from "./errors";
import type { LedgerEntry, LedgerState, MessageKey } from "./model";

/** Quarantine codes the core sets itself (others are the `code` of the error that caused it). */
export const QUARANTINE_CODES = {
  tooManyAttempts: "TOO_MANY_ATTEMPTS",
  vanished: "VANISHED",
  tooLarge: "MESSAGE_TOO_LARGE",
  /**
   * A Gmail import of a message without Message-ID may or may not have happened (timeout, 5xx,
   * reset, a copier that died mid-import). Importing again could make a second copy, so the
   * operator checks Gmail and releases it with `pop2gmail quarantine retry` if it is missing.
   */
  importUncertain: "IMPORT_UNCERTAIN",
  /**
   * The server's UIDL for the message breaks RFC 1939 §7 (too long, bytes outside 0x21-0x7E):
   * archived if RETR works, left on the server, the rest of the mailbox keeps flowing.
   */
  invalidUidl: "INVALID_UIDL",
} as const;

/**
 * Moves a message that is still being copied to `quarantined` with its reason (DESIGN.md
 * invariant 5): it stays on the POP3 server (deletes skip quarantined messages), keeps its
 * archive key if it has one, and is reported once. `from` is the state the caller believes the
 * entry is in (only the holder of an `importing` claim may quarantine from `importing`). Returns
 * undefined when another worker moved the message first (the conditional write lost the race),
 * so the caller re-reads instead.
 */
export async function quarantine(
  deps: { ledger: Ledger; telemetry: Telemetry },
  key: MessageKey,
  code: string,
  reason: string,
  now: number,
  from: readonly LedgerState[] = ["listed", "archived"],
): Promise<LedgerEntry | undefined> {
  let entry: LedgerEntry;
  try {
    entry = await deps.ledger.transition(key, from, "quarantined", {
      quarantineCode: code,
      quarantineReason: reason,
      quarantinedAt: now,
    });
  } catch (error) {
    if (error instanceof LedgerConflictError) return undefined;
    throw error;
  }
  deps.telemetry.record({
    type: "quarantined",
    tenant: key.tenant,
    mailboxId: key.mailboxId,
    uidl: key.uidl,
    code,
    reason,
    ...(entry.archiveKey === undefined ? {} : { archiveKey: entry.archiveKey }),
    ...(entry.archivedSize === undefined ? {} : { bytes: entry.archivedSize }),
  });
  return entry;
}
