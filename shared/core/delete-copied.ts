import type { MailboxConfig } from "../config/tenant-config";
import { isDeleteDue } from "./delete-policy";
import { LedgerConflictError } from "./errors";
import { type SessionOutcome, type SessionScope, withMailboxSession } from "./mailbox-session";
import type { LedgerEntry, MessageKey } from "./model";
import type { PipelineDeps } from "./pipeline-deps";

export type DeleteDeps = Pick<PipelineDeps, "ledger" | "clock" | "telemetry"> &
  Partial<Pick<PipelineDeps, "archive">>;

/** What one delete pass did before QUIT; `committed` is known only after `withMailboxSession`. */
export interface DeletePlan {
  /** Messages DELE'd in this session; recorded as deleted only if QUIT commits. */
  readonly marked: readonly MessageKey[];
  /** Copied messages already absent from the server, recorded as deleted at once. */
  readonly alreadyGone: readonly MessageKey[];
}

/**
 * Sends DELE for every message the ledger shows archived and imported and due under the
 * mailbox's current `deleteAfter`, mapping UIDL -> message number in this session (RFC 1939 §7).
 * The ledger moves them to `deleted` only in an `afterQuit` action that runs when QUIT commits
 * (RFC 1939 §6: a session that ends any other way deletes nothing). `candidates` limits the pass
 * to entries the caller holds (the copy batch), `uidls` to those UIDLs (the lister's `dueUidls`,
 * one read each); with neither, every imported/retained entry of the mailbox is read.
 * Copied messages already missing from the server (deleted by another client, or by a session
 * whose ledger write crashed after QUIT) are recorded as deleted now.
 */
export async function deleteCopied(
  deps: DeleteDeps,
  scope: SessionScope,
  mailbox: MailboxConfig,
  options: { now: number; candidates?: readonly LedgerEntry[]; uidls?: readonly string[] },
): Promise<DeletePlan> {
  if (scope.broken || mailbox.deleteAfter === "never") return { marked: [], alreadyGone: [] };
  const entries = await candidateEntries(deps, scope, options);
  // One DELE per UIDL even when a redelivered job put the same message in the batch twice.
  const due = [...new Map(entries.map((entry) => [entry.uidl, entry])).values()].filter((entry) =>
    isDeleteDue(entry, mailbox.deleteAfter, options.now),
  );
  const marked: LedgerEntry[] = [];
  const alreadyGone: MessageKey[] = [];
  // Whatever the archive still holds back from disk is made durable before the first DELE.
  if (due.length > 0) await deps.archive?.flush?.();
  for (const entry of due) {
    // By content when the server lists the UIDL twice: never one message in place of another.
    const message = await scope.find(entry.uidl, {
      ...(entry.archivedSize === undefined ? {} : { size: entry.archivedSize }),
      ...(entry.sha256 === undefined ? {} : { sha256: entry.sha256 }),
    });
    if (message === undefined) {
      if (await markDeleted(deps, entry, options.now)) alreadyGone.push(keyOf(entry));
      continue;
    }
    await scope.session.markDeleted(message.number);
    marked.push(entry);
  }
  if (marked.length > 0) {
    scope.afterQuit(async (committed) => {
      if (!committed) {
        deps.telemetry.record({ type: "delete-uncommitted", ...scope.mailbox, messages: marked.length });
        return;
      }
      await markAllDeleted(deps, marked, deps.clock.now());
    });
  }
  return { marked: marked.map(keyOf), alreadyGone };
}

/** The outcome of a stand-alone delete pass. */
export type DeleteOutcome =
  | { readonly kind: "deleted"; readonly deleted: number; readonly committed: boolean }
  | { readonly kind: "busy" };

/**
 * Opens its own session (holding a lease) for one delete pass: the `delete-copied` function.
 * Pass the lister's `dueUidls` as `uidls` to read only those entries.
 */
export async function deleteCopiedInOwnSession(
  deps: DeleteDeps & Pick<PipelineDeps, "pop3" | "leases" | "holderId">,
  tenant: string,
  mailbox: MailboxConfig,
  options: { uidls?: readonly string[] } = {},
): Promise<DeleteOutcome> {
  const outcome: SessionOutcome<DeletePlan> = await withMailboxSession(
    deps,
    { tenant, mailboxId: mailbox.id },
    mailbox,
    (scope) =>
      deleteCopied(deps, scope, mailbox, {
        now: deps.clock.now(),
        ...(options.uidls === undefined ? {} : { uidls: options.uidls }),
      }),
  );
  if (outcome.kind === "busy") return { kind: "busy" };
  const { marked, alreadyGone } = outcome.value;
  return {
    kind: "deleted",
    deleted: (outcome.committed ? marked.length : 0) + alreadyGone.length,
    committed: outcome.committed,
  };
}

async function candidateEntries(
  deps: DeleteDeps,
  scope: SessionScope,
  options: { candidates?: readonly LedgerEntry[]; uidls?: readonly string[] },
): Promise<readonly LedgerEntry[]> {
  if (options.candidates !== undefined) return options.candidates;
  if (options.uidls === undefined) return deps.ledger.listByState(scope.mailbox, ["imported", "retained"]);
  const entries: LedgerEntry[] = [];
  for (const uidl of options.uidls) {
    const entry = await deps.ledger.get({ ...scope.mailbox, uidl });
    if (entry !== undefined) entries.push(entry);
  }
  return entries;
}

/**
 * Records a copied message (imported or retained) as deleted from the server; false when an
 * earlier pass already did. Safe whoever deleted it: those states mean archived and imported.
 */
export async function markDeleted(
  deps: Pick<DeleteDeps, "ledger" | "telemetry">,
  entry: LedgerEntry,
  deletedAt: number,
): Promise<boolean> {
  try {
    await deps.ledger.transition(keyOf(entry), ["imported", "retained"], "deleted", { deletedAt });
  } catch (error) {
    // Already recorded by an earlier pass: the message is gone either way.
    if (error instanceof LedgerConflictError) return false;
    throw error;
  }
  deps.telemetry.record({
    type: "deleted",
    ...keyOf(entry),
    ...(entry.archiveKey === undefined ? {} : { archiveKey: entry.archiveKey }),
    ...(entry.gmailId === undefined ? {} : { gmailId: entry.gmailId }),
  });
  return true;
}

/**
 * Records the messages a committed QUIT deleted, in one ledger commit where the ledger can
 * (`transitionEach`: one fsync per batch in SQLite), else one `markDeleted` each.
 */
async function markAllDeleted(
  deps: Pick<DeleteDeps, "ledger" | "telemetry">,
  entries: readonly LedgerEntry[],
  deletedAt: number,
): Promise<void> {
  if (deps.ledger.transitionEach === undefined) {
    for (const entry of entries) await markDeleted(deps, entry, deletedAt);
    return;
  }
  const moved = new Set(
    (
      await deps.ledger.transitionEach(entries.map(keyOf), ["imported", "retained"], "deleted", { deletedAt })
    ).map((key) => key.uidl),
  );
  for (const entry of entries) {
    if (!moved.has(entry.uidl)) continue;
    deps.telemetry.record({
      type: "deleted",
      ...keyOf(entry),
      ...(entry.archiveKey === undefined ? {} : { archiveKey: entry.archiveKey }),
      ...(entry.gmailId === undefined ? {} : { gmailId: entry.gmailId }),
    });
  }
}

function keyOf(entry: MessageKey): MessageKey {
  return { tenant: entry.tenant, mailboxId: entry.mailboxId, uidl: entry.uidl };
}
