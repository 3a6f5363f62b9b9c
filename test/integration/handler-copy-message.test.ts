import type { Context } from "aws-lambda";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  failedRecordBackoffSeconds,
  makeCopyMessageHandler,
} from "../../shared/adapters/lambda/copy-message-handler";
import { serializeCopyJob } from "../../shared/adapters/sqs/parse-copy-job";
import { CredentialsError, RateLimitedError, TransientError } from "../../shared/core/errors";
import { BUSY_RESEND_MS, delaySecondsOf } from "../../shared/core/retry-rule";
import { lambdaContext } from "../fakes/sqs-lambda-events";
import { makeMessage } from "../unit/core/support/harness";
import { HandlerFixture, MAILBOX_A, MAILBOX_B, sqsEventOf } from "./handler-harness";

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

describe("copy-message handler", () => {
  it("copies each mailbox's records in one POP3 session and fails only a malformed body, with a clear log", async () => {
    // Prepare
    const f = new HandlerFixture();
    const a = [f.pop3.source(MAILBOX_A).add(makeMessage()), f.pop3.source(MAILBOX_A).add(makeMessage())];
    const b = [f.pop3.source(MAILBOX_B).add(makeMessage())];
    const jobs = [
      await f.listed(MAILBOX_A, a[0] as string),
      await f.listed(MAILBOX_B, b[0] as string),
      await f.listed(MAILBOX_A, a[1] as string),
    ];
    const event = sqsEventOf([jobs[0]!, "{not json", jobs[1]!, jobs[2]!]);

    // Act
    const response = await makeCopyMessageHandler(f.deps)(event, lambdaContext("copy-message"));

    // Assess
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: "m-2" }]);
    expect(f.pop3.opens.sort()).toEqual([MAILBOX_A, MAILBOX_B]);
    expect(f.sink.imported.map((m) => m.uidl).sort()).toEqual([...a, ...b].sort());
    expect(f.pop3.source(MAILBOX_A).uidls()).toEqual([]);
    expect(f.pop3.source(MAILBOX_B).uidls()).toEqual([]);
    const malformed = f.powertools.logs().find((l) => l.messageId === "m-2");
    expect(malformed).toMatchObject({
      level: "ERROR",
      message: expect.stringContaining("dead-letter queue"),
    });
    expect(JSON.stringify(malformed)).not.toContain("{not json");
  });

  it("re-sends the jobs of a busy mailbox with the delay for its reason and reports every record done", async () => {
    // Prepare
    const f = new HandlerFixture();
    const job = await f.listed(MAILBOX_A, f.pop3.source(MAILBOX_A).add(makeMessage()));
    await f.leases.acquire({ tenant: "acme", mailboxId: MAILBOX_A }, 1, "another-copier", 60_000);

    // Act
    const response = await makeCopyMessageHandler(f.deps)(sqsEventOf([job]), lambdaContext("copy-message"));

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(f.queue.calls).toEqual([{ jobs: [job], delaySeconds: BUSY_RESEND_MS["no-lease"] / 1000 }]);
    expect(f.sink.importCalls).toBe(0);
    expect(emitted(f, "MailboxBusy")).toBe(1);
  });

  it("re-sends a rate-limited job after Gmail's Retry-After without failing the record", async () => {
    // Prepare
    const f = new HandlerFixture();
    const job = await f.listed(MAILBOX_A, f.pop3.source(MAILBOX_A).add(makeMessage()));
    f.sink.failNextImport(new RateLimitedError("google", 2_500, "429 rateLimitExceeded"));

    // Act
    const response = await makeCopyMessageHandler(f.deps)(sqsEventOf([job]), lambdaContext("copy-message"));

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(f.queue.calls).toEqual([{ jobs: [job], delaySeconds: 3 }]);
    expect(emitted(f, "GmailRateLimited")).toBe(1);
    expect((await f.ledger.get(job))?.attempts).toBe(0);
  });

  it("fails the records of a mailbox whose credentials are rejected, and only those", async () => {
    // Prepare
    const f = new HandlerFixture();
    const good = await f.listed(MAILBOX_A, f.pop3.source(MAILBOX_A).add(makeMessage()));
    const broken = await f.listed(MAILBOX_B, f.pop3.source(MAILBOX_B).add(makeMessage()));
    f.pop3.source(MAILBOX_B).failNextOpen(new CredentialsError("pop3", "-ERR [AUTH] Authentication failed"));

    // Act
    const response = await makeCopyMessageHandler(f.deps)(
      sqsEventOf([good, broken]),
      lambdaContext("copy-message"),
    );

    // Assess
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: "m-2" }]);
    expect(f.sink.imported.map((m) => m.uidl)).toEqual([good.uidl]);
    const credentials = f.powertools.emf().filter((d) => d.CredentialsBroken !== undefined);
    expect(credentials).toHaveLength(1);
    expect(credentials[0]).toMatchObject({ RemoteService: "pop3", Tenant: "acme", service: "pop2gmail" });
  });

  it("fails the records it could not re-send, so SQS redelivers them instead of losing them", async () => {
    // Prepare
    const f = new HandlerFixture();
    const job = await f.listed(MAILBOX_A, f.pop3.source(MAILBOX_A).add(makeMessage()));
    f.sink.failNextImport(new RateLimitedError("google", 1_000, "429"));
    f.queue.failNext = new TransientError("queue", "SQS unavailable");

    // Act
    const response = await makeCopyMessageHandler(f.deps)(sqsEventOf([job]), lambdaContext("copy-message"));

    // Assess
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: "m-1" }]);
  });

  it("keeps delays within SQS's 0-900 s", () => {
    // Act
    const delays = [0, 1, 999, 1_001, 899_000, 10_000_000].map(delaySecondsOf);

    // Assess
    expect(delays).toEqual([0, 1, 1, 2, 899, 900]);
  });

  it("starts no job when its remaining time runs short and hands the unstarted ones back at once", async () => {
    // Prepare
    const f = new HandlerFixture();
    const source = f.pop3.source(MAILBOX_A);
    const jobs = [];
    for (let i = 0; i < 3; i++) jobs.push(await f.listed(MAILBOX_A, source.add(makeMessage())));
    // Plenty of time until the first import, then less than the reserve.
    const context = contextWithRemaining(() => (f.sink.importCalls === 0 ? 200_000 : 30_000));

    // Act
    const response = await makeCopyMessageHandler(f.deps)(sqsEventOf(jobs), context);

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(f.sink.imported.map((m) => m.uidl)).toEqual([jobs[0]?.uidl]);
    expect(f.queue.calls).toEqual([{ jobs: [jobs[1], jobs[2]], delaySeconds: 0 }]);
    expect(source.uidls()).toEqual([jobs[1]?.uidl, jobs[2]?.uidl]);
    expect((await f.ledger.get(jobs[1]!))?.attempts).toBe(0);
    expect(f.leases.heldCount({ tenant: "acme", mailboxId: MAILBOX_A })).toBe(0);
  });

  it("holds the mailbox's session lease until its own deadline plus a margin, not 16 minutes", async () => {
    // Prepare
    const f = new HandlerFixture();
    const job = await f.listed(MAILBOX_A, f.pop3.source(MAILBOX_A).add(makeMessage()));
    const acquire = vi.spyOn(f.leases, "acquire");

    // Act
    await makeCopyMessageHandler(f.deps)(
      sqsEventOf([job]),
      contextWithRemaining(() => 120_000),
    );

    // Assess
    expect(acquire).toHaveBeenCalledTimes(1);
    expect(acquire.mock.calls[0]?.[3]).toBe(130_000);
  });

  it("drops the session at its hard deadline, gives up the import in hand and re-sends every job", async () => {
    // Prepare
    const f = new HandlerFixture();
    const source = f.pop3.source(MAILBOX_A);
    const jobs = [
      await f.listed(MAILBOX_A, source.add(makeMessage())),
      await f.listed(MAILBOX_A, source.add(makeMessage())),
    ];
    const held = f.sink.holdNextImport();
    // The hard stop is due at once: the held import is still running when it comes.
    const limits = { reserveMs: 0, hardStopMs: 60_000, leaseMarginMs: 10_000 };

    // Act
    const response = await makeCopyMessageHandler(f.deps, limits)(
      sqsEventOf(jobs),
      contextWithRemaining(() => 60_000),
    );
    held.release();

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(f.queue.calls).toEqual([{ jobs, delaySeconds: 0 }]);
    expect(source.uidls()).toEqual(jobs.map((j) => j.uidl));
    expect(source.commits).toEqual([]);
    expect(f.leases.heldCount({ tenant: "acme", mailboxId: MAILBOX_A })).toBe(0);
  });
});

describe("copy-message handler on the FIFO work queue (docs/lambda-handlers.md, one mailbox one copier)", () => {
  it("holds back a job delivered before it is due, without opening the mailbox or failing other records", async () => {
    // Prepare
    const f = new HandlerFixture();
    f.queue.fifo();
    const due = await f.listed(MAILBOX_A, f.pop3.source(MAILBOX_A).add(makeMessage()));
    const early = await f.listed(MAILBOX_B, f.pop3.source(MAILBOX_B).add(makeMessage()));
    const event = sqsEventOf([due, early]);
    const record = event.Records[1]!;
    event.Records[1] = { ...record, body: serializeCopyJob(early, f.clock.now() + 19_200) };

    // Act
    const response = await makeCopyMessageHandler(f.deps)(event, lambdaContext("copy-message"));

    // Assess
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: "m-2" }]);
    expect(f.queue.holds).toEqual([{ receipts: ["r-2"], delaySeconds: 20 }]);
    expect(f.pop3.opens).toEqual([MAILBOX_A]);
    expect(f.sink.imported.map((m) => m.uidl)).toEqual([due.uidl]);
    expect(f.powertools.logs().filter((l) => l.level === "ERROR")).toEqual([]);
  });

  it("copies a job whose due time has come", async () => {
    // Prepare
    const f = new HandlerFixture();
    f.queue.fifo();
    const job = await f.listed(MAILBOX_A, f.pop3.source(MAILBOX_A).add(makeMessage()));
    const event = sqsEventOf([job]);
    event.Records[0] = { ...event.Records[0]!, body: serializeCopyJob(job, f.clock.now()) };

    // Act
    const response = await makeCopyMessageHandler(f.deps)(event, lambdaContext("copy-message"));

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(f.queue.holds).toEqual([]);
    expect(f.sink.imported.map((m) => m.uidl)).toEqual([job.uidl]);
  });

  it("re-sends a postponed job as a re-send, which the queue never deduplicates", async () => {
    // Prepare
    const f = new HandlerFixture();
    f.queue.fifo();
    const job = await f.listed(MAILBOX_A, f.pop3.source(MAILBOX_A).add(makeMessage()));
    await f.leases.acquire({ tenant: "acme", mailboxId: MAILBOX_A }, 1, "the-deleter", 60_000);

    // Act
    const response = await makeCopyMessageHandler(f.deps)(sqsEventOf([job]), lambdaContext("copy-message"));

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(f.queue.calls).toEqual([{ jobs: [job], delaySeconds: BUSY_RESEND_MS["no-lease"] / 1000 }]);
    expect(f.queue.resends).toEqual([true]);
  });

  it("brings each failed record back after a backoff by its receive count, a malformed body too, not after the visibility timeout", async () => {
    // Prepare
    const f = new HandlerFixture();
    f.queue.fifo();
    const good = await f.listed(MAILBOX_A, f.pop3.source(MAILBOX_A).add(makeMessage()));
    const broken = await f.listed(MAILBOX_B, f.pop3.source(MAILBOX_B).add(makeMessage()));
    f.pop3.source(MAILBOX_B).failNextOpen(new TransientError("pop3", "connection reset by peer"));
    const event = sqsEventOf([good, broken, "{not json"]);
    event.Records[1] = {
      ...event.Records[1]!,
      attributes: { ...event.Records[1]!.attributes, ApproximateReceiveCount: "3" },
    };

    // Act
    const response = await makeCopyMessageHandler(f.deps)(event, lambdaContext("copy-message"));

    // Assess
    expect(response.batchItemFailures.map((r) => r.itemIdentifier).sort()).toEqual(["m-2", "m-3"]);
    expect(f.queue.holds).toEqual([
      { receipts: ["r-2"], delaySeconds: 120 },
      { receipts: ["r-3"], delaySeconds: 30 },
    ]);
    expect(f.sink.imported.map((m) => m.uidl)).toEqual([good.uidl]);
  });

  it("doubles a failed record's backoff from 30 s with each receive, up to 15 minutes", () => {
    // Act
    const delays = [1, 2, 3, 4, 5, 6, 12, 0, Number.NaN, 1e6].map(failedRecordBackoffSeconds);

    // Assess
    expect(delays).toEqual([30, 60, 120, 240, 480, 900, 900, 30, 30, 900]);
  });

  it("fails a held-back record it could not hand back, so SQS brings it again instead of losing it", async () => {
    // Prepare
    const f = new HandlerFixture();
    f.queue.holdBack = async () => {
      throw new TransientError("queue", "ChangeMessageVisibility throttled");
    };
    const job = await f.listed(MAILBOX_A, f.pop3.source(MAILBOX_A).add(makeMessage()));
    const event = sqsEventOf([job]);
    event.Records[0] = { ...event.Records[0]!, body: serializeCopyJob(job, f.clock.now() + 60_000) };

    // Act
    const response = await makeCopyMessageHandler(f.deps)(event, lambdaContext("copy-message"));

    // Assess
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: "m-1" }]);
    expect(f.pop3.opens).toEqual([]);
  });
});

/** A Lambda context whose remaining time the test decides. */
function contextWithRemaining(remainingMs: () => number): Context {
  return { ...lambdaContext("copy-message"), getRemainingTimeInMillis: remainingMs };
}

/** Datapoints of `name` in the EMF printed so far. */
function emitted(f: HandlerFixture, name: string): number {
  return f.powertools
    .emf()
    .map((d) => d[name])
    .flatMap((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]))
    .reduce<number>((sum, v) => sum + Number(v), 0);
}
