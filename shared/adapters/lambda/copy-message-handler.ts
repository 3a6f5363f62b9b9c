import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { copyBatch } from "../../core/copy-batch";
import type { CopyOutcome } from "../../core/copy-message";
import { ConfigError } from "../../core/errors";
import type { CopyJob } from "../../core/model";
import type { BusyReason } from "../../ports/telemetry";
import { parseCopyJob } from "../sqs/parse-copy-job";
import type { CopyMessageDeps } from "./copy-message-deps";
import { describe } from "./describe-error";

/** SQS's longest `DelaySeconds`. */
export const MAX_DELAY_SECONDS = 900;

/**
 * How long a busy mailbox is left alone. No lease: our own session (a copier or the lister) is
 * working on it and will be done within a batch. `IN-USE`: another client holds the maildrop.
 * `LOGIN-DELAY`: the server itself asked for a pause (RFC 2449 §8), usually minutes.
 */
export const BUSY_DELAY_SECONDS: Readonly<Record<BusyReason, number>> = {
  "no-lease": 30,
  "IN-USE": 60,
  "LOGIN-DELAY": 300,
};

/** Seconds to postpone a job the core asked to retry after `retryAfterMs`, within SQS's bounds. */
export function retryDelaySeconds(retryAfterMs: number): number {
  return Math.min(MAX_DELAY_SECONDS, Math.max(0, Math.ceil(retryAfterMs / 1000)));
}

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
 * - a throw (mailbox-level: credentials, TLS, configuration; or a crash): every record of that
 *   mailbox is a batch item failure; SQS redelivers after the visibility timeout, then the DLQ.
 * - a body that is not a copy job: a failure with an error log; it ends in the DLQ.
 * A new `BatchProcessor` per invocation: it holds the records of one batch.
 */
export function makeCopyMessageHandler(
  deps: CopyMessageDeps,
): (event: SQSEvent, context: Context) => Promise<SQSBatchResponse> {
  return async (event, context) => {
    deps.logger.addContext(context);
    const pipeline = { ...deps.pipeline, holderId: context.awsRequestId };
    const malformed = new Map<string, unknown>();
    const groups = new Map<string, Group>();
    const groupOf = new Map<string, Group>();
    for (const record of event.Records ?? []) {
      try {
        const job = parseCopyJob(record.body);
        const group = groups.get(job.mailboxId) ?? { mailboxId: job.mailboxId, items: [] };
        group.items.push({ record, job });
        groups.set(job.mailboxId, group);
        groupOf.set(record.messageId, group);
      } catch (error) {
        malformed.set(record.messageId, error);
      }
    }
    const runs = new Map<string, Promise<Map<string, RecordVerdict>>>();
    const runGroup = async (group: Group): Promise<Map<string, RecordVerdict>> => {
      try {
        return await copyGroup(deps, pipeline, group);
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
    try {
      return await processPartialResponse(event, recordHandler, new BatchProcessor(EventType.SQS), {
        context,
        // A batch in which every record failed is reported as such, not thrown: same effect
        // for SQS, and the invocation's own logs stay the place that says why.
        throwOnFullBatchFailure: false,
      });
    } finally {
      deps.telemetry.flush();
    }
  };
}

async function copyGroup(
  deps: CopyMessageDeps,
  pipeline: CopyMessageDeps["pipeline"] & { holderId: string },
  group: Group,
): Promise<Map<string, RecordVerdict>> {
  const tenant = deps.config.tenant;
  const foreign = group.items.find((i) => i.job.tenant !== tenant);
  if (foreign !== undefined) {
    throw new ConfigError("tenant", `copy job for tenant ${foreign.job.tenant} reached tenant ${tenant}`);
  }
  const mailbox = deps.mailbox(group.mailboxId);
  const jobs = group.items.map((i) => i.job);
  const result = await copyBatch(pipeline, tenant, mailbox, jobs);
  const verdicts = new Map<string, RecordVerdict>();
  const later = new Map<number, { messageIds: string[]; jobs: CopyJob[] }>();
  const tally: Record<CopyOutcome["kind"], number> = {
    copied: 0,
    "already-copied": 0,
    gone: 0,
    quarantined: 0,
    busy: 0,
    "retry-later": 0,
  };
  group.items.forEach((item, index) => {
    const outcome = result.outcomes[index];
    if (outcome === undefined) throw new Error(`copyBatch returned no outcome for job ${index}`);
    tally[outcome.kind]++;
    const delay = delayFor(outcome);
    if (delay === undefined) {
      verdicts.set(item.record.messageId, { ok: true });
      return;
    }
    const bucket = later.get(delay) ?? { messageIds: [], jobs: [] };
    bucket.messageIds.push(item.record.messageId);
    bucket.jobs.push(item.job);
    later.set(delay, bucket);
  });
  for (const [delaySeconds, bucket] of later) {
    try {
      await pipeline.queue.enqueue(bucket.jobs, { delaySeconds });
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

/** Seconds to postpone the job, or undefined when the record is done. */
function delayFor(outcome: CopyOutcome): number | undefined {
  switch (outcome.kind) {
    case "copied":
    case "already-copied":
    case "gone":
    case "quarantined":
      return undefined;
    case "busy":
      return BUSY_DELAY_SECONDS[outcome.reason];
    case "retry-later":
      return retryDelaySeconds(outcome.retryAfterMs);
  }
}
