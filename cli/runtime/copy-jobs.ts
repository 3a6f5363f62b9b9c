import type { MailboxConfig } from "../../shared/config/tenant-config";
import type { CopyBatchDeps } from "../../shared/core/copy-batch";
import { type CopyOutcome, type CopyPolicy, copyMessage } from "../../shared/core/copy-message";
import { deleteCopied } from "../../shared/core/delete-copied";
import { withMailboxSession } from "../../shared/core/mailbox-session";
import type { CopyJob, LedgerEntry } from "../../shared/core/model";
import type { BusyReason } from "../../shared/ports/telemetry";

/** What one session of copying did; `outcomes[i]` is undefined for a job left for later (stop asked). */
export type CopyJobsResult =
  | {
      readonly kind: "done";
      readonly outcomes: readonly (CopyOutcome | undefined)[];
      readonly deleted: number;
      readonly committed: boolean;
    }
  | { readonly kind: "busy"; readonly reason: BusyReason };

/**
 * `copyBatch` of the core with one difference the local runtime needs: `shouldStop` is checked
 * before each job, so SIGINT/SIGTERM finish the message in hand, still delete what was copied and
 * QUIT cleanly, and leave the rest for the next run (the ledger keeps them `listed`).
 */
export async function copyJobs(
  deps: CopyBatchDeps,
  tenant: string,
  mailbox: MailboxConfig,
  jobs: readonly CopyJob[],
  policy: CopyPolicy,
  shouldStop: () => boolean,
): Promise<CopyJobsResult> {
  const session = await withMailboxSession(
    deps,
    { tenant, mailboxId: mailbox.id },
    mailbox,
    async (scope) => {
      const outcomes: (CopyOutcome | undefined)[] = [];
      for (const job of jobs) {
        if (scope.broken || shouldStop()) {
          outcomes.push(undefined);
          continue;
        }
        outcomes.push(await copyMessage(deps, scope, mailbox, job, policy));
      }
      const candidates: LedgerEntry[] = outcomes.flatMap((o) =>
        o?.kind === "copied" || o?.kind === "already-copied" ? [o.entry] : [],
      );
      const plan = await deleteCopied(deps, scope, mailbox, { now: deps.clock.now(), candidates });
      return { outcomes, plan };
    },
  );
  if (session.kind === "busy") return session;
  const { outcomes, plan } = session.value;
  return {
    kind: "done",
    outcomes,
    deleted: (session.committed ? plan.marked.length : 0) + plan.alreadyGone.length,
    committed: session.committed,
  };
}
