import { describe, expect, it } from "vitest";
import {
  chainedPolls,
  DEFAULT_KEEPER_POLICY,
  dueAtTick,
  duePollsOnly,
  type KeeperDeps,
  keeperPollIntervalMs,
  keeperTick,
  nextPollDelaySeconds,
  runChainStep,
  runKeeperPolls,
  usesPollQueue,
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

  it("writes the chain item twice for an idle poll: the take, and the finish when the session's hold ends", async () => {
    // Prepare
    const { clock, chains, pollQueue, deps } = chainDeps();
    await chains.start(TENANT, A.id, "c1", clock.now(), undefined);
    const writes: string[] = [];
    for (const method of ["take", "finish", "amend", "start"] as const) {
      const original = chains[method].bind(chains) as (...args: unknown[]) => Promise<unknown>;
      (chains as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
        writes.push(method);
        return original(...args);
      };
    }
    const start = clock.now();
    let heldDuringSession: number | undefined;
    let heldAfterSession: number | undefined;
    // Act
    const step = await runChainStep(
      deps,
      TENANT,
      A,
      { mailboxId: A.id, chain: "c1", seq: 0 },
      start + UNTIL,
      async (hold) => {
        heldDuringSession = await chains.heldUntil(TENANT, A.id);
        clock.advance(1_000);
        await hold.end();
        await hold.end();
        heldAfterSession = await chains.heldUntil(TENANT, A.id);
        clock.advance(500);
        return { kind: "succeeded" };
      },
    );
    // Assess
    expect(writes).toEqual(["take", "finish"]);
    expect(heldDuringSession).toBe(start + UNTIL);
    expect(heldAfterSession).toBeUndefined();
    expect(step).toMatchObject({ kind: "polled", nextSeq: 1, delaySeconds: 10 });
    expect(pollQueue.sent).toEqual([{ message: { mailboxId: A.id, chain: "c1", seq: 1 }, delaySeconds: 10 }]);
    expect((await chains.list(TENANT))[0]).toMatchObject({
      seq: 1,
      lastSucceededAt: start + 1_000,
      lastPolledAt: start + 1_000,
      nextPollAt: start + 11_000,
    });
  });

  it("amends the success recorded at the session's end when the poll then failed, putting back the last success", async () => {
    // Prepare
    const { clock, chains, deps } = chainDeps();
    await chains.start(TENANT, A.id, "c1", clock.now(), undefined);
    const before = clock.now();
    await runChainStep(
      deps,
      TENANT,
      A,
      { mailboxId: A.id, chain: "c1", seq: 0 },
      before + UNTIL,
      async () => ({
        kind: "succeeded",
      }),
    );
    clock.advance(10_000);
    // Act
    await runChainStep(
      deps,
      TENANT,
      A,
      { mailboxId: A.id, chain: "c1", seq: 1 },
      clock.now() + UNTIL,
      async (hold) => {
        await hold.end();
        return { kind: "failed", failure: "retryable", code: "THROTTLED" };
      },
    );
    // Assess
    expect((await chains.list(TENANT))[0]).toMatchObject({
      seq: 2,
      lastSucceededAt: before,
      lastFailure: "retryable",
      lastFailureCode: "THROTTLED",
    });
  });

  it("amends the next poll's time when a login delay outlasts pollSeconds", async () => {
    // Prepare
    const { clock, chains, pollQueue, deps } = chainDeps();
    await chains.start(TENANT, A.id, "c1", clock.now(), undefined);
    const start = clock.now();
    // Act
    await runChainStep(
      deps,
      TENANT,
      A,
      { mailboxId: A.id, chain: "c1", seq: 0 },
      start + UNTIL,
      async (hold) => {
        await hold.end();
        return { kind: "succeeded", loginDelaySeconds: 30 };
      },
    );
    // Assess
    expect((await chains.list(TENANT))[0]).toMatchObject({ seq: 1, nextPollAt: start + 30_000 });
    expect(pollQueue.sent.map((m) => m.delaySeconds)).toEqual([30]);
  });

  it("sends nothing and amends nothing when the chain was replaced before the session's end was recorded", async () => {
    // Prepare
    const { clock, chains, pollQueue, deps } = chainDeps();
    await chains.start(TENANT, A.id, "c1", clock.now(), undefined);
    let amended = 0;
    chains.amend = async () => {
      amended++;
      return true;
    };
    // Act
    const step = await runChainStep(
      deps,
      TENANT,
      A,
      { mailboxId: A.id, chain: "c1", seq: 0 },
      UNTIL,
      async (hold) => {
        const [taken] = await chains.list(TENANT);
        await chains.start(TENANT, A.id, "c2", clock.now(), taken);
        await hold.end();
        return { kind: "failed", failure: "retryable", code: "RESET" };
      },
    );
    // Assess
    expect(step).toEqual({
      kind: "superseded",
      outcome: { kind: "failed", failure: "retryable", code: "RESET" },
    });
    expect(amended).toBe(0);
    expect(pollQueue.sent).toEqual([]);
  });

  it("sends no next message for a mailbox polled every minute or slower: the keeper polls it", async () => {
    // Prepare: a message of a chain started while B still polled every 10 s.
    const { clock, chains, pollQueue, deps } = chainDeps();
    await chains.start(TENANT, B.id, "c1", clock.now(), undefined);
    // Act
    const step = await runChainStep(
      deps,
      TENANT,
      B,
      { mailboxId: B.id, chain: "c1", seq: 0 },
      UNTIL,
      async () => ({
        kind: "succeeded",
      }),
    );
    // Assess
    expect(step).toMatchObject({ kind: "polled", nextSeq: 1 });
    expect(pollQueue.sent).toEqual([]);
  });
});

describe("keeper-run polls", () => {
  const MINUTE = mailboxConfig({ id: "m@acme.it", pollSeconds: 60 });
  const NINETY = mailboxConfig({ id: "n@acme.it", pollSeconds: 90 });

  it("a tenant needs a poll queue only with a mailbox below a minute", () => {
    // Assess
    expect([chainedPolls(A), chainedPolls(mailboxConfig({ pollSeconds: 59 })), chainedPolls(MINUTE)]).toEqual(
      [true, true, false],
    );
    expect(usesPollQueue([MINUTE, B])).toBe(false);
    expect(usesPollQueue([MINUTE, A])).toBe(true);
  });

  it("is due from half a tick before its next poll's time; the interval is pollSeconds rounded up to whole minutes", () => {
    // Assess
    expect([MINUTE, NINETY, B, mailboxConfig({ pollSeconds: 61 })].map(keeperPollIntervalMs)).toEqual([
      60_000, 120_000, 300_000, 120_000,
    ]);
    expect([dueAtTick(100_000, 69_999), dueAtTick(100_000, 70_000), dueAtTick(100_000, 200_000)]).toEqual([
      false,
      true,
      true,
    ]);
  });

  it("polls a 60-second mailbox at every tick, a 90-second one every other (rounded up), a 300-second one every fifth", async () => {
    // Prepare
    const { clock, deps } = chainDeps();
    await keeperTick(deps, TENANT, [MINUTE, NINETY, B]);
    const polled: string[][] = [];
    // Act: ten ticks a minute apart, each running its due polls (each poll takes 2 s).
    for (let tick = 0; tick < 10; tick++) {
      clock.advance(60_000);
      const tickAt = clock.now();
      const { due } = await keeperTick(deps, TENANT, [MINUTE, NINETY, B]);
      const results = await runKeeperPolls(
        deps,
        TENANT,
        due,
        { tickAt, pollUntil: tickAt + UNTIL, concurrency: 2, mayStart: () => true },
        async (_mailbox, hold) => {
          await hold.end();
          return { kind: "succeeded" };
        },
      );
      polled.push(results.filter((r) => r.result.kind === "polled").map((r) => r.mailboxId));
    }
    // Assess
    const count = (id: string) => polled.filter((ids) => ids.includes(id)).length;
    expect(count(MINUTE.id)).toBe(10);
    expect(count(NINETY.id)).toBe(5);
    expect(count(B.id)).toBe(2);
  });

  it("leaves a mailbox whose keeper-run poll is still running, and takes over one whose poll died", async () => {
    // Prepare
    const { clock, chains, deps } = chainDeps();
    await keeperTick(deps, TENANT, [MINUTE]);
    clock.advance(60_000);
    const [item] = await chains.list(TENANT);
    await chains.take(
      TENANT,
      { mailboxId: MINUTE.id, chain: item!.chain, seq: 0 },
      clock.now(),
      clock.now() + 90_000,
    );
    // Act
    clock.advance(60_000);
    const running = await keeperTick(deps, TENANT, [MINUTE]);
    clock.advance(60_000);
    const dead = await keeperTick(deps, TENANT, [MINUTE]);
    const steps = await runKeeperPolls(
      deps,
      TENANT,
      dead.due,
      { tickAt: clock.now(), pollUntil: clock.now() + UNTIL, concurrency: 1, mayStart: () => true },
      async () => ({ kind: "succeeded" }),
    );
    // Assess
    expect(running.due).toEqual([]);
    expect(dead.due).toEqual([
      { mailbox: MINUTE, message: { mailboxId: MINUTE.id, chain: item!.chain, seq: 0 } },
    ]);
    expect(steps.map((s) => s.result.kind)).toEqual(["polled"]);
    expect(dead.started).toEqual([]);
  });

  it("finds the same due polls alone (for a tick whose problem count failed): keeper-polled, due, not running", async () => {
    // Prepare: A chained, MINUTE due, NINETY not yet due.
    const { clock, deps } = chainDeps();
    await keeperTick(deps, TENANT, [A, MINUTE, NINETY]);
    clock.advance(60_000);
    const tickAt = clock.now();
    await runKeeperPolls(
      deps,
      TENANT,
      (await keeperTick(deps, TENANT, [A, MINUTE, NINETY])).due,
      { tickAt, pollUntil: tickAt + UNTIL, concurrency: 2, mayStart: () => true },
      async () => ({ kind: "succeeded" }),
    );
    clock.advance(60_000);
    // Act
    const alone = await duePollsOnly(deps, TENANT, [A, MINUTE, NINETY]);
    const withTick = (await keeperTick(deps, TENANT, [A, MINUTE, NINETY])).due;
    // Assess
    expect(alone).toEqual(withTick);
    expect(alone.map((p) => [p.mailbox.id, p.message.seq])).toEqual([[MINUTE.id, 1]]);
  });

  it("runs at most `concurrency` polls at once", async () => {
    // Prepare
    const boxes = [1, 2, 3, 4, 5].map((i) => mailboxConfig({ id: `k${i}@acme.it`, pollSeconds: 60 }));
    const { clock, deps } = chainDeps();
    await keeperTick(deps, TENANT, boxes);
    clock.advance(60_000);
    const { due } = await keeperTick(deps, TENANT, boxes);
    let running = 0;
    let most = 0;
    // Act
    const results = await runKeeperPolls(
      deps,
      TENANT,
      due,
      { tickAt: clock.now(), pollUntil: clock.now() + UNTIL, concurrency: 2, mayStart: () => true },
      async () => {
        running++;
        most = Math.max(most, running);
        await new Promise((resolve) => setImmediate(resolve));
        running--;
        return { kind: "succeeded" };
      },
    );
    // Assess
    expect(results.map((r) => r.result.kind)).toEqual(Array(5).fill("polled"));
    expect(most).toBe(2);
  });

  it("takes a keeper-run poll's next time from a login delay longer than its interval, counted from the poll's end", async () => {
    // Prepare
    const { clock, chains, deps } = chainDeps();
    await keeperTick(deps, TENANT, [MINUTE]);
    clock.advance(60_000);
    const tickAt = clock.now();
    const { due } = await keeperTick(deps, TENANT, [MINUTE]);
    // Act
    await runKeeperPolls(
      deps,
      TENANT,
      due,
      { tickAt, pollUntil: tickAt + UNTIL, concurrency: 1, mayStart: () => true },
      async (_mailbox, hold) => {
        clock.advance(5_000);
        await hold.end();
        return { kind: "succeeded", loginDelaySeconds: 90.5 };
      },
    );
    // Assess: 5 s of poll + 91 s of delay, later than the tick + 60 s.
    expect((await chains.list(TENANT))[0]).toMatchObject({ seq: 1, nextPollAt: tickAt + 96_000 });
  });

  it("treats a poll as running up to its pollUntil itself, and due just after", async () => {
    // Prepare
    const { clock, chains, deps } = chainDeps();
    await keeperTick(deps, TENANT, [MINUTE]);
    clock.advance(60_000);
    const [item] = await chains.list(TENANT);
    await chains.take(
      TENANT,
      { mailboxId: MINUTE.id, chain: item!.chain, seq: 0 },
      clock.now(),
      clock.now() + 60_000,
    );
    // Act
    clock.advance(60_000);
    const atUntil = await keeperTick(deps, TENANT, [MINUTE]);
    clock.advance(1);
    const after = await keeperTick(deps, TENANT, [MINUTE]);
    // Assess
    expect(atUntil.due).toEqual([]);
    expect(after.due).toHaveLength(1);
  });

  it("starts no poll once mayStart says no, and reports a chain step that threw", async () => {
    // Prepare
    const { clock, chains, deps } = chainDeps();
    await keeperTick(deps, TENANT, [MINUTE, NINETY]);
    clock.advance(120_000);
    const { due } = await keeperTick(deps, TENANT, [MINUTE, NINETY]);
    const broken = new Error("ledger down");
    chains.take = async () => {
      throw broken;
    };
    let starts = 0;
    // Act
    const results = await runKeeperPolls(
      deps,
      TENANT,
      due,
      { tickAt: clock.now(), pollUntil: clock.now() + UNTIL, concurrency: 1, mayStart: () => starts++ < 1 },
      async () => ({ kind: "succeeded" }),
    );
    // Assess
    expect(due).toHaveLength(2);
    expect(results).toEqual([{ mailboxId: MINUTE.id, result: { kind: "failed", error: broken } }]);
  });
});

describe("keeperTick", () => {
  it("starts a chain for each configured mailbox without one: a first message for a sub-minute one, only the item for one the keeper polls", async () => {
    // Prepare
    const { chains, pollQueue, deps } = chainDeps();
    // Act
    const result = await keeperTick(deps, TENANT, [A, B]);
    const again = await keeperTick(deps, TENANT, [A, B]);
    // Assess
    expect(result).toEqual({ started: [A.id, B.id], startFailed: [], problems: [], due: [] });
    expect(again.started).toEqual([]);
    expect(pollQueue.sent).toEqual([{ message: { mailboxId: A.id, chain: "c1", seq: 0 }, delaySeconds: 0 }]);
    expect((await chains.list(TENANT)).map((i) => [i.mailboxId, i.chain, i.seq])).toEqual([
      [A.id, "c1", 0],
      [B.id, "c2", 0],
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
    expect(first.map((s) => s.delaySeconds)).toEqual([9]);
    expect(items.map((i) => [i.nextPollAt - start, i.firstStartedAt - start])).toEqual([
      [9_000, 0],
      [297_000, 0],
    ]);
    expect(pollQueue.sent.map((s) => s.delaySeconds)).toEqual([0]);
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

  it("reads the queue depths once in five ticks and counts a non-empty dead-letter queue in the tick that reads it", async () => {
    // Prepare: a tick a minute for ten minutes from 09:01 (epoch minute mod 5 = 1)
    const { clock, deps } = chainDeps({ deadLetters: 2, failedDeletes: 0 });
    let reads = 0;
    const counting: KeeperDeps = {
      ...deps,
      problemQueueDepths: () => {
        reads++;
        return deps.problemQueueDepths();
      },
    };
    await keeperTick(counting, TENANT, [A]);
    reads = 0;
    const counted: number[] = [];
    // Act
    for (let i = 0; i < 10; i++) {
      clock.advance(60_000);
      const result = await keeperTick(counting, TENANT, [A]);
      if (result.problems.some((p) => p.cause === "dead-letters"))
        counted.push(new Date(clock.now()).getUTCMinutes());
    }
    // Assess: 09:05 and 09:10 read and count the queue, the eight other ticks neither
    expect(reads).toBe(2);
    expect(counted).toEqual([5, 10]);
  });

  it("leaves the chain of a mailbox no longer configured alone", async () => {
    // Prepare
    const C = mailboxConfig({ id: "c@acme.it", pollSeconds: 30 });
    const { clock, pollQueue, deps } = chainDeps();
    await keeperTick(deps, TENANT, [A, C]);
    pollQueue.sent.length = 0;
    // Act
    clock.advance(3_600_000);
    const result = await keeperTick(deps, TENANT, [C]);
    // Assess
    expect(result.started).toEqual([C.id]);
    expect(result.problems.map((p) => ("mailboxId" in p ? p.mailboxId : p.cause))).toEqual([C.id]);
  });
});
