import type { DeleteAfter } from "../config/tenant-config";
import type { LedgerEntry } from "./model";

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * When a copied message may leave the POP3 server under `deleteAfter`: `0` for at once
 * (`immediately`), `undefined` for never, else import time + N days.
 */
export function deleteDueAt(deleteAfter: DeleteAfter, importedAt: number): number | undefined {
  if (deleteAfter === "immediately") return 0;
  if (deleteAfter === "never") return undefined;
  return importedAt + Number.parseInt(deleteAfter, 10) * DAY_MS;
}

/** The state a freshly imported message takes: `imported` when it may go at once, else `retained`. */
export function stateAfterImport(deleteAfter: DeleteAfter): "imported" | "retained" {
  return deleteAfter === "immediately" ? "imported" : "retained";
}

/**
 * True when the ledger proves the message is archived and in Gmail (DESIGN.md invariant 1) and
 * the current `deleteAfter` policy lets it go at `now`. The policy is read now, not at import,
 * so switching a mailbox to `never` stops deletes of messages imported earlier.
 */
export function isDeleteDue(entry: LedgerEntry, deleteAfter: DeleteAfter, now: number): boolean {
  if (entry.state !== "imported" && entry.state !== "retained") return false;
  if (!isSafelyCopied(entry)) return false;
  const due = deleteDueAt(deleteAfter, entry.importedAt ?? Number.POSITIVE_INFINITY);
  return due !== undefined && due <= now;
}

/** Archive key, SHA-256, size and Gmail id all recorded: the message exists in both places. */
export function isSafelyCopied(entry: LedgerEntry): boolean {
  return (
    entry.archiveKey !== undefined &&
    entry.sha256 !== undefined &&
    entry.archivedSize !== undefined &&
    entry.gmailId !== undefined &&
    entry.importedAt !== undefined
  );
}
