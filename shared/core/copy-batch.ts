import type { MailboxConfig } from "../config/tenant-config";
import {
  type CopyDeps,
  type CopyOutcome,
  type CopyPolicy,
  copyMessage,
  DEFAULT_COPY_POLICY,
} from "./copy-message";
import { deleteCopied } from "./delete-copied";
import { ConnectionClosedError, ShutdownRequestedError } from "./errors";
import { withMailboxSession } from "./mailbox-session";
import type { CopyJob, LedgerEntry } from "./model";
import type { PipelineDeps } from "./pipeline-deps";

/** The outcome of a batch: one `CopyOutcome` per job (same order), and the delete pass. */
export interface CopyBatchResult {
  readonly outcomes: readonly CopyOutcome[];
  /** Messages whose deletion QUIT committed (plus copied ones already gone from the server). */
  readonly deleted: number;
  readonly committed: boolean;
}

export type CopyBatchDeps = CopyDeps & Pick<PipelineDeps, "pop3" | "leases" | "holderId">;

/**
 * The copy step for a batch of jobs of one mailbox, in one POP3 session: `copyMessage` for each
 * job, then `deleteCopied` for the ones now safely copied, then QUIT, which commits the DELEs.
 * A busy mailbox yields `busy` for every job (none counted as failed). Once a RETR breaks the
 * connection the remaining jobs are `retry-later` without an attempt being counted against them;
 * so are the jobs not started once `shouldStop` says the process is shutting down (the local
 * runtime on SIGINT/SIGTERM: it finishes the message in hand, deletes what was copied and QUITs).
 */
export async function copyBatch(
  deps: CopyBatchDeps,
  tenant: string,
  mailbox: MailboxConfig,
  jobs: readonly CopyJob[],
  policy: CopyPolicy = DEFAULT_COPY_POLICY,
  shouldStop: () => boolean = () => false,
): Promise<CopyBatchResult> {
  const session = await withMailboxSession(
    deps,
    { tenant, mailboxId: mailbox.id },
    mailbox,
    async (scope) => {
      const outcomes: CopyOutcome[] = [];
      for (const job of jobs) {
        if (scope.broken) {
          const error = new ConnectionClosedError("pop3", "the POP3 session broke during an earlier RETR");
          outcomes.push({ kind: "retry-later", error, retryAfterMs: 0 });
          continue;
        }
        if (shouldStop()) {
          const error = new ShutdownRequestedError("not started: the process is shutting down");
          outcomes.push({ kind: "retry-later", error, retryAfterMs: 0 });
          continue;
        }
        outcomes.push(await copyMessage(deps, scope, mailbox, job, policy));
      }
      const candidates: LedgerEntry[] = outcomes.flatMap((o) =>
        o.kind === "copied" || o.kind === "already-copied" ? [o.entry] : [],
      );
      const plan = await deleteCopied(deps, scope, mailbox, { now: deps.clock.now(), candidates });
      return { outcomes, plan };
    },
  );
  if (session.kind === "busy") {
    const busy: CopyOutcome = { kind: "busy", reason: session.reason };
    return { outcomes: jobs.map(() => busy), deleted: 0, committed: false };
  }
  const { outcomes, plan } = session.value;
  return {
    outcomes,
    deleted: (session.committed ? plan.marked.length : 0) + plan.alreadyGone.length,
    committed: session.committed,
  };
}
