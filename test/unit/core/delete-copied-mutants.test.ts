import { describe, expect, it } from "vitest";
import { type DeleteDeps, deleteCopied, markDeleted } from "../../../shared/core/delete-copied";
import type { SessionScope } from "../../../shared/core/mailbox-session";
import type { LedgerEntry, LedgerState, ServerMessage } from "../../../shared/core/model";
import type { Pop3Session } from "../../../shared/ports/pop3-source";
import { TestClock } from "../../fakes/in-memory-clock";
import { CountingLedger, InMemoryLedger } from "../../fakes/in-memory-ledger";
import { RecordingTelemetry } from "../../fakes/in-memory-telemetry";
import { mailboxConfig } from "./support/harness";

const mailbox = { tenant: "acme", mailboxId: "info@acme.it" };

/** A session scope over a fixed listing that records DELEs and afterQuit actions (no network). */
class RecordingScope {
  readonly dele: number[] = [];
  readonly afterQuitActions: Array<(committed: boolean) => Promise<void>> = [];
  readonly findArgs: unknown[] = [];
  broken = false;
  constructor(private readonly listing: readonly ServerMessage[]) {}

  asScope(): SessionScope {
    const session = { markDeleted: async (n: number) => void this.dele.push(n) } as unknown as Pop3Session;
    return {
      mailbox,
      config: mailboxConfig(),
      session,
      messages: async () => this.listing,
      identify: async () => this.listing.map((m) => ({ ...m, identity: m.uidl })),
      find: async (uidl: string, content?: unknown) => {
        this.findArgs.push(content);
        return this.listing.find((m) => m.uidl === uidl);
      },
      digestOf: async () => ({ size: 0, sha256: "" }),
      afterQuit: (action) => void this.afterQuitActions.push(action),
      markBroken: () => {
        this.broken = true;
      },
      broken: this.broken,
    };
  }
}

function setup() {
  const ledger = new CountingLedger(new InMemoryLedger());
  const telemetry = new RecordingTelemetry();
  const clock = new TestClock(1_000_000);
  return { ledger, telemetry, clock, deps: { ledger, telemetry, clock } };
}

async function copiedEntry(
  ledger: CountingLedger,
  uidl: string,
  extra: Partial<LedgerEntry> = {},
  state: LedgerState = "imported",
) {
  await ledger.createListed([{ ...mailbox, uidl, listedSize: 5, listedAt: 1 }]);
  return ledger.transition({ ...mailbox, uidl }, ["listed"], state, {
    archiveKey: `k/${uidl}`,
    archivedSize: 5,
    sha256: "a".repeat(64),
    gmailId: `g-${uidl}`,
    importedAt: 1,
    ...extra,
  });
}

describe("deleteCopied (mutation survivors)", () => {
  it("sends no DELE and reads no ledger in a broken session or for a 'never' mailbox", async () => {
    // Prepare
    const { ledger, deps } = setup();
    await copiedEntry(ledger, "u1");
    const broken = new RecordingScope([{ number: 1, uidl: "u1", size: 5 }]);
    broken.broken = true;
    const never = new RecordingScope([{ number: 1, uidl: "u1", size: 5 }]);
    ledger.reset();
    // Act
    const brokenPlan = await deleteCopied(deps, broken.asScope(), mailboxConfig(), { now: 2 });
    const neverPlan = await deleteCopied(deps, never.asScope(), mailboxConfig({ deleteAfter: "never" }), {
      now: 2,
    });
    // Assess
    expect(brokenPlan).toEqual({ marked: [], alreadyGone: [] });
    expect(neverPlan).toEqual({ marked: [], alreadyGone: [] });
    expect([broken.dele, never.dele, ledger.total]).toEqual([[], [], 0]);
  });

  it("registers no afterQuit action when nothing was marked", async () => {
    // Prepare
    const { deps } = setup();
    const scope = new RecordingScope([]);
    // Act
    await deleteCopied(deps, scope.asScope(), mailboxConfig(), { now: 2 });
    // Assess
    expect(scope.afterQuitActions).toEqual([]);
  });

  it("works on the candidates it is handed, not on the whole ledger", async () => {
    // Prepare
    const { ledger, deps } = setup();
    await copiedEntry(ledger, "u1");
    const scope = new RecordingScope([{ number: 1, uidl: "u1", size: 5 }]);
    // Act
    const plan = await deleteCopied(deps, scope.asScope(), mailboxConfig(), { now: 2, candidates: [] });
    // Assess
    expect(plan).toEqual({ marked: [], alreadyGone: [] });
    expect(scope.dele).toEqual([]);
  });

  it("skips UIDLs the ledger does not know", async () => {
    // Prepare
    const { ledger, deps } = setup();
    await copiedEntry(ledger, "u1");
    const scope = new RecordingScope([{ number: 4, uidl: "u1", size: 5 }]);
    // Act
    const plan = await deleteCopied(deps, scope.asScope(), mailboxConfig(), {
      now: 2,
      uidls: ["unknown", "u1"],
    });
    // Assess
    expect(plan.marked).toEqual([{ ...mailbox, uidl: "u1" }]);
    expect(scope.dele).toEqual([4]);
  });
  it("makes the archive durable once before the first DELE, and not when nothing is due", async () => {
    // Prepare
    const { ledger, deps } = setup();
    await copiedEntry(ledger, "u1");
    let flushes = 0;
    const archive = { flush: async () => void flushes++ } as unknown as NonNullable<DeleteDeps["archive"]>;
    const due = new RecordingScope([{ number: 1, uidl: "u1", size: 5 }]);
    // Act
    await deleteCopied({ ...deps, archive }, new RecordingScope([]).asScope(), mailboxConfig(), {
      now: 2,
      candidates: [],
    });
    const afterNothingDue = flushes;
    await deleteCopied({ ...deps, archive }, due.asScope(), mailboxConfig(), { now: 2 });
    // Assess
    expect([afterNothingDue, flushes, due.dele]).toEqual([0, 1, [1]]);
  });

  it("finds a message by the archived size and SHA-256 it knows, and only those", async () => {
    // Prepare
    const { ledger, deps } = setup();
    const full = await copiedEntry(ledger, "u1");
    const scope = new RecordingScope([{ number: 1, uidl: "u1", size: 5 }]);
    const { archivedSize: _s, sha256: _h, ...bare } = full;
    // Act
    await deleteCopied(deps, scope.asScope(), mailboxConfig(), { now: 2, candidates: [full] });
    await deleteCopied(deps, scope.asScope(), mailboxConfig(), { now: 2, candidates: [bare] });
    // Assess
    expect(scope.findArgs).toStrictEqual([{ size: 5, sha256: "a".repeat(64) }]);
  });
});

describe("markDeleted (mutation survivors)", () => {
  it("reports the archive key and Gmail id it knows, and only those", async () => {
    // Prepare
    const { ledger, telemetry, deps } = setup();
    const full = await copiedEntry(ledger, "u1");
    const bare = await copiedEntry(ledger, "u2");
    const { archiveKey: _k, gmailId: _g, ...bareFields } = bare;
    // Act
    await markDeleted(deps, full, 9);
    await markDeleted(deps, bareFields, 9);
    // Assess
    expect(telemetry.ofType("deleted")).toStrictEqual([
      { type: "deleted", ...mailbox, uidl: "u1", archiveKey: "k/u1", gmailId: "g-u1" },
      { type: "deleted", ...mailbox, uidl: "u2" },
    ]);
  });

  it("returns false without an event when an earlier pass already recorded the delete", async () => {
    // Prepare
    const { ledger, telemetry, deps } = setup();
    const entry = await copiedEntry(ledger, "u1");
    await markDeleted(deps, entry, 9);
    // Act
    const again = await markDeleted(deps, entry, 10);
    // Assess
    expect(again).toBe(false);
    expect(telemetry.ofType("deleted")).toHaveLength(1);
    expect((await ledger.get(entry))?.deletedAt).toBe(9);
  });
});

describe("recording deletes after QUIT (mutation survivors)", () => {
  it("records a retained message as deleted, and passes on a ledger failure that is not a lost race", async () => {
    // Prepare
    const { ledger, deps } = setup();
    const retained = await copiedEntry(ledger, "u1", {}, "retained");
    const other = await copiedEntry(ledger, "u2");
    const failing = {
      ...deps,
      ledger: Object.assign(Object.create(ledger), {
        transition: async () => {
          throw new Error("ledger unreachable");
        },
      }) as CountingLedger,
    };
    // Act
    const recorded = await markDeleted(deps, retained, 9);
    const failed = markDeleted(failing, other, 9);
    // Assess
    expect(recorded).toBe(true);
    await expect(failed).rejects.toThrow("ledger unreachable");
  });

  it("records every message a committed QUIT deleted, in one batch or one by one, skipping one a race already recorded", async () => {
    // Prepare
    for (const batched of [true, false]) {
      const store = new InMemoryLedger();
      const ledger = new CountingLedger(store);
      const telemetry = new RecordingTelemetry();
      const clock = new TestClock(1_000_000);
      const used = batched ? ledger : Object.assign(Object.create(ledger), { transitionEach: undefined });
      const deps = { ledger: used as CountingLedger, telemetry, clock };
      const full = await copiedEntry(ledger, "u1");
      const raced = await copiedEntry(ledger, "u3");
      const scope = new RecordingScope([
        { number: 1, uidl: "u1", size: 5 },
        { number: 3, uidl: "u3", size: 5 },
      ]);
      await deleteCopied(deps, scope.asScope(), mailboxConfig(), { now: 2, candidates: [full, raced] });
      await store.transition(raced, ["imported"], "deleted", { deletedAt: 1 });
      // Act
      for (const action of scope.afterQuitActions) await action(true);
      // Assess
      expect({ batched, events: telemetry.ofType("deleted") }).toStrictEqual({
        batched,
        events: [{ type: "deleted", ...mailbox, uidl: "u1", archiveKey: "k/u1", gmailId: "g-u1" }],
      });
      expect((await store.get(full))?.state).toBe("deleted");
    }
  });
});
