import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import type { SQSEvent } from "aws-lambda";
import { vi } from "vitest";
import type { DeleteCopiedEvent, DeleteInvoker } from "../../shared/adapters/lambda/delete-invoker";
import { createLambdaDeps, type LambdaDeps } from "../../shared/adapters/lambda/lambda-deps";
import { MemoryWorkQueue } from "../../shared/adapters/local/memory-work-queue";
import { serializeCopyJob } from "../../shared/adapters/sqs/parse-copy-job";
import { ENV_NAMES } from "../../shared/config/env";
import { METRIC_NAMESPACE, METRIC_SERVICE_NAME } from "../../shared/config/metrics";
import type { MailboxConfig } from "../../shared/config/tenant-config";
import type { CopyJob } from "../../shared/core/model";
import type { Pop3Source } from "../../shared/ports/pop3-source";
import type { EnqueueOptions, WorkQueue } from "../../shared/ports/work-queue";
import { InMemoryArchiveStore } from "../fakes/in-memory-archive-store";
import { TestClock } from "../fakes/in-memory-clock";
import { InMemoryLedger } from "../fakes/in-memory-ledger";
import { FakeMailSink } from "../fakes/in-memory-mail-sink";
import { InMemoryPop3Source } from "../fakes/in-memory-pop3-source";
import { InMemorySessionLeases } from "../fakes/in-memory-session-leases";

/**
 * The handlers built by the real `createLambdaDeps` from a Lambda-like environment, with the
 * ports swapped for the in-memory ones through its `decorate` seam: what the handlers themselves
 * do (parse, group, map outcomes, re-send, log, emit EMF) is tested here without servers; the
 * pipeline-* suites run the same handlers against the real stand-ins.
 *
 * Powertools prints through the global console in dev mode (`POWERTOOLS_DEV`), so the tests
 * capture log lines and EMF documents with spies on `console`.
 */
export const TENANT = "acme";
export const MAILBOX_A = "info@acme.it";
export const MAILBOX_B = "sales@acme.it";

export function tenantEnv(
  mailboxes: Record<string, unknown>[] = [mailboxJson(MAILBOX_A), mailboxJson(MAILBOX_B)],
) {
  return {
    [ENV_NAMES.tenantConfig]: JSON.stringify({ tenant: TENANT, mailboxes }),
    [ENV_NAMES.ledgerTable]: "ledger",
    [ENV_NAMES.archiveBucket]: "archive",
    [ENV_NAMES.archiveKmsKeyId]: "arn:aws:kms:eu-south-1:000000000000:key/test",
    [ENV_NAMES.workQueueUrl]: "https://sqs.eu-south-1.amazonaws.com/000000000000/work",
    [ENV_NAMES.deleteFunctionName]: "delete-copied",
    AWS_REGION: "eu-south-1",
  };
}

export function mailboxJson(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    pop3: { host: "pop.example.net", user: id, passwordSecret: `pop3/${id}` },
    gmail: { user: "owner.acme@gmail.com", credentialsSecret: "google/acme" },
    ...extra,
  };
}

/** A queue that remembers every enqueue call (jobs and options) and delivers to a MemoryWorkQueue. */
export class RecordingQueue implements WorkQueue {
  readonly calls: { jobs: CopyJob[]; delaySeconds: number | undefined }[] = [];
  /** `resend` of each call, in order. */
  readonly resends: boolean[] = [];
  /** `holdBack` calls (a FIFO queue's, see `fifo()`). */
  readonly holds: { receipts: string[]; delaySeconds: number }[] = [];
  failNext: Error | undefined;
  holdBack?: (receipts: readonly string[], delaySeconds: number) => Promise<void>;
  constructor(readonly inner: MemoryWorkQueue) {}
  async enqueue(jobs: readonly CopyJob[], options: EnqueueOptions = {}): Promise<void> {
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure !== undefined) throw failure;
    this.calls.push({ jobs: [...jobs], delaySeconds: options.delaySeconds });
    this.resends.push(options.resend === true);
    await this.inner.enqueue(jobs, options);
  }
  /** Behaves like a FIFO queue: delayed jobs are handed back with `holdBack`. */
  fifo(): this {
    this.holdBack = async (receipts, delaySeconds) => {
      this.holds.push({ receipts: [...receipts], delaySeconds });
    };
    return this;
  }
}

/** One in-memory maildrop per mailbox id, counting sessions. */
export class MailboxRouter implements Pop3Source {
  readonly sources = new Map<string, InMemoryPop3Source>();
  readonly opens: string[] = [];
  source(mailboxId: string): InMemoryPop3Source {
    let source = this.sources.get(mailboxId);
    if (source === undefined) {
      source = new InMemoryPop3Source();
      this.sources.set(mailboxId, source);
    }
    return source;
  }
  open(mailbox: MailboxConfig) {
    this.opens.push(mailbox.id);
    return this.source(mailbox.id).open(mailbox);
  }
}

/** Powertools in dev mode, with metrics on, writing through spied console methods. */
export function capturePowertools() {
  vi.stubEnv("POWERTOOLS_DEV", "true");
  vi.stubEnv("POWERTOOLS_METRICS_DISABLED", "false");
  const lines: string[] = [];
  const keep = (...args: unknown[]) => {
    lines.push(args.map(String).join(" "));
  };
  for (const method of ["log", "info", "warn", "error", "debug"] as const) {
    vi.spyOn(console, method).mockImplementation(keep);
  }
  const logger = new Logger({
    serviceName: METRIC_SERVICE_NAME,
    logLevel: "DEBUG",
    persistentKeys: { tenant: TENANT },
  });
  const metrics = new Metrics({
    namespace: METRIC_NAMESPACE,
    serviceName: METRIC_SERVICE_NAME,
  });
  const parsed = () =>
    lines.flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  return {
    lines,
    logger,
    metrics,
    /** EMF documents printed so far. */
    emf: () => parsed().filter((d) => d._aws !== undefined) as Emf[],
    /** JSON log lines printed so far. */
    logs: () => parsed().filter((d) => d._aws === undefined),
  };
}

export interface Emf {
  readonly _aws: {
    CloudWatchMetrics: {
      Namespace: string;
      Dimensions: string[][];
      Metrics: { Name: string; Unit: string }[];
    }[];
  };
  readonly [key: string]: unknown;
}

/** Every in-memory port plus the deps built from the env, ready for the make...Handler functions. */
export class HandlerFixture {
  readonly clock = new TestClock();
  readonly ledger = new InMemoryLedger();
  readonly archive = new InMemoryArchiveStore(this.clock, 700);
  readonly sink = new FakeMailSink();
  readonly queue = new RecordingQueue(new MemoryWorkQueue(this.clock));
  readonly pop3 = new MailboxRouter();
  readonly leases = new InMemorySessionLeases(this.clock);
  readonly deletes: DeleteCopiedEvent[] = [];
  readonly deps: LambdaDeps;
  readonly powertools = capturePowertools();

  constructor(env: Record<string, string> = tenantEnv(), invoker?: DeleteInvoker) {
    this.deps = createLambdaDeps(env, {
      aws: { credentials: { accessKeyId: "test", secretAccessKey: "test" } },
      clock: this.clock,
      logger: this.powertools.logger,
      metrics: this.powertools.metrics,
      deleteInvoker: invoker ?? {
        invoke: async (event) => {
          this.deletes.push(event);
        },
      },
      decorate: (built) => ({
        ...built,
        ledger: this.ledger,
        archive: this.archive,
        sink: this.sink,
        queue: this.queue,
        pop3: this.pop3,
        leases: this.leases,
      }),
    });
  }

  job(mailboxId: string, uidl: string, listedSize = 400): CopyJob {
    return { tenant: TENANT, mailboxId, uidl, listedSize, listedAt: this.clock.now() };
  }

  /** Lists the message in the ledger as the lister would, and returns its job. */
  async listed(mailboxId: string, uidl: string): Promise<CopyJob> {
    const job = this.job(mailboxId, uidl);
    await this.ledger.createListed([job]);
    return job;
  }
}

/** An SQS event with one record per body (a job, or any string for a malformed one). */
export function sqsEventOf(bodies: readonly (CopyJob | string)[]): SQSEvent {
  return {
    Records: bodies.map((body, index) => ({
      messageId: `m-${index + 1}`,
      receiptHandle: `r-${index + 1}`,
      body: typeof body === "string" ? body : serializeCopyJob(body),
      attributes: {
        ApproximateReceiveCount: "1",
        SentTimestamp: "0",
        SenderId: "000000000000",
        ApproximateFirstReceiveTimestamp: "0",
      },
      messageAttributes: {},
      md5OfBody: "",
      eventSource: "aws:sqs",
      eventSourceARN: "arn:aws:sqs:eu-south-1:000000000000:work",
      awsRegion: "eu-south-1",
    })),
  };
}
