import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { copyBatch } from "../../core/copy-batch";
import { DEFAULT_COPY_POLICY } from "../../core/copy-message";
import { ConfigError } from "../../core/errors";
import type { CopyJob } from "../../core/model";
import { delaySecondsOf, resendAfter, tallyOutcomes } from "../../core/retry-rule";
import { notBeforeOf, parseCopyJob } from "../sqs/parse-copy-job";
import type { CopyMessageDeps } from "./copy-message-deps";
import { describe } from "./describe-error";
import { invocationScope } from "./lambda-base";

/**
 * Time limits of one invocation, measured with `context.getRemainingTimeInMillis()`
 * (docs/pipeline.md, "Time limits of a copy invocation").
 */
export interface CopyTimeLimits {
  /** No job is started with less time left than this; unstarted jobs are re-sent at once. */
  readonly reserveMs: number;
  /** With this little time left the POP3 session is dropped and the job in hand given up. */
  readonly hardStopMs: number;
  /** The session lease outlives the invocation's own deadline by this much. */
  readonly leaseMarginMs: number;
}

/**
 * Defaults for the 5-minute copy-message timeout: a job starts only with a minute left (one
 * message, bounded by the Gmail request timeout, fits in it), the session goes 10 s before the
 * end, and the lease ends 10 s after it, so a killed invocation blocks the mailbox that long.
 */
export const DEFAULT_COPY_TIME_LIMITS: CopyTimeLimits = {
  reserveMs: 60_000,
  hardStopMs: 10_000,
  leaseMarginMs: 10_000,
};

type RecordVerdict = { readonly ok: true } | { readonly ok: false; readonly error: unknown };

interface Group {
  readonly mailboxId: string;
  readonly items: { readonly record: SQSRecord; readonly job: CopyJob }[];
}

/**
 * The copy-message function (SQS, batches of up to 10, `ReportBatchItemFailures`). Records are
 * grouped by mailbox and each group is one `copyBatch`: one POP3 session, its copies, its DELEs
 * and one QUIT. Outcomes map to SQS as follows:
 * - copied, already-copied, gone, quarantined: done; the record is deleted.
 * - busy and retry-later (e.g. Gmail 429): the job is sent again with `DelaySeconds` and the
 *   record reported done. A re-sent job is a new SQS message, so waiting for a busy mailbox or a
 *   Gmail quota never counts receives towards the DLQ; the core's `attempts` (not SQS) bounds
 *   message-level retries and quarantines a poison message.
 * - a throw (mailbox-level: credentials, TLS, configuration; our environment: a disabled KMS
 *   key; or a crash): every record of that mailbox is a batch item failure; SQS redelivers it,
 *   then the DLQ (the lister re-sends stuck jobs after 30 min). No attempt is spent on a
 *   mailbox-level or environment fault (docs/pipeline.md, "Environment faults"). On the FIFO
 *   queue a failed record comes back after a short backoff (`failedRecordBackoffSeconds`: 30 s
 *   doubling with its receive count), not after the visibility timeout, because it holds its
 *   mailbox's group meanwhile; on a standard queue after the visibility timeout.
 * - a body that is not a copy job: a failure with an error log; it ends in the DLQ.
 * - on the FIFO work queue (one message group per mailbox, docs/lambda-handlers.md "One mailbox,
 *   one copier"), a job delivered more than 1 s before its `notBefore` is not run: the queue's
 *   `holdBack` makes it visible again when due and the record is reported failed, so its
 *   mailbox's group waits. Re-sends are marked `resend`, which FIFO never deduplicates.
 * The rule for "re-send, after how long" is the core's `resendAfter`. The invocation watches its
 * remaining time (`limits`): it starts no job with less than `reserveMs` left and hands those back
 * (re-sent at once, record done), drops the session `hardStopMs` before the end, and holds the
 * mailbox's lease only until its own deadline plus `leaseMarginMs`.
 * A new `BatchProcessor` per invocation: it holds the records of one batch.
 */
export function makeCopyMessageHandler(
  deps: CopyMessageDeps,
  limits: CopyTimeLimits = DEFAULT_COPY_TIME_LIMITS,
): (event: SQSEvent, context: Context) => Promise<SQSBatchResponse> {
  return async (event, context) => {
    deps.logger.addContext(context);
    const pipeline = { ...deps.pipeline, ...invocationScope(context, limits.leaseMarginMs) };
    const deadline = new AbortController();
    const time: InvocationTime = {
      shouldStop: () => context.getRemainingTimeInMillis() < limits.reserveMs,
      abort: deadline.signal,
    };
    const malformed = new Map<string, unknown>();
    const groups = new Map<string, Group>();
    const groupOf = new Map<string, Group>();
    const early: { record: SQSRecord; dueInMs: number }[] = [];
    const now = deps.pipeline.clock.now();
    for (const record of event.Records ?? []) {
      try {
        const job = parseCopyJob(record.body);
        const dueInMs = (notBeforeOf(record.body) ?? now) - now;
        // Early by less than a second is due: the clocks of two containers differ that much.
        if (deps.pipeline.queue.holdBack !== undefined && dueInMs >= EARLY_TOLERANCE_MS) {
          early.push({ record, dueInMs });
          continue;
        }
        const group = groups.get(job.mailboxId) ?? { mailboxId: job.mailboxId, items: [] };
        group.items.push({ record, job });
        groups.set(job.mailboxId, group);
        groupOf.set(record.messageId, group);
      } catch (error) {
        malformed.set(record.messageId, error);
      }
    }
    const held = holdBackEarly(deps, early);
    const runs = new Map<string, Promise<Map<string, RecordVerdict>>>();
    const runGroup = async (group: Group): Promise<Map<string, RecordVerdict>> => {
      try {
        return await copyGroup(deps, pipeline, group, time);
      } catch (error) {
        deps.logger.error("copy batch failed: its jobs return to the queue", {
          mailboxId: group.mailboxId,
          jobs: group.items.length,
          uidls: group.items.map((i) => i.job.uidl),
          error: describe(error),
        });
        return new Map(group.items.map((i) => [i.record.messageId, { ok: false, error }]));
      }
    };
    const recordHandler = async (record: SQSRecord): Promise<void> => {
      const invalid = malformed.get(record.messageId);
      if (invalid !== undefined) {
        deps.logger.error("work queue message is not a copy job; it will end in the dead-letter queue", {
          messageId: record.messageId,
          error: describe(invalid),
        });
        throw invalid;
      }
      const hold = held.get(record.messageId);
      if (hold !== undefined) {
        // Not done: SQS brings the job again when it is due (or, if the hand-back failed, after
        // the visibility timeout). Its mailbox's FIFO group waits meanwhile.
        throw await hold;
      }
      const group = groupOf.get(record.messageId);
      if (group === undefined) throw new Error(`record ${record.messageId} belongs to no group`);
      let run = runs.get(group.mailboxId);
      if (run === undefined) {
        run = runGroup(group);
        runs.set(group.mailboxId, run);
      }
      const verdict = (await run).get(record.messageId);
      if (verdict !== undefined && !verdict.ok) throw verdict.error;
    };
    const timer = setTimeout(
      () => deadline.abort(),
      Math.max(0, context.getRemainingTimeInMillis() - limits.hardStopMs),
    );
    try {
      const response = await processPartialResponse(event, recordHandler, new BatchProcessor(EventType.SQS), {
        context,
        // A batch in which every record failed is reported as such, not thrown: same effect
        // for SQS, and the invocation's own logs stay the place that says why.
        throwOnFullBatchFailure: false,
      });
      await backOffFailed(deps, event.Records ?? [], response, held);
      return response;
    } finally {
      clearTimeout(timer);
      deps.telemetry.flush();
    }
  };
}

/** A job due sooner than this is run now (containers' clocks differ by about that much). */
const EARLY_TOLERANCE_MS = 1_000;

/**
 * Hands the early deliveries back to the FIFO queue until they are due, grouped by delay (one
 * ChangeMessageVisibilityBatch per 10). Resolves, per message id, to the error that marks the
 * record not done.
 */
function holdBackEarly(
  deps: CopyMessageDeps,
  early: readonly { record: SQSRecord; dueInMs: number }[],
): Map<string, Promise<Error>> {
  const held = new Map<string, Promise<Error>>();
  const holdBack = deps.pipeline.queue.holdBack;
  if (holdBack === undefined || early.length === 0) return held;
  const byDelay = new Map<number, SQSRecord[]>();
  for (const { record, dueInMs } of early) {
    const seconds = Math.ceil(dueInMs / 1000);
    byDelay.set(seconds, [...(byDelay.get(seconds) ?? []), record]);
  }
  for (const [delaySeconds, records] of byDelay) {
    const outcome = holdBack
      .call(
        deps.pipeline.queue,
        records.map((r) => r.receiptHandle),
        delaySeconds,
      )
      .then(
        () => new Error(`held back for ${delaySeconds} s: not due yet`),
        (error: unknown) => {
          deps.logger.warn(
            "could not hold back early jobs; SQS brings them again after the visibility timeout",
            {
              jobs: records.length,
              error: describe(error),
            },
          );
          return error instanceof Error ? error : new Error(String(error));
        },
      );
    for (const record of records) held.set(record.messageId, outcome);
  }
  return held;
}

/**
 * How soon a failed record comes back on the FIFO work queue: `baseSeconds` after its first
 * receive, doubling with each receive, at most `maxSeconds` (docs/pipeline.md, "One mailbox, one
 * copier on AWS", failed records). With `maxReceiveCount` 5 a record that keeps failing reaches the
 * dead-letter queue after 30 + 60 + 120 + 240 s of failures instead of 4 x 30 minutes.
 */
export const FAILED_RECORD_BACKOFF = { baseSeconds: 30, maxSeconds: 900 } as const;

/** The backoff of a record SQS has delivered `receiveCount` times (its `ApproximateReceiveCount`). */
export function failedRecordBackoffSeconds(receiveCount: number): number {
  const receives = Number.isInteger(receiveCount) && receiveCount > 1 ? receiveCount : 1;
  return Math.min(
    FAILED_RECORD_BACKOFF.baseSeconds * 2 ** Math.min(receives - 1, 30),
    FAILED_RECORD_BACKOFF.maxSeconds,
  );
}

/**
 * On the FIFO work queue a failed record heads its mailbox's group until it is visible again, so
 * it would hold the whole mailbox for the queue's visibility timeout (30 min). The records this
 * invocation reports failed (a thrown copy batch, a re-send that failed, a body that is no job)
 * come back after `failedRecordBackoffSeconds` instead, by the same ChangeMessageVisibility as
 * `holdBack`; their receive count still grows, so a record that keeps failing still reaches the
 * dead-letter queue. Records held back for their `notBefore` already have their time (or, if that
 * hand-back failed, keep the visibility timeout). Best effort: if the call fails, SQS brings the
 * records back after the visibility timeout, as before.
 */
async function backOffFailed(
  deps: CopyMessageDeps,
  records: readonly SQSRecord[],
  response: SQSBatchResponse,
  held: ReadonlyMap<string, unknown>,
): Promise<void> {
  const holdBack = deps.pipeline.queue.holdBack;
  if (holdBack === undefined || response.batchItemFailures.length === 0) return;
  const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
  const byDelay = new Map<number, SQSRecord[]>();
  for (const record of records) {
    if (!failed.has(record.messageId) || held.has(record.messageId)) continue;
    const seconds = failedRecordBackoffSeconds(Number(record.attributes.ApproximateReceiveCount));
    byDelay.set(seconds, [...(byDelay.get(seconds) ?? []), record]);
  }
  await Promise.all(
    [...byDelay].map(async ([delaySeconds, backedOff]) => {
      try {
        await holdBack.call(
          deps.pipeline.queue,
          backedOff.map((r) => r.receiptHandle),
          delaySeconds,
        );
        deps.logger.info("failed jobs come back after a backoff", { jobs: backedOff.length, delaySeconds });
      } catch (error) {
        deps.logger.warn(
          "could not back off failed jobs; SQS brings them again after the visibility timeout",
          { jobs: backedOff.length, error: describe(error) },
        );
      }
    }),
  );
}

/** The invocation's clock as the copy batch sees it. */
interface InvocationTime {
  readonly shouldStop: () => boolean;
  readonly abort: AbortSignal;
}

async function copyGroup(
  deps: CopyMessageDeps,
  pipeline: CopyMessageDeps["pipeline"] & ReturnType<typeof invocationScope>,
  group: Group,
  time: InvocationTime,
): Promise<Map<string, RecordVerdict>> {
  const tenant = deps.config.tenant;
  const foreign = group.items.find((i) => i.job.tenant !== tenant);
  if (foreign !== undefined) {
    throw new ConfigError("tenant", `copy job for tenant ${foreign.job.tenant} reached tenant ${tenant}`);
  }
  const mailbox = deps.mailbox(group.mailboxId);
  const jobs = group.items.map((i) => i.job);
  const result = await copyBatch(pipeline, tenant, mailbox, jobs, DEFAULT_COPY_POLICY, time.shouldStop, {
    abort: time.abort,
  });
  const verdicts = new Map<string, RecordVerdict>();
  const later = new Map<number, { messageIds: string[]; jobs: CopyJob[] }>();
  const tally = tallyOutcomes(result.outcomes);
  group.items.forEach((item, index) => {
    const outcome = result.outcomes[index];
    if (outcome === undefined) throw new Error(`copyBatch returned no outcome for job ${index}`);
    const verdict = resendAfter(outcome);
    if (!verdict.resend) {
      verdicts.set(item.record.messageId, { ok: true });
      return;
    }
    const delay = delaySecondsOf(verdict.delayMs);
    const bucket = later.get(delay) ?? { messageIds: [], jobs: [] };
    bucket.messageIds.push(item.record.messageId);
    bucket.jobs.push(item.job);
    later.set(delay, bucket);
  });
  for (const [delaySeconds, bucket] of later) {
    try {
      // A re-send, never deduplicated against the delivery it replaces (FIFO).
      await pipeline.queue.enqueue(bucket.jobs, { delaySeconds, resend: true });
      for (const id of bucket.messageIds) verdicts.set(id, { ok: true });
    } catch (error) {
      // Not re-sent: let SQS redeliver the originals instead (counted, but nothing is lost).
      deps.logger.warn("could not re-send postponed jobs; SQS will redeliver them", {
        mailboxId: group.mailboxId,
        jobs: bucket.jobs.length,
        error: describe(error),
      });
      for (const id of bucket.messageIds) verdicts.set(id, { ok: false, error });
    }
  }
  deps.logger.info("copy batch done", {
    mailboxId: group.mailboxId,
    ...tally,
    deleted: result.deleted,
    committed: result.committed,
    postponed: [...later].map(([delaySeconds, b]) => ({ delaySeconds, jobs: b.jobs.length })),
  });
  return verdicts;
}
