import type { SQSEvent } from "aws-lambda";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  KEEPER_EVENT,
  makeKeeperHandler,
  makeListerHandler,
  makeListNewMessagesHandler,
  makePollChainHandler,
} from "../../shared/adapters/lambda/list-new-messages-handler";
import { ConnectionClosedError, CredentialsError, TlsError } from "../../shared/core/errors";
import type { PollMessage } from "../../shared/ports/poll-chains";
import { InMemoryPollChains, RecordingPollQueue } from "../fakes/in-memory-poll-chains";
import { lambdaContext } from "../fakes/sqs-lambda-events";
import { makeMessage } from "../unit/core/support/harness";
import {
  HandlerFixture,
  MAILBOX_A,
  MAILBOX_B,
  mailboxJson,
  sqsEventOf,
  TENANT,
  tenantEnv,
} from "./handler-harness";

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

const listContext = () => lambdaContext("list-new-messages", 300_000);

/** The handler fixture plus the chain ports: in-memory chain items, a recording poll queue. */
function chainFixture(
  mailboxes = [mailboxJson(MAILBOX_A, { pollSeconds: 10 }), mailboxJson(MAILBOX_B, { pollSeconds: 30 })],
) {
  const f = new HandlerFixture(tenantEnv(mailboxes));
  const chains = new InMemoryPollChains();
  const pollQueue = new RecordingPollQueue();
  const depths = { deadLetters: 0, failedDeletes: 0 };
  let ids = 0;
  const deps = {
    ...f.deps,
    chainPorts: () => ({
      chains,
      pollQueue,
      clock: f.clock,
      newChainId: () => `chain-${++ids}`,
      random: () => 0,
      problemQueueDepths: async () => ({ ...depths }),
    }),
    sessionSlots: () => f.leases,
  };
  return { f, chains, pollQueue, depths, deps };
}

/** The SQS event the poll queue's event source mapping builds. */
function pollEvent(...messages: PollMessage[]): SQSEvent {
  return sqsEventOf(messages.map((message) => JSON.stringify(message)));
}

describe("list-new-messages: one poll per invocation", () => {
  it("polls a 10-second mailbox once and returns at once, instead of looping for the minute", async () => {
    // Prepare
    const f = new HandlerFixture(tenantEnv([mailboxJson(MAILBOX_A, { pollSeconds: 10 })]));
    f.pop3.source(MAILBOX_A).add(makeMessage());
    const start = f.clock.now();

    // Act
    const result = await makeListNewMessagesHandler(f.deps)({ mailboxId: MAILBOX_A }, listContext());

    // Assess
    expect(result).toMatchObject({ outcome: "listed", polls: 1, newMessages: 1 });
    expect(f.pop3.opens).toHaveLength(1);
    expect(f.clock.now() - start).toBe(0);
  });
});

describe("list-new-messages: poll chains", () => {
  it("keeper starts one chain per mailbox, due at once; a poll message polls once and sends the next, delayed by pollSeconds", async () => {
    // Prepare
    const { f, pollQueue, deps } = chainFixture();
    f.pop3.source(MAILBOX_A).add(makeMessage());
    const lister = makeListerHandler(deps);

    // Act
    const kept = await lister(KEEPER_EVENT, listContext());
    const first = pollQueue.next();
    const second = pollQueue.next();
    const response = await lister(pollEvent(first.message), listContext());

    // Assess
    expect(kept).toMatchObject({ outcome: "kept", started: 2, problems: 0 });
    expect(first).toEqual({ message: { mailboxId: MAILBOX_A, chain: "chain-1", seq: 0 }, delaySeconds: 0 });
    expect(second).toEqual({ message: { mailboxId: MAILBOX_B, chain: "chain-2", seq: 0 }, delaySeconds: 0 });
    expect(response).toEqual({ batchItemFailures: [] });
    expect(f.pop3.opens).toEqual([MAILBOX_A]);
    expect(f.queue.inner.size).toBe(1);
    expect(pollQueue.sent).toEqual([
      { message: { mailboxId: MAILBOX_A, chain: "chain-1", seq: 1 }, delaySeconds: 10 },
    ]);
  });

  it("makes six short polls of a 10-second mailbox in a minute of chain messages", async () => {
    // Prepare
    const { f, pollQueue, deps } = chainFixture([mailboxJson(MAILBOX_A, { pollSeconds: 10 })]);
    const chain = makePollChainHandler(deps);
    await makeKeeperHandler(deps)(KEEPER_EVENT, listContext());

    // Act: deliver each message when its delay has passed, for 60 s of the test clock.
    const start = f.clock.now();
    let invocations = 0;
    while (f.clock.now() - start < 60_000) {
      const { message, delaySeconds } = pollQueue.next();
      f.clock.advance(delaySeconds * 1000);
      if (f.clock.now() - start >= 60_000) break;
      await chain(pollEvent(message), listContext());
      invocations++;
    }

    // Assess
    expect(invocations).toBe(6);
    expect(f.pop3.opens).toHaveLength(6);
  });

  it("treats a duplicate delivery of a poll message as a no-op: no second session, no second next message", async () => {
    // Prepare
    const { f, pollQueue, deps } = chainFixture();
    const chain = makePollChainHandler(deps);
    await makeKeeperHandler(deps)(KEEPER_EVENT, listContext());
    const { message } = pollQueue.next();
    pollQueue.next();

    // Act
    const first = await chain(pollEvent(message), listContext());
    const duplicate = await chain(pollEvent(message), listContext());

    // Assess
    expect([first, duplicate]).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }]);
    expect(f.pop3.opens).toEqual([MAILBOX_A]);
    expect(pollQueue.sent).toHaveLength(1);
  });

  it("never overlaps two polls of one mailbox: a second delivery while the poll runs is a no-op", async () => {
    // Prepare: the first poll is held open in its POP3 session.
    const { f, pollQueue, deps } = chainFixture();
    const chain = makePollChainHandler(deps);
    await makeKeeperHandler(deps)(KEEPER_EVENT, listContext());
    const { message } = pollQueue.next();
    pollQueue.next();
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const open = f.pop3.open.bind(f.pop3);
    f.pop3.open = async (mailbox) => {
      const session = await open(mailbox);
      await held;
      return session;
    };

    // Act
    const running = chain(pollEvent(message), listContext());
    await vi.waitFor(() => expect(f.pop3.opens).toHaveLength(1));
    const second = await chain(pollEvent(message), listContext());
    release();
    await running;

    // Assess
    expect(second).toEqual({ batchItemFailures: [] });
    expect(f.pop3.opens).toHaveLength(1);
    expect(pollQueue.sent.map((s) => s.message.seq)).toEqual([1]);
  });

  it("resumes a crashed poll's chain when its message comes back after the poll's deadline, and not before", async () => {
    // Prepare: a poll took the chain and its invocation died (nothing finished, nothing sent).
    const { f, chains, pollQueue, deps } = chainFixture();
    await makeKeeperHandler(deps)(KEEPER_EVENT, listContext());
    const { message } = pollQueue.next();
    pollQueue.next();
    const deadline = f.clock.now() + 310_000;
    await chains.take(TENANT, message, f.clock.now(), deadline);
    const chain = makePollChainHandler(deps);

    // Act
    await chain(pollEvent(message), listContext());
    const beforeDeadline = f.pop3.opens.length;
    f.clock.advance(310_001);
    await chain(pollEvent(message), listContext());

    // Assess
    expect(beforeDeadline).toBe(0);
    expect(f.pop3.opens).toEqual([MAILBOX_A]);
    expect(pollQueue.sent).toEqual([{ message: { ...message, seq: 1 }, delaySeconds: 10 }]);
  });

  it("sends the next message whatever the poll met: busy, rejected credentials, a dropped connection, a TLS error", async () => {
    // Prepare
    const { f, chains, pollQueue, deps } = chainFixture([mailboxJson(MAILBOX_A, { pollSeconds: 10 })]);
    const chain = makePollChainHandler(deps);
    await makeKeeperHandler(deps)(KEEPER_EVENT, listContext());
    const source = f.pop3.source(MAILBOX_A);
    const failures = [
      async () => void (await f.leases.acquire({ tenant: TENANT, mailboxId: MAILBOX_A }, 1, "copier", 5_000)),
      async () => source.failNextOpen(new CredentialsError("pop3", "-ERR [AUTH] Authentication failed")),
      async () => source.failNextOpen(new ConnectionClosedError("pop3", "reset")),
      async () => source.failNextOpen(new TlsError("certificate has expired")),
    ];
    const seen: (string | undefined)[] = [];

    // Act
    for (const fail of failures) {
      const { message, delaySeconds } = pollQueue.next();
      f.clock.advance(delaySeconds * 1000);
      await fail();
      const response = await chain(pollEvent(message), listContext());
      expect(response).toEqual({ batchItemFailures: [] });
      seen.push((await chains.list(TENANT))[0]?.lastFailure);
    }

    // Assess
    expect(seen).toEqual(["busy", "credentials", "retryable", "error"]);
    expect(pollQueue.sent).toEqual([
      { message: { mailboxId: MAILBOX_A, chain: "chain-1", seq: 4 }, delaySeconds: 10 },
    ]);
  });

  it("waits out a server's LOGIN-DELAY longer than pollSeconds before the next poll", async () => {
    // Prepare: Courier announces LOGIN-DELAY 30 to a 10-second mailbox.
    const { f, pollQueue, deps } = chainFixture([mailboxJson(MAILBOX_A, { pollSeconds: 10 })]);
    const source = f.pop3.source(MAILBOX_A);
    f.pop3.open = async (mailbox) => {
      f.pop3.opens.push(mailbox.id);
      const session = await source.open(mailbox);
      return Object.assign(session, { capabilities: { utf8: false, loginDelaySeconds: 30 } });
    };
    await makeKeeperHandler(deps)(KEEPER_EVENT, listContext());

    // Act
    await makePollChainHandler(deps)(pollEvent(pollQueue.next().message), listContext());

    // Assess
    expect(pollQueue.sent.map((s) => s.delaySeconds)).toEqual([30]);
  });

  it("drops a poll message of a mailbox no longer configured (its chain ends) and one that is no poll message", async () => {
    // Prepare
    const { f, pollQueue, deps } = chainFixture();
    const event = pollEvent({ mailboxId: "gone@acme.it", chain: "c", seq: 0 });
    const malformed = pollEvent({ mailboxId: MAILBOX_A, chain: "c", seq: 0 });
    const first = malformed.Records[0];
    if (first !== undefined) first.body = "{not json";

    // Act
    const responses = [
      await makePollChainHandler(deps)(event, listContext()),
      await makePollChainHandler(deps)(malformed, listContext()),
    ];

    // Assess
    expect(responses).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }]);
    expect(f.pop3.opens).toEqual([]);
    expect(pollQueue.sent).toEqual([]);
  });

  it("returns a record for SQS to redeliver when the chain item cannot be read", async () => {
    // Prepare
    const { chains, deps } = chainFixture();
    vi.spyOn(chains, "take").mockRejectedValueOnce(new ConnectionClosedError("ledger", "reset"));

    // Act
    const response = await makePollChainHandler(deps)(
      pollEvent({ mailboxId: MAILBOX_A, chain: "c", seq: 0 }),
      listContext(),
    );

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: "m-1" }] });
  });
});

describe("list-new-messages: the keeper polls mailboxes of a minute or slower itself", () => {
  it("polls a 60-second mailbox at each tick after the first, in the keeper's invocation, with no poll message", async () => {
    // Prepare
    const { f, chains, pollQueue, deps } = chainFixture([mailboxJson(MAILBOX_A, { pollSeconds: 60 })]);
    f.pop3.source(MAILBOX_A).add(makeMessage());
    const keeper = makeKeeperHandler(deps);

    // Act
    const first = await keeper(KEEPER_EVENT, listContext());
    f.clock.advance(60_000);
    const second = await keeper(KEEPER_EVENT, listContext());
    f.clock.advance(60_000);
    const third = await keeper(KEEPER_EVENT, listContext());

    // Assess
    expect([first, second, third]).toEqual([
      { outcome: "kept", started: 1, problems: 0, polled: 0 },
      { outcome: "kept", started: 0, problems: 0, polled: 1 },
      { outcome: "kept", started: 0, problems: 0, polled: 1 },
    ]);
    expect(f.pop3.opens).toEqual([MAILBOX_A, MAILBOX_A]);
    expect(f.queue.inner.size).toBe(1);
    expect(pollQueue.sent).toEqual([]);
    expect((await chains.list(TENANT))[0]).toMatchObject({ seq: 2, lastSucceededAt: f.clock.now() });
  });

  it("publishes the minute's TenantProblems before it polls, so a long poll cannot hold it back", async () => {
    // Prepare
    const { f, deps } = chainFixture([mailboxJson(MAILBOX_A, { pollSeconds: 60 })]);
    const keeper = makeKeeperHandler(deps);
    await keeper(KEEPER_EVENT, listContext());
    f.clock.advance(60_000);
    const published = () => f.powertools.emf().filter((d) => d.TenantProblems !== undefined).length;
    const before = published();
    let atOpen: number | undefined;
    const open = f.pop3.open.bind(f.pop3);
    vi.spyOn(f.pop3, "open").mockImplementation((mailbox) => {
      atOpen = published();
      return open(mailbox);
    });

    // Act
    const kept = await keeper(KEEPER_EVENT, listContext());

    // Assess
    expect(kept).toMatchObject({ polled: 1 });
    expect(atOpen).toBe(before + 1);
    expect(published()).toBe(before + 1);
  });

  it("polls the due mailboxes even when the problem queues cannot be read, and still fails the tick (no datapoint)", async () => {
    // Prepare
    const { f, deps } = chainFixture([mailboxJson(MAILBOX_A, { pollSeconds: 60 })]);
    const keeper = makeKeeperHandler(deps);
    await keeper(KEEPER_EVENT, listContext());
    // 5 minutes: the next tick that reads the queues' depth (one in five, docs/pipeline.md)
    f.clock.advance(300_000);
    const broken = new Error("sqs denied");
    const ports = deps.chainPorts();
    const failing = {
      ...deps,
      chainPorts: () => ({ ...ports, problemQueueDepths: () => Promise.reject(broken) }),
    };
    const before = f.powertools.emf().filter((d) => d.TenantProblems !== undefined).length;

    // Act
    const tick = makeKeeperHandler(failing)(KEEPER_EVENT, listContext());

    // Assess
    await expect(tick).rejects.toBe(broken);
    expect(f.pop3.opens).toEqual([MAILBOX_A]);
    expect(f.powertools.emf().filter((d) => d.TenantProblems !== undefined)).toHaveLength(before);
  });

  it("opens no session while a copier holds the mailbox's lease: the poll is busy, and the next tick polls", async () => {
    // Prepare
    const { f, chains, deps } = chainFixture([mailboxJson(MAILBOX_A, { pollSeconds: 60 })]);
    const keeper = makeKeeperHandler(deps);
    await keeper(KEEPER_EVENT, listContext());
    const copier = await f.leases.acquire({ tenant: TENANT, mailboxId: MAILBOX_A }, 1, "copier", 300_000);

    // Act
    f.clock.advance(60_000);
    const busy = await keeper(KEEPER_EVENT, listContext());
    const afterBusy = (await chains.list(TENANT))[0];
    await f.leases.release({ tenant: TENANT, mailboxId: MAILBOX_A }, copier!);
    f.clock.advance(60_000);
    await keeper(KEEPER_EVENT, listContext());

    // Assess
    expect(busy).toMatchObject({ polled: 1 });
    expect(afterBusy).toMatchObject({ seq: 1, lastFailure: "busy" });
    expect(f.pop3.opens).toEqual([MAILBOX_A]);
  });
});

describe("list-new-messages: the keeper", () => {
  it("restarts a chain whose message was lost and leaves a live one alone; the lost chain's late message is a no-op", async () => {
    // Prepare: both chains polled once; B's next message (due in 10 s) is lost, A's is due in 50 s.
    const { f, pollQueue, deps } = chainFixture([
      mailboxJson(MAILBOX_A, { pollSeconds: 50 }),
      mailboxJson(MAILBOX_B, { pollSeconds: 10 }),
    ]);
    const chain = makePollChainHandler(deps);
    const keeper = makeKeeperHandler(deps);
    await keeper(KEEPER_EVENT, listContext());
    await chain(pollEvent(pollQueue.next().message, pollQueue.next().message), listContext());
    const lostB = pollQueue.sent.find((s) => s.message.mailboxId === MAILBOX_B);
    if (lostB === undefined) throw new Error("no next message of B");
    pollQueue.sent.length = 0;
    const opensBefore = f.pop3.opens.length;

    // Act: the keeper ticks 71 s later (B's message a minute overdue); then B's lost message turns up.
    f.clock.advance(71_000);
    const kept = await keeper(KEEPER_EVENT, listContext());
    const restarted = pollQueue.sent.map((s) => s.message);
    await chain(pollEvent(lostB.message), listContext());

    // Assess
    expect(kept).toMatchObject({ outcome: "kept", started: 1 });
    expect(restarted).toEqual([{ mailboxId: MAILBOX_B, chain: "chain-3", seq: 0 }]);
    expect(f.pop3.opens.length).toBe(opensBefore);
  });

  it("counts the tenant's problems into one TenantProblems datapoint and logs one line per problem", async () => {
    // Prepare: A's password is rejected; B never polled successfully for 15 minutes (a tick that
    // reads the queues, one in five); both queues hold messages.
    const { f, depths, deps, pollQueue } = chainFixture();
    const keeper = makeKeeperHandler(deps);
    await keeper(KEEPER_EVENT, listContext());
    f.pop3.source(MAILBOX_A).failNextOpen(new CredentialsError("pop3", "-ERR [AUTH] Authentication failed"));
    await makePollChainHandler(deps)(pollEvent(pollQueue.next().message), listContext());
    f.clock.advance(15 * 60_000);
    depths.deadLetters = 2;
    depths.failedDeletes = 1;
    f.powertools.lines.length = 0;

    // Act
    const kept = await keeper(KEEPER_EVENT, listContext());

    // Assess
    expect(kept).toMatchObject({ outcome: "kept", problems: 5 });
    const emf = f.powertools.emf().filter((d) => d.TenantProblems !== undefined);
    expect(emf.map((d) => d.TenantProblems)).toEqual([5]);
    expect(emf[0]?._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([["service", "Tenant"]]);
    const problems = f.powertools.logs().filter((l) => l.message === "tenant problem");
    expect(problems.map((l) => [l.cause, l.mailboxId])).toEqual([
      ["not-polled", MAILBOX_A],
      ["credentials", MAILBOX_A],
      ["not-polled", MAILBOX_B],
      ["dead-letters", undefined],
      ["failed-deletes", undefined],
    ]);
  });

  it("emits TenantProblems 0 for a healthy tenant", async () => {
    // Prepare
    const { f, deps } = chainFixture();

    // Act
    await makeKeeperHandler(deps)(KEEPER_EVENT, listContext());

    // Assess
    expect(f.powertools.emf().map((d) => d.TenantProblems)).toEqual([0]);
  });
});
