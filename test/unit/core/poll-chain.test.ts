import { describe, expect, it } from "vitest";
import {
  DEFAULT_KEEPER_POLICY,
  type KeeperDeps,
  keeperTick,
  nextPollDelaySeconds,
  runChainStep,
} from "../../../shared/core/poll-chain";
import { TestClock } from "../../fakes/in-memory-clock";
import { InMemoryPollChains, RecordingPollQueue } from "../../fakes/in-memory-poll-chains";
import { mailboxConfig, TENANT } from "./support/harness";

/** The chain ports on in-memory doubles and the test clock. */
function chainDeps(depths = { deadLetters: 0, failedDeletes: 0 }) {
  const clock = new TestClock();
  const chains = new InMemoryPollChains();
  const pollQueue = new RecordingPollQueue();
  let ids = 0;
  const deps: KeeperDeps = {
    chains,
    pollQueue,
    clock,
    newChainId: () => `c${++ids}`,
    random: () => 0,
    problemQueueDepths: async () => depths,
  };
  return { clock, chains, pollQueue, deps };
}

const A = mailboxConfig({ id: "a@acme.it", pollSeconds: 10 });
const B = mailboxConfig({ id: "b@acme.it", pollSeconds: 300 });
const UNTIL = 60_000;

describe("nextPollDelaySeconds", () => {
  it("waits pollSeconds, or a longer login delay rounded up, never past SQS's 900 s", () => {
    // Act
    const delays = [
      nextPollDelaySeconds(A, { kind: "succeeded" }),
      nextPollDelaySeconds(A, { kind: "succeeded", loginDelaySeconds: 9 }),
      nextPollDelaySeconds(A, { kind: "succeeded", loginDelaySeconds: 30.2 }),
      nextPollDelaySeconds(A, { kind: "succeeded", loginDelaySeconds: 3600 }),
      nextPollDelaySeconds(A, { kind: "failed", failure: "busy" }),
    ];
    // Assess
    expect(delays).toEqual([10, 10, 31, 900, 10]);
  });
});

describe("runChainStep", () => {
  it("skips a message that is not the live one without polling", async () => {
    // Prepare
    const { clock, chains, pollQueue, deps } = chainDeps();
    await chains.start(TENANT, A.id, "c1", clock.now(), undefined);
    let polls = 0;
    const poll = async () => {
      polls++;
      return { kind: "succeeded" as const };
    };
    // Act
    const stale = await runChainStep(deps, TENANT, A, { mailboxId: A.id, chain: "c0", seq: 0 }, UNTIL, poll);
    const ahead = await runChainStep(deps, TENANT, A, { mailboxId: A.id, chain: "c1", seq: 1 }, UNTIL, poll);
    // Assess
    expect([stale, ahead]).toEqual([{ kind: "skipped" }, { kind: "skipped" }]);
    expect(polls).toBe(0);
    expect(pollQueue.sent).toEqual([]);
  });

  it("polls once, records the end time and sends the next seq with its delay", async () => {
    // Prepare
    const { clock, chains, pollQueue, deps } = chainDeps();
    await chains.start(TENANT, A.id, "c1", clock.now(), undefined);
    const start = clock.now();
    // Act
    const step = await runChainStep(
      deps,
      TENANT,
      A,
      { mailboxId: A.id, chain: "c1", seq: 0 },
      start + UNTIL,
      async () => {
        clock.advance(2_000);
        return { kind: "succeeded" };
      },
    );
    // Assess
    expect(step).toEqual({ kind: "polled", outcome: { kind: "succeeded" }, nextSeq: 1, delaySeconds: 10 });
    expect(pollQueue.sent).toEqual([{ message: { mailboxId: A.id, chain: "c1", seq: 1 }, delaySeconds: 10 }]);
    expect(await chains.list(TENANT)).toEqual([
      expect.objectContaining({ seq: 1, lastSucceededAt: start + 2_000, nextPollAt: start + 12_000 }),
    ]);
  });

  it("records a thrown poll as an error with its code, or UNEXPECTED, and still sends the next message", async () => {
    // Prepare
    const { clock, chains, pollQueue, deps } = chainDeps();
    await chains.start(TENANT, A.id, "c1", clock.now(), undefined);
    const coded = Object.assign(new Error("tls"), { code: "TLS_FAILED" });
    // Act
    const first = await runChainStep(
      deps,
      TENANT,
      A,
      { mailboxId: A.id, chain: "c1", seq: 0 },
      UNTIL,
      async () => {
        throw coded;
      },
    );
    const afterFirst = (await chains.list(TENANT))[0];
    const second = await runChainStep(
      deps,
      TENANT,
      A,
      { mailboxId: A.id, chain: "c1", seq: 1 },
      UNTIL,
      async () => {
        throw "no error object";
      },
    );
    // Assess
    expect(first).toMatchObject({
      kind: "polled",
      outcome: { kind: "failed", failure: "error", code: "TLS_FAILED" },
    });
    expect(afterFirst).toMatchObject({ lastFailure: "error", lastFailureCode: "TLS_FAILED" });
    expect(second).toMatchObject({ outcome: { failure: "error", code: "UNEXPECTED" } });
    expect(pollQueue.sent.map((s) => s.message.seq)).toEqual([1, 2]);
  });

  it("sends nothing when the keeper replaced the chain during the poll", async () => {
    // Prepare
    const { clock, chains, pollQueue, deps } = chainDeps();
    await chains.start(TENANT, A.id, "c1", clock.now(), undefined);
    // Act
    const step = await runChainStep(
      deps,
      TENANT,
      A,
      { mailboxId: A.id, chain: "c1", seq: 0 },
      UNTIL,
      async () => {
        const [taken] = await chains.list(TENANT);
        await chains.start(TENANT, A.id, "c2", clock.now(), taken);
        return { kind: "failed", failure: "busy" };
      },
    );
    // Assess
    expect(step).toEqual({ kind: "superseded", outcome: { kind: "failed", failure: "busy" } });
    expect(pollQueue.sent).toEqual([]);
  });
});

describe("keeperTick", () => {
  it("starts a chain for each configured mailbox without one, its first message due at once", async () => {
    // Prepare
    const { pollQueue, deps } = chainDeps();
    // Act
    const result = await keeperTick(deps, TENANT, [A, B]);
    const again = await keeperTick(deps, TENANT, [A, B]);
    // Assess
    expect(result).toEqual({ started: [A.id, B.id], startFailed: [], problems: [] });
    expect(again.started).toEqual([]);
    expect(pollQueue.sent).toEqual([
      { message: { mailboxId: A.id, chain: "c1", seq: 0 }, delaySeconds: 0 },
      { message: { mailboxId: B.id, chain: "c2", seq: 0 }, delaySeconds: 0 },
    ]);
  });

  it("spreads a new chain's first poll over pollSeconds, and restarts a lost one at once", async () => {
    // Prepare
    const { clock, chains, pollQueue, deps } = chainDeps();
    const spread = { ...deps, random: () => 0.99 };
    const start = clock.now();
    // Act
    await keeperTick(spread, TENANT, [A, B]);
    const first = pollQueue.sent.splice(0);
    const items = await chains.list(TENANT);
    clock.advance(300_000 + DEFAULT_KEEPER_POLICY.lostAfterMs + 1);
    await keeperTick(spread, TENANT, [A, B]);
    // Assess
    expect(first.map((s) => s.delaySeconds)).toEqual([9, 297]);
    expect(items.map((i) => [i.nextPollAt - start, i.firstStartedAt - start])).toEqual([
      [9_000, 0],
      [297_000, 0],
    ]);
    expect(pollQueue.sent.map((s) => s.delaySeconds)).toEqual([0, 0]);
  });

  it("restarts a chain whose message is more than a minute overdue, and not at the minute itself", async () => {
    // Prepare
    const { clock, pollQueue, deps } = chainDeps();
    await keeperTick(deps, TENANT, [A]);
    pollQueue.sent.length = 0;
    // Act
    clock.advance(DEFAULT_KEEPER_POLICY.lostAfterMs);
    const atTheMinute = await keeperTick(deps, TENANT, [A]);
    clock.advance(1);
    const after = await keeperTick(deps, TENANT, [A]);
    // Assess
    expect(atTheMinute.started).toEqual([]);
    expect(after.started).toEqual([A.id]);
    expect(pollQueue.sent).toEqual([{ message: { mailboxId: A.id, chain: "c2", seq: 0 }, delaySeconds: 0 }]);
  });

  it("restarts a chain whose poll outlived its pollUntil, and leaves a running poll alone", async () => {
    // Prepare
    const { clock, chains, deps } = chainDeps();
    await keeperTick(deps, TENANT, [A]);
    await chains.take(TENANT, { mailboxId: A.id, chain: "c1", seq: 0 }, clock.now(), clock.now() + 300_000);
    // Act
    clock.advance(300_000);
    const running = await keeperTick(deps, TENANT, [A]);
    clock.advance(1);
    const dead = await keeperTick(deps, TENANT, [A]);
    // Assess
    expect(running.started).toEqual([]);
    expect(dead.started).toEqual([A.id]);
    expect((await chains.list(TENANT))[0]).toMatchObject({ chain: "c2", seq: 0 });
  });

  it("reports a failed restart and goes on with the other mailboxes", async () => {
    // Prepare
    const { pollQueue, deps } = chainDeps();
    const broken = new Error("sqs down");
    pollQueue.failNext = broken;
    // Act
    const result = await keeperTick(deps, TENANT, [A, B]);
    // Assess
    expect(result.startFailed).toEqual([{ mailboxId: A.id, error: broken }]);
    expect(result.started).toEqual([B.id]);
  });

  it("counts a mailbox not polled successfully for max(10 min, 2 x pollSeconds), from the chain's first start when none succeeded", async () => {
    // Prepare: A (10 s) and B (300 s: 2 x 300 s = 10 min too) never succeeded.
    const { clock, deps } = chainDeps();
    const started = clock.now();
    await keeperTick(deps, TENANT, [A, B]);
    // Act
    clock.advance(10 * 60_000);
    const atTenMinutes = await keeperTick(deps, TENANT, [A, B]);
    clock.advance(1);
    const after = await keeperTick(deps, TENANT, [A, B]);
    // Assess
    expect(atTenMinutes.problems).toEqual([]);
    expect(after.problems).toEqual([
      { cause: "not-polled", mailboxId: A.id, since: started },
      { cause: "not-polled", mailboxId: B.id, since: started },
    ]);
  });

  it("counts a slow mailbox only after 2 x its pollSeconds", async () => {
    // Prepare
    const slow = mailboxConfig({ id: "slow@acme.it", pollSeconds: 300 });
    const { clock, deps } = chainDeps();
    await keeperTick(deps, TENANT, [slow]);
    // Act
    clock.advance(2 * 300_000 + 1);
    const result = await keeperTick(deps, TENANT, [{ ...slow, pollSeconds: 301 }]);
    // Assess
    expect(result.problems).toEqual([]);
  });

  it("counts a credentials failure and each non-empty problem queue, naming the last failure", async () => {
    // Prepare
    const { clock, chains, deps } = chainDeps({ deadLetters: 3, failedDeletes: 1 });
    await keeperTick(deps, TENANT, [A]);
    const message = { mailboxId: A.id, chain: "c1", seq: 0 };
    await runChainStep(deps, TENANT, A, message, clock.now() + UNTIL, async () => ({
      kind: "failed",
      failure: "credentials",
      code: "AUTH",
    }));
    expect((await chains.list(TENANT))[0]).toMatchObject({ lastFailure: "credentials" });
    // Act
    const result = await keeperTick(deps, TENANT, [A]);
    // Assess
    expect(result.problems).toEqual([
      { cause: "credentials", mailboxId: A.id, lastFailureCode: "AUTH" },
      { cause: "dead-letters", messages: 3 },
      { cause: "failed-deletes", messages: 1 },
    ]);
  });

  it("leaves the chain of a mailbox no longer configured alone", async () => {
    // Prepare
    const { clock, pollQueue, deps } = chainDeps();
    await keeperTick(deps, TENANT, [A, B]);
    pollQueue.sent.length = 0;
    // Act
    clock.advance(3_600_000);
    const result = await keeperTick(deps, TENANT, [B]);
    // Assess
    expect(result.started).toEqual([B.id]);
    expect(result.problems.map((p) => ("mailboxId" in p ? p.mailboxId : p.cause))).toEqual([B.id]);
  });
});
