import type { Ledger } from "../ports/ledger";
import type { Telemetry } from "../ports/telemetry";
import { LedgerConflictError } from "./errors";
import type { LedgerEntry, MessageKey } from "./model";

/** Quarantine codes the core sets itself (others are the `code` of the error that caused it). */
export const QUARANTINE_CODES = {
  tooManyAttempts: "TOO_MANY_ATTEMPTS",
  vanished: "VANISHED",
  tooLarge: "MESSAGE_TOO_LARGE",
} as const;

/**
 * Moves a message that is still being copied to `quarantined` with its reason (DESIGN.md
 * invariant 5): it stays on the POP3 server (deletes skip quarantined messages), keeps its
 * archive key if it has one, and is reported once. Returns undefined when another worker moved
 * the message first (the conditional write lost the race), so the caller re-reads instead.
 */
export async function quarantine(
  deps: { ledger: Ledger; telemetry: Telemetry },
  key: MessageKey,
  code: string,
  reason: string,
  now: number,
): Promise<LedgerEntry | undefined> {
  let entry: LedgerEntry;
  try {
    entry = await deps.ledger.transition(key, ["listed", "archived"], "quarantined", {
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
