import { MemoryWorkQueue } from "../../shared/adapters/local/memory-work-queue";
import type { MailboxConfig } from "../../shared/config/tenant-config";
import { LedgerConflictError } from "../../shared/core/errors";
import { withMailboxSession } from "../../shared/core/mailbox-session";
import type { LocalRuntime } from "../runtime/local-runtime";

/**
 * Quarantine code of messages that were on the server before pop2gmail took over and that Gmail's
 * own fetcher already delivered ("leave a copy on the server"). `quarantined` is the ledger
 * state that keeps a message out of both the import and the delete (DESIGN.md invariant 5: left
 * on the server, reason kept); `status` counts these apart from real quarantines, and
 * `quarantine retry` leaves them alone unless asked for one by UIDL.
 */
export const PRE_EXISTING_CODE = "PRE_EXISTING";

/**
 * Records every UIDL now on the server as already delivered: `createListed`, then `listed ->
 * quarantined` with `PRE_EXISTING`. UIDLs the ledger knows already are left as they are.
 * Returns how many were on the server and how many were marked.
 */
export async function markExistingDelivered(
  runtime: LocalRuntime,
  mailbox: MailboxConfig,
): Promise<{ onServer: number; marked: number; busy?: string }> {
  const deps = runtime.pipeline(new MemoryWorkQueue(runtime.clock));
  const key = { tenant: runtime.config.tenant, mailboxId: mailbox.id };
  // Under the ledger ids the lister gives them (docs/pipeline.md "Message identity"): twins
  // sharing a UIDL are marked by content, each one.
  const session = await withMailboxSession(deps, key, mailbox, (scope) => scope.identify());
  if (session.kind === "busy") return { onServer: 0, marked: 0, busy: session.reason };
  const now = runtime.clock.now();
  const created = await runtime.ledger.createListed(
    session.value.flatMap((m) =>
      m.identity === undefined ? [] : [{ ...key, uidl: m.identity, listedSize: m.size, listedAt: now }],
    ),
  );
  let marked = 0;
  for (const entry of created) {
    try {
      await runtime.ledger.transition(entry, ["listed"], "quarantined", {
        quarantineCode: PRE_EXISTING_CODE,
        quarantineReason: "was on the POP3 server before pop2gmail took over (delivered by Gmail's fetcher)",
        quarantinedAt: now,
      });
      marked++;
    } catch (error) {
      if (!(error instanceof LedgerConflictError)) throw error;
    }
  }
  return { onServer: session.value.length, marked };
}
