import type { MailboxConfig } from "../config/tenant-config";
import {
  type CopyDeps,
  type CopyOutcome,
  type CopyPolicy,
  DEFAULT_COPY_POLICY,
  type StartedCopy,
  startCopy,
} from "./copy-message";
import { deleteCopied } from "./delete-copied";
import {
  ConnectionClosedError,
  environmentErrorOf,
  type Pop2GmailError,
  ShutdownRequestedError,
} from "./errors";
import { type SessionScope, withMailboxSession } from "./mailbox-session";
import type { CopyJob, LedgerEntry } from "./model";
import type { PipelineDeps } from "./pipeline-deps";

/** The outcome of a batch: one `CopyOutcome` per job (same order), and the delete pass. */
export interface CopyBatchResult {
  readonly outcomes: readonly CopyOutcome[];
  /** Messages whose deletion QUIT committed (plus copied ones already gone from the server). */
  readonly deleted: number;
  readonly committed: boolean;
}

export type CopyBatchDeps = CopyDeps & Pick<PipelineDeps, "pop3" | "leases" | "holderId" | "sessionLeaseMs">;

/**
 * Time limits of a batch beyond `shouldStop`. (Its session lease follows `deps.sessionLeaseMs`,
 * docs/pipeline.md "Why leases".)
 */
export interface CopyBatchLimits {
  /**
   * The hard deadline: once aborted, the POP3 session is dropped (no QUIT, so no DELE of this
   * session takes effect), the job in hand is no longer waited for and answers `retry-later`,
   * and the batch returns. The abandoned copy keeps the ledger consistent on its own, as a crash
   * would (docs/pipeline.md, "Crash points").
   */
  readonly abort?: AbortSignal;
}

/**
 * The copy step for a batch of jobs of one mailbox, in one POP3 session: `copyMessage` for each
 * job, then `deleteCopied` for the ones now safely copied, then QUIT, which commits the DELEs.
 * A busy mailbox yields `busy` for every job (none counted as failed). Once a RETR breaks the
 * connection the remaining jobs are `retry-later` without an attempt being counted against them;
 * so are the jobs not started once `shouldStop` says to stop (the local runtime on SIGINT/SIGTERM,
 * the copy-message function when its remaining time runs short): it finishes the message in hand,
 * deletes what was copied and QUITs. `limits.abort` cuts even the message in hand short.
 */
export async function copyBatch(
  deps: CopyBatchDeps,
  tenant: string,
  mailbox: MailboxConfig,
  jobs: readonly CopyJob[],
  policy: CopyPolicy = DEFAULT_COPY_POLICY,
  shouldStop: () => boolean = () => false,
  limits: CopyBatchLimits = {},
): Promise<CopyBatchResult> {
  const { abort } = limits;
  const session = await withMailboxSession(
    deps,
    { tenant, mailboxId: mailbox.id },
    mailbox,
    async (scope) => {
      const dropSession = () => {
        scope.markBroken();
        scope.session.abort();
      };
      abort?.addEventListener("abort", dropSession, { once: true });
      try {
        if (abort?.aborted) dropSession();
        const outcomes = await copyPipelined(deps, scope, mailbox, jobs, policy, shouldStop, abort);
        const candidates: LedgerEntry[] = outcomes.flatMap((o) =>
          o.kind === "copied" || o.kind === "already-copied" ? [o.entry] : [],
        );
        const plan = await deleteCopied(deps, scope, mailbox, { now: deps.clock.now(), candidates });
        return { outcomes, plan };
      } finally {
        abort?.removeEventListener("abort", dropSession);
      }
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

/** Imports a batch keeps in flight when the sink does not say (docs/pipeline.md, "Imports in flight"). */
export const DEFAULT_IMPORTS_IN_FLIGHT = 4;

type Settled<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

function settledOf<T>(work: Promise<T>): Promise<Settled<T>> {
  return work.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  );
}

/**
 * Copies the jobs in order in one session: the POP3 part of each copy (RETR, archive, claim)
 * one after another, and the Gmail imports alongside, at most `importsInFlight` at a time
 * (docs/pipeline.md, "Imports in flight"). Returns only when every import it started has settled
 * (or `abort` fired): the delete pass that follows sees each outcome. The first thrown error
 * stops new jobs and is rethrown once the imports in flight have settled.
 */
async function copyPipelined(
  deps: CopyBatchDeps,
  scope: SessionScope,
  mailbox: MailboxConfig,
  jobs: readonly CopyJob[],
  policy: CopyPolicy,
  shouldStop: () => boolean,
  abort: AbortSignal | undefined,
): Promise<CopyOutcome[]> {
  const window = Math.max(1, deps.sink.importsInFlight?.(mailbox) ?? DEFAULT_IMPORTS_IN_FLIGHT);
  const results: Promise<Settled<CopyOutcome> | undefined>[] = [];
  const inFlight = new Set<Promise<unknown>>();
  let failed: { readonly error: unknown } | undefined;
  const notStarted = (error: Pop2GmailError): CopyOutcome => ({
    kind: "retry-later",
    error,
    retryAfterMs: 0,
  });
  const cutShort = () => notStarted(new ShutdownRequestedError("cut short: the copier's deadline passed"));
  const wait = <T>(work: Promise<T>) => (abort === undefined ? work : untilAborted(work, abort));
  const seen = new Set<string>();
  for (const job of jobs) {
    // A job twice in one batch (an SQS redelivery beside the original) waits for every import in
    // flight, so it finds the first one's outcome instead of its fresh claim.
    const limit = seen.has(job.uidl) ? 1 : window;
    seen.add(job.uidl);
    while (inFlight.size >= limit && !abort?.aborted) await wait(Promise.race(inFlight));
    if (abort?.aborted || shouldStop() || failed !== undefined) {
      const error = new ShutdownRequestedError("not started: the copier is stopping");
      results.push(Promise.resolve({ ok: true, value: notStarted(error) }));
      continue;
    }
    if (scope.broken) {
      const error = new ConnectionClosedError("pop3", "the POP3 session broke during an earlier RETR");
      results.push(Promise.resolve({ ok: true, value: notStarted(error) }));
      continue;
    }
    const start = settledOf(
      startCopy(deps, scope, mailbox, job, policy).catch((error: unknown) => {
        // A raw SQLITE_FULL or EIO that escaped an adapter is still our environment's fault.
        throw environmentErrorOf(error, "ledger", "use the ledger") ?? error;
      }),
    );
    const started: Settled<StartedCopy> | undefined = await wait(start);
    if (started === undefined) {
      // Given up at the deadline: whatever the copy still does settles like a crash would.
      results.push(Promise.resolve({ ok: true, value: cutShort() }));
      continue;
    }
    if (!started.ok) {
      failed = { error: started.error };
      results.push(Promise.resolve(started as Settled<CopyOutcome>));
      continue;
    }
    if (started.value.kind === "done") {
      results.push(Promise.resolve({ ok: true, value: started.value.outcome }));
      continue;
    }
    const imported = settledOf(
      started.value.finish().catch((error: unknown) => {
        throw environmentErrorOf(error, "ledger", "use the ledger") ?? error;
      }),
    ).then((settled) => {
      inFlight.delete(imported);
      if (!settled.ok) failed ??= { error: settled.error };
      return settled;
    });
    inFlight.add(imported);
    results.push(imported);
  }
  const outcomes: CopyOutcome[] = [];
  for (const result of results) {
    const settled = await wait(result);
    if (settled === undefined) outcomes.push(cutShort());
    else if (settled.ok) outcomes.push(settled.value);
  }
  if (failed !== undefined) throw failed.error;
  return outcomes;
}

/** `work`'s value, or undefined as soon as `signal` aborts (the work itself is not stopped). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
