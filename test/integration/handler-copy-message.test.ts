import { afterEach, describe, expect, it, vi } from "vitest";
import {
  BUSY_DELAY_SECONDS,
  MAX_DELAY_SECONDS,
  makeCopyMessageHandler,
  retryDelaySeconds,
} from "../../shared/adapters/lambda/copy-message-handler";
import { CredentialsError, RateLimitedError, TransientError } from "../../shared/core/errors";
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
    expect(f.queue.calls).toEqual([{ jobs: [job], delaySeconds: BUSY_DELAY_SECONDS["no-lease"] }]);
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
    const delays = [0, 1, 999, 1_001, 899_000, 10_000_000].map(retryDelaySeconds);

    // Assess
    expect(delays).toEqual([0, 1, 1, 2, 899, MAX_DELAY_SECONDS]);
  });
});

/** Datapoints of `name` in the EMF printed so far. */
function emitted(f: HandlerFixture, name: string): number {
  return f.powertools
    .emf()
    .map((d) => d[name])
    .flatMap((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]))
    .reduce<number>((sum, v) => sum + Number(v), 0);
}
