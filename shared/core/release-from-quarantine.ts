import { LedgerConflictError } from "./errors";
import { readSnapshot, uidlHash, writeSnapshot } from "./mailbox-snapshot";
import { baseOf } from "./message-identity";
import type { LedgerEntry, MessageKey } from "./model";
import type { PipelineDeps } from "./pipeline-deps";

export type ReleaseDeps = Pick<PipelineDeps, "ledger">;

const SNAPSHOT_WRITE_TRIES = 5;

/**
 * Gives a quarantined message another copy (`pop2gmail quarantine retry`): `quarantined ->
 * archived` when it was archived (the copier imports from the archive, after verifying it), else
 * `quarantined -> listed` (archived again from the server). Attempts start again from 0, so a
 * `TOO_MANY_ATTEMPTS` message gets a full set. The lister's snapshot forgets the UIDL, so the
 * next poll reads the entry and sends a copy job (and later reports the delete as due).
 *
 * For `IMPORT_UNCERTAIN` (only versions before the Gmail copy's trace line wrote it), release only
 * after checking that Gmail does not hold the message: that earlier copy carries neither our trace
 * id nor a Message-ID, so neither a look-up nor Gmail's merge would catch a second copy.
 *
 * Returns the entry as written, or undefined when the message is not quarantined.
 */
export async function releaseFromQuarantine(
  deps: ReleaseDeps,
  key: MessageKey,
): Promise<LedgerEntry | undefined> {
  const current = await deps.ledger.get(key);
  if (current?.state !== "quarantined") return undefined;
  const archived = current.archiveKey !== undefined && current.sha256 !== undefined;
  let released: LedgerEntry;
  try {
    released = await deps.ledger.transition(key, ["quarantined"], archived ? "archived" : "listed", {
      attempts: 0,
    });
  } catch (error) {
    if (error instanceof LedgerConflictError) return undefined;
    throw error;
  }
  await forgetInSnapshot(deps, key);
  return released;
}

/** Drops the UIDL from the mailbox snapshot (a `parked` UIDL is never looked at again otherwise). */
async function forgetInSnapshot(deps: ReleaseDeps, key: MessageKey): Promise<void> {
  const hash = uidlHash(baseOf(key.uidl));
  for (let tries = 1; ; tries++) {
    const stored = await readSnapshot(deps.ledger, key);
    const entries = new Map(stored.entries);
    if (!entries.delete(hash)) return;
    // writeSnapshot leaves a conflicting shard to the next poll; here the drop must land.
    const conflict = { error: undefined as unknown };
    await writeSnapshot(
      {
        putSnapshot: (mailbox, body, expected, shard) =>
          deps.ledger.putSnapshot(mailbox, body, expected, shard).catch((error: unknown) => {
            conflict.error = error;
            throw error;
          }),
      },
      key,
      stored,
      entries,
    );
    if (conflict.error === undefined) return;
    // A poll wrote in between: read its snapshot and try again.
    if (tries >= SNAPSHOT_WRITE_TRIES) throw conflict.error;
  }
}
