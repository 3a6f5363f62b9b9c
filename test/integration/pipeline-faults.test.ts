import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { lambdaContext, sqsEvent } from "../fakes/sqs-lambda-events";
import { type GeneratedMessage, generateMailbox } from "../fixtures/awkward-messages";
import {
  type FaultPlan,
  gmailUserOf,
  PipelineRig,
  PipelineWorld,
  type RigOptions,
  Trigger,
} from "./pipeline-harness";

/**
 * Issue 4, "What it must show" item 3: faults at every seam of the real handlers against Dovecot,
 * fauxqs, dynalite and the Gmail API stand-in. Each case runs to quiet and proves the invariant:
 * every message archived byte-exact, in Gmail exactly once (with or without Message-ID: an
 * uncertain import settles by itself, docs/pipeline.md "The import claim"), and no DELE
 * committed for a message not yet archived and imported (audited right before every
 * committing QUIT).
 */
const MESSAGES = 20;
const USERS = [
  "retr",
  "s3write",
  "imported",
  "uncertain",
  "quit",
  "dropped",
  "redelivery",
  "gmail429",
  "gmail5xx",
  "gmaillost",
  "s3fault",
] as const;

let world: PipelineWorld;
const rigs: PipelineRig[] = [];

beforeAll(async () => {
  world = await PipelineWorld.start({ users: [...USERS] });
});

afterEach(() => {
  world?.gmail.clearFaults();
});

afterAll(async () => {
  for (const rig of rigs) await rig.stop();
  await world?.stop();
});

async function rigWith(options: RigOptions, messages: readonly GeneratedMessage[]): Promise<PipelineRig> {
  const rig = await PipelineRig.create(world, { transport: "plain", ...options });
  rigs.push(rig);
  await rig.deliver(messages);
  return rig;
}

/** A seeded mailbox that holds at least one message without Message-ID. */
function mailbox(seed: number): GeneratedMessage[] {
  const messages = generateMailbox(MESSAGES, seed);
  if (!messages.some((m) => m.messageId === undefined))
    throw new Error(`seed ${seed} has no message without Message-ID`);
  return messages;
}

describe("a crash thrown at a seam, then recovery", () => {
  const seams: { user: (typeof USERS)[number]; name: string; faults: () => FaultPlan }[] = [
    { user: "retr", name: "after RETR", faults: () => ({ crashAfterRetr: new Trigger(1) }) },
    { user: "s3write", name: "after the S3 write", faults: () => ({ crashAfterArchivePut: new Trigger(1) }) },
    {
      user: "imported",
      name: "after the Gmail import, before the ledger write",
      faults: () => ({
        crashAfterImport: new Trigger<[{ messageIdHeader?: string }]>(
          1,
          (r) => r.messageIdHeader?.endsWith("@pop2gmail.invalid>") === false,
        ),
      }),
    },
    { user: "quit", name: "between DELE and QUIT", faults: () => ({ crashBeforeQuit: new Trigger(1) }) },
  ];

  for (const seam of seams) {
    it(`loses nothing, duplicates nothing, deletes nothing early: ${seam.name}`, async () => {
      // Prepare
      const faults = seam.faults();
      const rig = await rigWith({ user: seam.user, faults }, mailbox(7));

      // Act
      const rounds = await rig.runUntilSettled();

      // Assess
      const fired = Object.values(faults).reduce((sum, t: Trigger<never[]>) => sum + t.fired, 0);
      const result = await rig.verifyInvariant();
      expect(fired).toBe(1);
      expect(result.problems).toEqual([]);
      expect(result).toMatchObject({ deleted: MESSAGES, uncertain: 0 });
      expect(rounds).toBeLessThanOrEqual(3);
    });
  }

  it("settles by itself, with one copy, a crashed import of a message without Message-ID", async () => {
    // Prepare
    // The Gmail copy of a message without Message-ID carries a synthesized one.
    const crashAfterImport = new Trigger<[{ messageIdHeader?: string }]>(
      1,
      (r) => r.messageIdHeader?.endsWith("@pop2gmail.invalid>") === true,
    );
    const rig = await rigWith({ user: "uncertain", faults: { crashAfterImport } }, mailbox(7));

    // Act
    await rig.runUntilSettled();

    // Assess
    const result = await rig.verifyInvariant();
    expect(crashAfterImport.fired).toBe(1);
    expect(result.problems).toEqual([]);
    expect(result).toMatchObject({ deleted: MESSAGES, uncertain: 0 });
    expect(rig.events.ofType("quarantined")).toEqual([]);
    expect(await rig.onServer()).toHaveLength(0);
  });
});

describe("faults of the network and the services", () => {
  it("survives the POP3 connection dropping in the middle of RETR", async () => {
    // Prepare
    const rig = await rigWith({ user: "dropped", transport: "proxy" }, mailbox(7));
    if (rig.proxy === undefined) throw new Error("the proxy did not start");
    rig.proxy.cuts = 2;

    // Act
    await rig.runUntilSettled();

    // Assess
    const result = await rig.verifyInvariant();
    expect(rig.proxy.cutsDone).toBe(2);
    expect(result.problems).toEqual([]);
    expect(result).toMatchObject({ deleted: MESSAGES, uncertain: 0 });
    expect(rig.events.ofType("retry-scheduled").map((e) => e.code)).toContain("CONNECTION_CLOSED");
  });

  it("copies once when SQS redelivers a batch whose first copy is still running", async () => {
    // Prepare
    // One batch's worth, so the redelivery receives exactly the batch still being copied.
    const rig = await rigWith({ user: "redelivery" }, generateMailbox(10, 7));
    await rig.poll();
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered = () => {};
    const inImport = new Promise<void>((resolve) => {
      entered = resolve;
    });
    let armed = true;
    rig.faults.beforeImport = async () => {
      if (!armed) return;
      armed = false;
      entered();
      await held;
    };
    const batch = await rig.receive();
    const firstCopy = rig.copy(sqsEvent(rig.queueArn, batch), lambdaContext("copy-message"));
    await inImport;

    // Act: the visibility timeout runs out while the first copy is still importing.
    await rig.settle(batch, { batchItemFailures: batch.map((m) => ({ itemIdentifier: m.MessageId ?? "" })) });
    const redelivered = await rig.receive();
    const secondResponse = await rig.copyMessages(redelivered);
    release();
    const firstResponse = await firstCopy;
    await rig.runUntilSettled();

    // Assess
    const result = await rig.verifyInvariant();
    expect(redelivered.map((m) => m.MessageId).sort()).toEqual(batch.map((m) => m.MessageId).sort());
    expect(secondResponse.batchItemFailures).toEqual([]);
    expect(firstResponse.batchItemFailures).toEqual([]);
    expect(rig.events.ofType("busy").map((e) => e.reason)).toContain("no-lease");
    expect(rig.requestedDelays).toContain(30);
    expect(result.problems).toEqual([]);
    expect(result).toMatchObject({ deleted: 10, uncertain: 0 });
  });

  it("waits out Gmail 429s longer than the sink's own retries without quarantining or failing a record", async () => {
    // Prepare
    const rig = await rigWith({ user: "gmail429" }, mailbox(7));
    // Enough 429s to outlast the sink's 5 attempts for several imports however they spread over
    // the imports in flight (the shared Gmail pacing, docs/lambda-handlers.md, orders them
    // differently from a per-container bucket).
    world.gmail.injectFault({
      match: (r) => r.operation === "import" && r.user === gmailUserOf("gmail429"),
      times: 40,
      action: { kind: "status", status: 429, reason: "rateLimitExceeded", retryAfterSeconds: 20 },
    });

    // Act
    await rig.runUntilSettled();

    // Assess
    const result = await rig.verifyInvariant();
    const rateLimited = rig.events.ofType("retry-scheduled").filter((e) => e.code === "RATE_LIMITED");
    expect(rateLimited.length).toBeGreaterThanOrEqual(2);
    expect(rig.requestedDelays.filter((d) => d >= 20)).not.toEqual([]);
    expect(rig.events.ofType("quarantined")).toEqual([]);
    expect(rig.maxReceiveCount).toBe(1);
    expect(result.problems).toEqual([]);
    expect(result).toMatchObject({ deleted: MESSAGES, uncertain: 0 });
  });

  it("recovers from Gmail 5xx answers that stored nothing", async () => {
    // Prepare
    const rig = await rigWith({ user: "gmail5xx" }, mailbox(7));
    world.gmail.injectFault({
      match: (r) => r.operation === "import" && r.user === gmailUserOf("gmail5xx"),
      times: 12,
      action: { kind: "status", status: 503, reason: "backendError" },
    });

    // Act
    await rig.runUntilSettled();

    // Assess
    const result = await rig.verifyInvariant();
    expect(world.gmail.countStatus(503, "import")).toBeGreaterThanOrEqual(12);
    expect(result.problems).toEqual([]);
    expect(result.deleted + result.uncertain).toBe(MESSAGES);
  });

  it("never makes a second copy when Gmail stored a message but its answer was a 5xx", async () => {
    // Prepare: every import is stored, then answered 500 (a lost answer), for the whole mailbox.
    const rig = await rigWith({ user: "gmaillost" }, mailbox(7));
    world.gmail.injectFault({
      match: (r) => r.operation === "import" && r.user === gmailUserOf("gmaillost"),
      times: MESSAGES,
      action: { kind: "status", status: 500, reason: "backendError", afterStore: true },
    });

    // Act
    await rig.runUntilSettled();

    // Assess: every message, with or without Message-ID, settled by its trace id or a merge.
    const result = await rig.verifyInvariant();
    expect(result.problems).toEqual([]);
    expect(result).toMatchObject({ deleted: MESSAGES, uncertain: 0 });
    expect(world.gmail.countStatus(500, "import")).toBe(MESSAGES);
  });

  it("recovers from S3 answering 500 to writes and reads", async () => {
    // Prepare
    const rig = await rigWith({ user: "s3fault" }, mailbox(7));
    const failing = { PutObjectCommand: 7, GetObjectCommand: 4 } as Record<string, number>;
    let injected = 0;
    rig.deps.clients.s3.middlewareStack.add(
      (next, context) => async (args) => {
        const left = failing[context.commandName ?? ""] ?? 0;
        if (left > 0) {
          failing[context.commandName ?? ""] = left - 1;
          injected++;
          throw Object.assign(new Error("We encountered an internal error. Please try again."), {
            name: "InternalError",
            $fault: "server",
            $metadata: { httpStatusCode: 500 },
          });
        }
        return next(args);
      },
      // Inside the SDK's retry loop, so each injected 500 is one attempt the SDK sees fail.
      { step: "finalizeRequest", priority: "low", name: "injectS3InternalErrors" },
    );

    // Act
    await rig.runUntilSettled();

    // Assess
    const result = await rig.verifyInvariant();
    expect(injected).toBe(11);
    expect(rig.events.ofType("retry-scheduled").map((e) => e.code)).toContain("TRANSIENT");
    expect(result.problems).toEqual([]);
    expect(result).toMatchObject({ deleted: MESSAGES, uncertain: 0 });
  });
});
