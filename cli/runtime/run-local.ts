import { setMaxListeners } from "node:events";
import { availableParallelism } from "node:os";
import { setTimeout as delay } from "node:timers/promises";
import { ConcurrencyGate } from "../../shared/adapters/gmail/concurrency-gate";
import { MemoryWorkQueue } from "../../shared/adapters/local/memory-work-queue";
import { systemClock } from "../../shared/adapters/system-clock";
import type { MailboxConfig } from "../../shared/config/tenant-config";
import { copyBatch } from "../../shared/core/copy-batch";
import { type CopyOutcome, type CopyPolicy, DEFAULT_COPY_POLICY } from "../../shared/core/copy-message";
import { deleteCopiedInOwnSession } from "../../shared/core/delete-copied";
import { EnvironmentError, environmentErrorOf, Pop2GmailError } from "../../shared/core/errors";
import type { CopyJob, LedgerState, MailboxKey } from "../../shared/core/model";
import type { PipelineDeps } from "../../shared/core/pipeline-deps";
import { pollInOneSession } from "../../shared/core/poll-in-one-session";
import { delaySecondsOf, environmentBackoffMs, resendAfter } from "../../shared/core/retry-rule";
import type { Clock } from "../../shared/ports/clock";
import type { LocalRuntime } from "./local-runtime";
import { acquireRunLock } from "./run-lock";

/** A failure that stopped one mailbox's pass, as shown to the operator (no secret in it). */
export interface MailboxFailure {
  readonly code: string;
  readonly message: string;
  readonly hint?: string;
  /**
   * Set when the pass stopped on a fault of our own environment (`EnvironmentError`: full disk,
   * read-only folder, failing ledger): the system's code, e.g. `ENOSPC` or `SQLITE_FULL`.
   */
  readonly environmentErrno?: string;
}

/** What one mailbox's pass did. */
export interface MailboxRunSummary {
  readonly mailboxId: string;
  onServer: number;
  newMessages: number;
  copied: number;
  alreadyCopied: number;
  /** Messages quarantined by this pass (never `gone` ones: those are counted in `gone`). */
  quarantined: number;
  /** Messages that left the server before they were copied (quarantined `VANISHED` in the ledger). */
  gone: number;
  retryLater: number;
  deleted: number;
  /** Messages not yet safely copied and deleted (listed, archived, importing, or imported awaiting DELE). */
  inFlight: number;
  busy?: string;
  failure?: MailboxFailure;
  /** True when a deadline cut work short (a POP3 or Gmail timeout, or the stop deadline). */
  timedOut: boolean;
}

/** The outcome of `runOnce`: `ok` only when every mailbox was reached and nothing is in flight. */
export interface RunSummary {
  readonly tenant: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly mailboxes: readonly MailboxRunSummary[];
  readonly inFlight: number;
  readonly ok: boolean;
  /** True when a stop signal cut the run short. */
  readonly stopped: boolean;
  /** Messages quarantined (or found gone) by this run, over all mailboxes. */
  readonly quarantined: number;
  /** The first fault of our own environment that stopped a mailbox's pass, if any. */
  readonly environmentError?: MailboxFailure;
  /** True when a deadline cut work short in some mailbox (see `MailboxRunSummary.timedOut`). */
  readonly timedOut: boolean;
}

/** States whose message is not yet done with; `imported` (deleteAfter immediately) awaits its DELE. */
export const IN_FLIGHT_STATES: readonly LedgerState[] = ["listed", "archived", "importing", "imported"];

// The run lock guarantees no other copier lives: a claim found at start-up is a dead process's,
// so it is settled at once (a look-up for its trace id, or a re-import Gmail merges) instead of in
// 16 min.
const LOCAL_COPY_POLICY: CopyPolicy = { ...DEFAULT_COPY_POLICY, importClaimMs: 0 };

/** How long a stop signal waits for the message in hand before the session is dropped. */
export const DEFAULT_STOP_GRACE_MS = 30_000;

/** Options of a run. */
export interface RunOptions {
  /**
   * Abort to stop: the message in hand is finished, copied ones deleted, then the run returns.
   * If the message in hand takes longer than `stopGraceMs`, its POP3 session is dropped (nothing
   * is deleted without QUIT) and the run returns anyway (docs/pipeline.md, "Time limits").
   */
  readonly signal?: AbortSignal;
  /** Default `DEFAULT_STOP_GRACE_MS`, measured in real time from the stop signal. */
  readonly stopGraceMs?: number;
}

/**
 * Mailboxes worked on at once by default: 16 per CPU the process may use. The work is waiting
 * (POP3, Gmail's pacing at 4-10 imports/s per user, fsync), not computing: a mailbox at its
 * user's quota costs ~3% of a core (docs/pipeline.md, "Mailboxes in parallel").
 */
export function defaultParallelMailboxes(): number {
  return Math.max(16, availableParallelism() * 16);
}

/**
 * The pool of a run: every POP3 session (a poll, a copy batch, a delete pass) takes a turn in
 * it, first come first served, so a mailbox with a backlog goes to the back of the line after
 * each batch and a quiet mailbox's poll waits one batch at most, never for the backlog.
 */
class TurnPool {
  readonly #gate: ConcurrencyGate;

  constructor(readonly size: number) {
    this.#gate = new ConcurrencyGate(size);
  }

  async turn<T>(work: () => Promise<T>): Promise<T> {
    await this.#gate.acquire();
    try {
      return await work();
    } finally {
      this.#gate.release();
    }
  }
}

function poolOf(runtime: LocalRuntime): TurnPool {
  return new TurnPool(runtime.config.local.parallelMailboxes ?? defaultParallelMailboxes());
}

/** One mailbox's state across polls: its queue survives from one poll to the next. */
class MailboxWorker {
  readonly queue: MemoryWorkQueue;
  readonly deps: PipelineDeps;
  readonly key: MailboxKey;
  /** The server's LOGIN-DELAY seen by the last poll: polls start no closer together than this. */
  loginDelayMs = 0;
  /** Consecutive passes stopped by an `EnvironmentError`; sets the back-off (`environmentBackoffMs`). */
  environmentFailures = 0;

  constructor(
    private readonly runtime: LocalRuntime,
    readonly mailbox: MailboxConfig,
  ) {
    this.queue = new MemoryWorkQueue(runtime.clock);
    this.deps = runtime.pipeline(this.queue);
    this.key = { tenant: runtime.config.tenant, mailboxId: mailbox.id };
  }

  /** The in-process queue died with the last process: its work is whatever the ledger has in flight. */
  async recover(): Promise<void> {
    const entries = await this.runtime.ledger.listByState(this.key, [
      "listed",
      "archived",
      "importing",
      "imported",
    ]);
    await this.queue.enqueue(
      entries.map((e) => ({ ...this.key, uidl: e.uidl, listedSize: e.listedSize, listedAt: e.listedAt })),
    );
  }

  /** Lists, copies what is queued (waiting up to `maxWaitMs` for scheduled retries), deletes what is due. */
  async pass(maxWaitMs: number, stop: StopSignals, pool: TurnPool): Promise<MailboxRunSummary> {
    const summary: MailboxRunSummary = {
      mailboxId: this.mailbox.id,
      onServer: 0,
      newMessages: 0,
      copied: 0,
      alreadyCopied: 0,
      quarantined: 0,
      gone: 0,
      retryLater: 0,
      deleted: 0,
      inFlight: 0,
      timedOut: false,
    };
    const stopped = () => stop.signal?.aborted === true;
    try {
      // One session per poll; on a LOGIN-DELAY server it copies and deletes too (docs/pipeline.md).
      const polled = await pool.turn(() =>
        pollInOneSession(this.deps, this.key.tenant, this.mailbox, {
          copy: LOCAL_COPY_POLICY,
          shouldStop: stopped,
        }),
      );
      this.runtime.ledger.recordPoll({ ...this.key, at: this.runtime.clock.now(), ok: true });
      if (polled.kind !== "busy") this.loginDelayMs = polled.loginDelayMs ?? 0;
      if (polled.kind === "busy") {
        summary.busy = polled.reason;
      } else if (polled.inSession !== undefined) {
        summary.onServer = polled.listed.onServer;
        summary.newMessages = polled.listed.newMessages;
        summary.deleted += polled.inSession.deleted;
        for (const outcome of polled.inSession.outcomes) countInSession(summary, outcome);
        // Copied in the poll's own session; what is left waits for the next poll, not the queue.
        this.queue.take(Number.MAX_SAFE_INTEGER);
      } else {
        const listed = polled.listed;
        summary.onServer = listed.onServer;
        summary.newMessages = listed.newMessages;
        await this.drain(summary, maxWaitMs, stopped, stop.hardStop, pool);
        if (listed.deletesDue > 0 && !stopped() && summary.busy === undefined) {
          const outcome = await pool.turn(() =>
            deleteCopiedInOwnSession(this.deps, this.key.tenant, this.mailbox, {
              uidls: listed.dueUidls,
            }),
          );
          if (outcome.kind === "deleted") summary.deleted += outcome.deleted;
        }
      }
      this.environmentFailures = 0;
    } catch (thrown) {
      const error = asKnownError(thrown);
      if (error === undefined) throw thrown;
      this.environmentFailures = error instanceof EnvironmentError ? this.environmentFailures + 1 : 0;
      // The ledger may be what failed: the failure is still reported, only not recorded.
      tryLedger(() =>
        this.runtime.ledger.recordPoll({
          ...this.key,
          at: this.runtime.clock.now(),
          ok: false,
          errorCode: error.code,
        }),
      );
      summary.failure = {
        code: error.code,
        message: error.message,
        ...(error.hint === undefined ? {} : { hint: error.hint }),
        ...(error instanceof EnvironmentError ? { environmentErrno: error.errno } : {}),
      };
      if (error.code === "TIMEOUT") summary.timedOut = true;
    }
    try {
      summary.inFlight = (await this.runtime.ledger.listByState(this.key, IN_FLIGHT_STATES)).length;
    } catch (thrown) {
      if (asKnownError(thrown) === undefined) throw thrown;
      // Unknown while the ledger cannot be read: at least the jobs still queued are in flight.
      summary.inFlight = this.queue.size;
    }
    return summary;
  }

  /** Milliseconds to leave this mailbox alone after its pass, beyond the poll interval. */
  backoffMs(): number {
    return this.environmentFailures === 0 ? 0 : environmentBackoffMs(this.environmentFailures);
  }

  private async drain(
    summary: MailboxRunSummary,
    maxWaitMs: number,
    stopped: () => boolean,
    hardStop: AbortSignal | undefined,
    pool: TurnPool,
  ): Promise<void> {
    const { clock, config } = this.runtime;
    const waitUntil = clock.now() + maxWaitMs;
    while (!stopped()) {
      const jobs = uniqueByUidl(this.queue.take(config.local.batchSize));
      if (jobs.length === 0) {
        const next = this.queue.nextVisibleAt();
        if (next === undefined || next > waitUntil) return;
        await clock.sleep(Math.max(0, next - clock.now()));
        continue;
      }
      let result: Awaited<ReturnType<typeof copyBatch>>;
      try {
        // One batch per turn: then the mailbox goes to the back of the pool's line.
        result = await pool.turn(() =>
          copyBatch(
            this.deps,
            this.key.tenant,
            this.mailbox,
            jobs,
            LOCAL_COPY_POLICY,
            stopped,
            hardStop === undefined ? {} : { abort: hardStop },
          ),
        );
      } catch (thrown) {
        // The pass stops (a broken mailbox, our own disk or ledger): its jobs wait in the queue
        // for the next pass instead of vanishing with this one.
        const error = asKnownError(thrown);
        const delayMs =
          error instanceof EnvironmentError ? environmentBackoffMs(this.environmentFailures + 1) : 0;
        await this.queue.enqueue(jobs, { delaySeconds: delaySecondsOf(delayMs) });
        throw error ?? thrown;
      }
      summary.deleted += result.deleted;
      for (const [index, outcome] of result.outcomes.entries()) {
        const job = jobs[index];
        if (job === undefined || outcome === undefined) continue;
        if (outcome.kind === "copied") summary.copied++;
        else if (outcome.kind === "already-copied") summary.alreadyCopied++;
        else if (outcome.kind === "quarantined") summary.quarantined++;
        else if (outcome.kind === "gone") summary.gone++;
        else if (outcome.kind === "retry-later") {
          summary.retryLater++;
          if (outcome.error.code === "TIMEOUT" || hardStop?.aborted === true) summary.timedOut = true;
        } else if (outcome.kind === "busy") summary.busy = outcome.reason;
        // The one rule (docs/pipeline.md, "Re-sending jobs"); a busy mailbox also ends this pass.
        const verdict = resendAfter(outcome);
        if (verdict.resend)
          await this.queue.enqueue([job], { delaySeconds: delaySecondsOf(verdict.delayMs) });
      }
      if (summary.busy !== undefined) return;
    }
  }
}

/** Counts a copy done inside the poll's own session (login-delay servers). */
function countInSession(summary: MailboxRunSummary, outcome: CopyOutcome): void {
  if (outcome.kind === "copied") summary.copied++;
  else if (outcome.kind === "already-copied") summary.alreadyCopied++;
  else if (outcome.kind === "quarantined") summary.quarantined++;
  else if (outcome.kind === "gone") summary.gone++;
  else if (outcome.kind === "retry-later") summary.retryLater++;
  else summary.busy = outcome.reason;
}

function uniqueByUidl(jobs: readonly CopyJob[]): CopyJob[] {
  return [...new Map(jobs.map((job) => [job.uidl, job])).values()];
}

/**
 * `thrown` as one of our errors: itself, or a raw file-system or SQLite error with an
 * environment code (a full disk under the ledger) as an `EnvironmentError`; else undefined.
 */
function asKnownError(thrown: unknown): Pop2GmailError | undefined {
  const environment = environmentErrorOf(thrown, "archive", "use the data directory");
  if (environment !== undefined) return environment;
  return thrown instanceof Pop2GmailError ? thrown : undefined;
}

function tryLedger(write: () => void): void {
  try {
    write();
  } catch (thrown) {
    if (asKnownError(thrown) === undefined) throw thrown;
  }
}

/** The stop signal of a run, and the hard stop that follows it after the grace period. */
interface StopSignals {
  readonly signal: AbortSignal | undefined;
  readonly hardStop: AbortSignal | undefined;
}

/**
 * Arms the hard stop: `stopGraceMs` after `signal` aborts, the POP3 session in use is dropped and
 * the message in hand given up (copyBatch's `abort`). Real time, as the operator waits in it.
 */
function stopSignals(options: RunOptions): StopSignals & { dispose(): void } {
  const { signal } = options;
  if (signal === undefined) return { signal, hardStop: undefined, dispose: () => {} };
  const hard = new AbortController();
  // Every mailbox's pass (and each of its sessions) listens to these at once.
  setMaxListeners(0, signal, hard.signal);
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    timer = setTimeout(() => hard.abort(), options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS);
    timer.unref();
  };
  if (signal.aborted) arm();
  else signal.addEventListener("abort", arm, { once: true });
  return {
    signal,
    hardStop: hard.signal,
    dispose: () => {
      signal.removeEventListener("abort", arm);
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}

/**
 * Takes the data directory's run lock, forgets leases of dead processes and removes the archive
 * temp files a killed process left behind (no writer can hold them while we hold the lock).
 */
async function start(runtime: LocalRuntime) {
  const lock = await acquireRunLock(runtime.config.local.dataDir);
  try {
    runtime.ledger.releaseAllLeases();
    await runtime.archive.removeOrphans();
    const workers = runtime.config.mailboxes.map((mailbox) => new MailboxWorker(runtime, mailbox));
    for (const worker of workers) await worker.recover();
    return { lock, workers };
  } catch (error) {
    await lock.release();
    // A read-only or full data directory at start-up is reported as what it is, with its hint.
    throw asKnownError(error) ?? error;
  }
}

/**
 * Drains every mailbox once: list, copy everything queued (waiting for scheduled retries up to
 * `local.maxRetryWaitSeconds`), delete what is due. `ok` only when every mailbox was reached and
 * nothing is left in flight.
 */
export async function runOnce(runtime: LocalRuntime, options: RunOptions = {}): Promise<RunSummary> {
  const startedAt = new Date(runtime.clock.now()).toISOString();
  const { lock, workers } = await start(runtime);
  const stop = stopSignals(options);
  const pool = poolOf(runtime);
  try {
    // Every mailbox at once, its POP3 sessions taking turns in the pool (one at a time each).
    const passes = await settleAll(
      workers.map((worker) =>
        options.signal?.aborted
          ? Promise.resolve(undefined)
          : worker.pass(runtime.config.local.maxRetryWaitSeconds * 1000, stop, pool),
      ),
    );
    const mailboxes = passes.filter((pass): pass is MailboxRunSummary => pass !== undefined);
    return summarize(runtime, startedAt, mailboxes, options.signal?.aborted === true);
  } finally {
    stop.dispose();
    await lock.release();
  }
}

/**
 * Polls every mailbox every `pollSeconds` until `signal` aborts (SIGINT/SIGTERM), finishing the
 * message in hand. `onPass` sees each mailbox pass (for the log line of the command).
 */
export async function runForever(
  runtime: LocalRuntime,
  options: RunOptions & { onPass?: (summary: MailboxRunSummary) => void },
): Promise<void> {
  const { lock, workers } = await start(runtime);
  const { clock } = runtime;
  const stop = stopSignals(options);
  const pool = poolOf(runtime);
  // Every mailbox polls on its own schedule; their POP3 sessions take turns in the pool.
  const loop = async (worker: MailboxWorker) => {
    let dueAt = clock.now();
    while (!options.signal?.aborted) {
      await sleepUnlessAborted(clock, Math.max(0, dueAt - clock.now()), options.signal);
      if (options.signal?.aborted) break;
      // Polls are pollSeconds apart from start to start, so a message waits at most one interval
      // plus its own copy. Scheduled retries are picked up by the next poll, not waited for.
      const startedAt = clock.now();
      // Not `onPass?.(await ...)`: an absent onPass would skip the pass itself.
      const summary = await worker.pass(0, stop, pool);
      options.onPass?.(summary);
      // A pass stopped by our own environment (full disk, ...) backs off further each time.
      dueAt =
        startedAt + Math.max(worker.mailbox.pollSeconds * 1000, worker.backoffMs(), worker.loginDelayMs);
    }
  };
  try {
    await settleAll(workers.map(loop));
  } finally {
    stop.dispose();
    await lock.release();
  }
}

/**
 * Waits for every promise; rethrows the first rejection only once all have settled, so no pass
 * still runs after the run lock is released.
 */
async function settleAll<T>(work: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(work);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed !== undefined) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

async function summarize(
  runtime: LocalRuntime,
  startedAt: string,
  mailboxes: MailboxRunSummary[],
  stopped: boolean,
): Promise<RunSummary> {
  const inFlight = mailboxes.reduce((sum, m) => sum + m.inFlight, 0);
  const reachedAll =
    mailboxes.length === runtime.config.mailboxes.length &&
    mailboxes.every((m) => m.busy === undefined && m.failure === undefined);
  const environmentError = mailboxes.find((m) => m.failure?.environmentErrno !== undefined)?.failure;
  return {
    tenant: runtime.config.tenant,
    startedAt,
    finishedAt: new Date(runtime.clock.now()).toISOString(),
    mailboxes,
    inFlight,
    ok: reachedAll && inFlight === 0 && !stopped,
    stopped,
    quarantined: mailboxes.reduce((sum, m) => sum + m.quarantined + m.gone, 0),
    ...(environmentError === undefined ? {} : { environmentError }),
    timedOut: mailboxes.some((m) => m.timedOut),
  };
}

/**
 * Waits `ms` unless the signal aborts first. On the system clock the timer itself is cancelled,
 * so a stopped process exits at once instead of keeping its event loop alive until the next poll.
 */
function sleepUnlessAborted(clock: Clock, ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  if (clock === systemClock)
    return delay(ms, undefined, signal === undefined ? {} : { signal }).catch(() => {});
  if (signal === undefined) return clock.sleep(ms);
  return new Promise((resolve) => {
    const done = () => {
      signal.removeEventListener("abort", done);
      resolve();
    };
    signal.addEventListener("abort", done);
    void clock.sleep(ms).then(done);
  });
}
