import { describe, expect, it } from "vitest";
import {
  DEFAULT_KEEPER_POLICY,
  type KeeperDeps,
  keeperTick,
  type TenantProblem,
} from "../../../shared/core/poll-chain";
import {
  DEFAULT_MAIL_PROBLEM_POLICY,
  mailChecksDue,
  mailProblems,
  tenantProblemLog,
} from "../../../shared/core/tenant-problems";
import { TestClock } from "../../fakes/in-memory-clock";
import { CountingLedger, InMemoryLedger } from "../../fakes/in-memory-ledger";
import { InMemoryPollChains, RecordingPollQueue } from "../../fakes/in-memory-poll-chains";
import { mailboxConfig, TENANT } from "./support/harness";

const A = mailboxConfig({ id: "a@acme.it", pollSeconds: 60 });
const B = mailboxConfig({ id: "b@acme.it", pollSeconds: 60 });
const MINUTE = 60_000;
/** What the checks find, every mailbox at every tick (the turns are tested on their own below). */
const EVERY_TICK = { ...DEFAULT_KEEPER_POLICY, mailChecksEveryTicks: 1 };

/** The keeper's ports on in-memory doubles, with a ledger, and the test clock. */
function keeper() {
  const clock = new TestClock();
  const ledger = new InMemoryLedger();
  let ids = 0;
  const deps: KeeperDeps = {
    chains: new InMemoryPollChains(),
    pollQueue: new RecordingPollQueue(),
    clock,
    ledger,
    newChainId: () => `c${++ids}`,
    random: () => 0,
    problemQueueDepths: async () => ({ deadLetters: 0, failedDeletes: 0 }),
  };
  /** A message of `mailboxId` listed now. */
  const list = async (mailboxId: string, uidl: string) => {
    await ledger.createListed([{ tenant: TENANT, mailboxId, uidl, listedSize: 10, listedAt: clock.now() }]);
    return { tenant: TENANT, mailboxId, uidl };
  };
  return { clock, ledger, deps, list };
}

/** The problems about the mail itself (the chain's not-polled problems are poll-chain.test.ts's). */
function mailOnly(problems: readonly TenantProblem[]): TenantProblem[] {
  return problems.filter((p) => p.cause === "mail-stuck" || p.cause === "quarantined");
}

describe("keeperTick: mail not in Gmail", () => {
  it("counts a mailbox whose message has waited 16 minutes after listing as a problem", async () => {
    // Prepare
    const { clock, deps, list } = keeper();
    const listedAt = clock.now();
    await list(A.id, "u1");
    // Act
    clock.advance(16 * MINUTE);
    const result = await keeperTick(deps, TENANT, [A, B], EVERY_TICK);
    // Assess
    expect(mailOnly(result.problems)).toEqual([
      { cause: "mail-stuck", mailboxId: A.id, uidl: "u1", state: "listed", listedAt },
    ]);
  });

  it("counts a message only after 15 minutes, and not once it is in Gmail", async () => {
    // Prepare
    const { clock, ledger, deps, list } = keeper();
    const key = await list(A.id, "u1");
    // Act
    clock.advance(15 * MINUTE);
    const atFifteen = await keeperTick(deps, TENANT, [A], EVERY_TICK);
    clock.advance(1);
    const past = await keeperTick(deps, TENANT, [A], EVERY_TICK);
    await ledger.transition(key, ["listed"], "archived");
    await ledger.transition(key, ["archived"], "imported");
    const imported = await keeperTick(deps, TENANT, [A], EVERY_TICK);
    // Assess
    expect(mailOnly(atFifteen.problems)).toEqual([]);
    expect(mailOnly(past.problems).map((p) => p.cause)).toEqual(["mail-stuck"]);
    expect(mailOnly(imported.problems)).toEqual([]);
  });

  it("counts a message stuck archived or importing (a lost job, a stale claim), once per mailbox however many wait", async () => {
    // Prepare
    const { clock, ledger, deps, list } = keeper();
    const archived = await list(A.id, "a1");
    await list(A.id, "a2");
    await ledger.transition(archived, ["listed"], "archived");
    const importing = await list(B.id, "b1");
    await ledger.transition(importing, ["listed"], "archived");
    await ledger.transition(importing, ["archived"], "importing", { importStartedAt: clock.now() });
    // Act
    clock.advance(20 * MINUTE);
    const result = await keeperTick(deps, TENANT, [A, B], EVERY_TICK);
    // Assess
    const stuck = mailOnly(result.problems);
    expect(stuck.map((p) => ("mailboxId" in p ? p.mailboxId : ""))).toEqual([A.id, B.id]);
    expect(stuck[1]).toMatchObject({ cause: "mail-stuck", state: "importing", uidl: "b1" });
  });

  it("does not look at mailboxes no longer configured, nor at another tenant's", async () => {
    // Prepare
    const { clock, ledger, deps, list } = keeper();
    await list(B.id, "gone");
    await ledger.createListed([
      { tenant: "other", mailboxId: A.id, uidl: "x", listedSize: 1, listedAt: clock.now() },
    ]);
    // Act
    clock.advance(60 * MINUTE);
    const result = await keeperTick(deps, TENANT, [A], EVERY_TICK);
    // Assess
    expect(mailOnly(result.problems)).toEqual([]);
  });
});

describe("keeperTick: quarantined mail", () => {
  it("counts a mailbox with a message quarantined in the last hour, and no longer after the hour", async () => {
    // Prepare
    const { clock, ledger, deps, list } = keeper();
    const key = await list(A.id, "big");
    const quarantinedAt = clock.now() + MINUTE;
    clock.advance(MINUTE);
    await ledger.transition(key, ["listed"], "quarantined", {
      quarantinedAt,
      quarantineCode: "MESSAGE_TOO_LARGE",
      quarantineReason: "36 MB",
    });
    // Act
    const now = await keeperTick(deps, TENANT, [A, B], EVERY_TICK);
    clock.advance(60 * MINUTE);
    const atTheHour = await keeperTick(deps, TENANT, [A, B], EVERY_TICK);
    clock.advance(1);
    const after = await keeperTick(deps, TENANT, [A, B], EVERY_TICK);
    // Assess
    const expected = {
      cause: "quarantined",
      mailboxId: A.id,
      uidl: "big",
      quarantinedAt,
      quarantineCode: "MESSAGE_TOO_LARGE",
    };
    expect(mailOnly(now.problems)).toEqual([expected]);
    expect(mailOnly(atTheHour.problems)).toEqual([expected]);
    expect(mailOnly(after.problems)).toEqual([]);
  });
});

describe("keeperTick: each mailbox's mail checked in turn", () => {
  /** Ten mailboxes polled every minute, one of them (m3) with a message listed 16 minutes ago. */
  async function tenMailboxesOneStuck(deadLetters = 0) {
    const k = keeper();
    const boxes = Array.from({ length: 10 }, (_, i) =>
      mailboxConfig({ id: `m${i}@acme.it`, pollSeconds: 60 }),
    );
    await k.list("m3@acme.it", "u1");
    k.clock.advance(16 * MINUTE);
    /** The mailboxes whose mail the current tick asked the ledger about. */
    let asked: string[] = [];
    const deps: KeeperDeps = {
      ...k.deps,
      problemQueueDepths: async () => ({ deadLetters, failedDeletes: 0 }),
      ledger: {
        findInState: (key, states, filter) => {
          asked.push(key.mailboxId);
          return k.ledger.findInState(key, states, filter);
        },
      },
    };
    /** One tick a minute for `ticks` minutes: what each tick asked about and counted. */
    const ticks = async (count: number) => {
      const seen: { asked: string[]; problems: TenantProblem[] }[] = [];
      for (let i = 0; i < count; i++) {
        asked = [];
        const result = await keeperTick(deps, TENANT, boxes);
        seen.push({ asked, problems: [...result.problems] });
        k.clock.advance(MINUTE);
      }
      return seen;
    };
    return { ...k, boxes, ticks };
  }

  it("checks each mailbox's mail once in five ticks and counts a stuck mailbox in the tick that checks it", async () => {
    // Prepare
    const { boxes, ticks } = await tenMailboxesOneStuck();
    // Act
    const seen = await ticks(5);
    // Assess: every mailbox asked twice (waiting states, quarantine) in exactly one of the five ticks
    expect(seen.flatMap((t) => t.asked).sort()).toEqual(boxes.flatMap((b) => [b.id, b.id]).sort());
    for (const t of seen) expect(t.asked.length).toBeLessThan(2 * boxes.length);
    const checking = seen.findIndex((t) => t.asked.includes("m3@acme.it"));
    const counted = seen.flatMap((t, i) => (mailOnly(t.problems).length > 0 ? [i] : []));
    expect(counted).toEqual([checking]);
    expect(mailOnly(seen[checking]?.problems ?? [])).toMatchObject([
      { cause: "mail-stuck", mailboxId: "m3@acme.it", uidl: "u1" },
    ]);
  });

  it("counts a quarantine at each of its mailbox's checks within the hour: 12 of 60 ticks", async () => {
    // Prepare
    const { ledger, clock, ticks } = await tenMailboxesOneStuck();
    const key = { tenant: TENANT, mailboxId: "m7@acme.it", uidl: "big" };
    await ledger.createListed([{ ...key, listedSize: 10, listedAt: clock.now() }]);
    await ledger.transition(key, ["listed"], "quarantined", { quarantinedAt: clock.now() });
    // Act
    const seen = await ticks(65);
    // Assess
    const counted = seen.flatMap((t, i) => (t.problems.some((p) => p.cause === "quarantined") ? [i] : []));
    expect(counted).toHaveLength(12);
    expect(counted.every((i) => i % 5 === (counted[0] ?? 0) % 5 && i <= 60)).toBe(true);
  });

  it("checks a mailbox at the same tick of every five, and the problem queues at the ticks of minute 0 mod 5", async () => {
    // Prepare
    const { ticks } = await tenMailboxesOneStuck(2);
    // Act
    const seen = await ticks(10);
    // Assess
    const counted = seen.flatMap((t, i) => (mailOnly(t.problems).length > 0 ? [i] : []));
    expect(counted).toHaveLength(2);
    expect((counted[1] ?? 0) - (counted[0] ?? 0)).toBe(5);
    // The ticks run at 09:16 to 09:25: the queues are read at 09:20 and 09:25
    const deadLetters = seen.flatMap((t, i) =>
      t.problems.some((p) => p.cause === "dead-letters") ? [i] : [],
    );
    expect(deadLetters).toEqual([4, 9]);
  });
});

describe("mailChecksDue: which mailboxes a tick checks", () => {
  it("spreads a tenant's mailboxes over the five minutes, each at one of them, every window alike", () => {
    // Prepare
    const ids = Array.from({ length: 50 }, (_, i) => `user${i}@acme.it`);
    const window = Date.UTC(2026, 0, 15, 9, 5, 30);
    // Act
    const perMinute = [0, 1, 2, 3, 4].map((m) => ids.filter((id) => mailChecksDue(id, window + m * MINUTE)));
    const nextWindow = [0, 1, 2, 3, 4].map((m) =>
      ids.filter((id) => mailChecksDue(id, window + (5 + m) * MINUTE)),
    );
    // Assess
    expect(perMinute.flat().sort()).toEqual([...ids].sort());
    for (const checked of perMinute) expect(checked.length).toBeGreaterThanOrEqual(5);
    for (const checked of perMinute) expect(checked.length).toBeLessThanOrEqual(15);
    expect(nextWindow).toEqual(perMinute);
    expect(ids.every((id) => mailChecksDue(id, window, 1))).toBe(true);
  });
});

describe("mailProblems: what it reads", () => {
  it("asks the ledger two yes/no questions per mailbox and finds nothing in a healthy tenant", async () => {
    // Prepare
    const ledger = new CountingLedger(new InMemoryLedger());
    // Act
    const problems = await mailProblems({ ledger }, TENANT, [A, B], 1_000_000_000);
    // Assess
    expect(problems).toEqual([]);
    expect(Object.fromEntries(ledger.calls)).toEqual({ findInState: 4 });
  });

  it("reads nothing without a ledger (the chain's own unit tests)", async () => {
    // Act
    const problems = await mailProblems({}, TENANT, [A], 0);
    // Assess
    expect(problems).toEqual([]);
  });

  it("reads every mailbox of a tenant larger than one batch", async () => {
    // Prepare
    const inner = new InMemoryLedger();
    const ledger = new CountingLedger(inner);
    const many = Array.from({ length: 19 }, (_, i) => mailboxConfig({ id: `m${i}@acme.it` }));
    await inner.createListed(
      many.map((m) => ({ tenant: TENANT, mailboxId: m.id, uidl: "u", listedSize: 1, listedAt: 0 })),
    );
    // Act
    const problems = await mailProblems(
      { ledger },
      TENANT,
      many,
      DEFAULT_MAIL_PROBLEM_POLICY.stuckAfterMs + 1,
    );
    // Assess
    expect(problems.map((p) => p.mailboxId)).toEqual(many.map((m) => m.id));
    expect(ledger.calls.get("findInState")).toBe(38);
  });
});

describe("tenantProblemLog: the keeper's `tenant problem` line", () => {
  it("names the mailbox and cause of every problem, dates as ISO text, and what to do", () => {
    // Prepare
    const problems: TenantProblem[] = [
      { cause: "not-polled", mailboxId: A.id, since: 0, lastFailure: "retryable" },
      { cause: "credentials", mailboxId: A.id },
      { cause: "dead-letters", messages: 2 },
      { cause: "failed-deletes", messages: 1 },
      { cause: "mail-stuck", mailboxId: A.id, uidl: "u", state: "archived", listedAt: 0 },
      { cause: "quarantined", mailboxId: A.id, uidl: "u", quarantinedAt: 0 },
    ];
    // Act
    const lines = problems.map((p) => tenantProblemLog(TENANT, p));
    // Assess
    for (const [i, line] of lines.entries()) {
      expect(line.cause).toBe(problems[i]?.cause);
      expect(String(line.action).length, String(line.cause)).toBeGreaterThan(20);
      if ("mailboxId" in problems[i]!) expect(line.mailboxId).toBe(A.id);
    }
    expect(lines[0]?.since).toBe("1970-01-01T00:00:00.000Z");
    expect(lines[2]?.action).toContain(`redrive --aws --tenant ${TENANT}`);
    expect(lines[4]).toMatchObject({ listedAt: "1970-01-01T00:00:00.000Z", state: "archived" });
    expect(lines[4]?.action).toContain("copy-message log");
    expect(lines[5]).toMatchObject({ quarantinedAt: "1970-01-01T00:00:00.000Z" });
    expect(lines[5]?.action).toContain(`quarantine list --aws --tenant ${TENANT}`);
  });
});
