import { describe, expect, it } from "vitest";
import { LedgerConflictError } from "../../../shared/core/errors";
import { encodeSnapshot, readSnapshot, uidlHash } from "../../../shared/core/mailbox-snapshot";
import type { LedgerState, MessageKey } from "../../../shared/core/model";
import { quarantine } from "../../../shared/core/quarantine";
import { releaseFromQuarantine } from "../../../shared/core/release-from-quarantine";
import type { LedgerUpdate } from "../../../shared/ports/ledger";
import { InMemoryLedger } from "../../fakes/in-memory-ledger";
import { RecordingTelemetry } from "../../fakes/in-memory-telemetry";

const mailbox = { tenant: "acme", mailboxId: "info@acme.it" };
const keyOf = (uidl: string): MessageKey => ({ ...mailbox, uidl });

/** An in-memory ledger whose next writes can be made to lose a race. */
class RacingLedger extends InMemoryLedger {
  transitionConflicts = 0;
  snapshotConflicts = 0;
  snapshotWrites = 0;
  snapshotFailure: Error | undefined;
  transitionFailure: Error | undefined;

  override async transition(
    key: MessageKey,
    from: readonly LedgerState[],
    to: LedgerState,
    update?: LedgerUpdate,
  ) {
    if (this.transitionFailure) throw this.transitionFailure;
    if (this.transitionConflicts > 0) {
      this.transitionConflicts--;
      throw new LedgerConflictError("another worker moved it");
    }
    return super.transition(key, from, to, update);
  }

  override async putSnapshot(
    mailboxKey: typeof mailbox,
    body: Uint8Array,
    expected: number | undefined,
    shard?: number,
  ) {
    this.snapshotWrites++;
    if (this.snapshotFailure) throw this.snapshotFailure;
    if (this.snapshotConflicts > 0) {
      this.snapshotConflicts--;
      throw new LedgerConflictError("a poll wrote in between");
    }
    return super.putSnapshot(mailboxKey, body, expected, shard);
  }
}

async function entryIn(ledger: InMemoryLedger, uidl: string, state: LedgerState, update: LedgerUpdate = {}) {
  await ledger.createListed([{ ...keyOf(uidl), listedSize: 5, listedAt: 1 }]);
  if (state !== "listed") await ledger.transition(keyOf(uidl), ["listed"], state, update);
}

async function snapshotWith(ledger: InMemoryLedger, uidls: string[]): Promise<void> {
  const entries = new Map(uidls.map((uidl) => [uidlHash(uidl), { kind: "parked" as const, at: 1_000 }]));
  await ledger.putSnapshot(mailbox, encodeSnapshot(entries), undefined);
}

describe("quarantine (mutation survivors)", () => {
  it("quarantines an archived entry by default and reports its archive key and size", async () => {
    // Prepare
    const ledger = new InMemoryLedger();
    const telemetry = new RecordingTelemetry();
    await entryIn(ledger, "u1", "archived", { archiveKey: "k/u1", archivedSize: 5, sha256: "a".repeat(64) });
    // Act
    const entry = await quarantine({ ledger, telemetry }, keyOf("u1"), "CODE", "why", 7);
    // Assess
    expect(entry?.state).toBe("quarantined");
    expect(telemetry.ofType("quarantined")).toStrictEqual([
      { type: "quarantined", ...keyOf("u1"), code: "CODE", reason: "why", archiveKey: "k/u1", bytes: 5 },
    ]);
  });

  it("reports a listed entry without archive fields", async () => {
    // Prepare
    const ledger = new InMemoryLedger();
    const telemetry = new RecordingTelemetry();
    await entryIn(ledger, "u1", "listed");
    // Act
    await quarantine({ ledger, telemetry }, keyOf("u1"), "CODE", "why", 7);
    // Assess
    expect(telemetry.ofType("quarantined")).toStrictEqual([
      { type: "quarantined", ...keyOf("u1"), code: "CODE", reason: "why" },
    ]);
  });

  it("returns undefined and reports nothing when another worker moved the entry first", async () => {
    // Prepare
    const ledger = new InMemoryLedger();
    const telemetry = new RecordingTelemetry();
    await entryIn(ledger, "u1", "imported", { gmailId: "g" });
    // Act
    const entry = await quarantine({ ledger, telemetry }, keyOf("u1"), "CODE", "why", 7);
    // Assess
    expect(entry).toBeUndefined();
    expect(telemetry.ofType("quarantined")).toEqual([]);
  });
  it("passes on a ledger failure that is not a lost race", async () => {
    // Prepare
    const ledger = new RacingLedger();
    await entryIn(ledger, "u1", "listed");
    ledger.transitionFailure = new Error("ledger unreachable");
    // Act
    const quarantined = quarantine({ ledger, telemetry: new RecordingTelemetry() }, keyOf("u1"), "C", "r", 7);
    // Assess
    await expect(quarantined).rejects.toThrow("ledger unreachable");
  });
});

describe("releaseFromQuarantine (mutation survivors)", () => {
  it("returns undefined for an unknown or not quarantined entry and changes nothing", async () => {
    // Prepare
    const ledger = new InMemoryLedger();
    await entryIn(ledger, "u1", "archived", { archiveKey: "k", sha256: "a".repeat(64) });
    // Act
    const unknown = await releaseFromQuarantine({ ledger }, keyOf("nope"));
    const notQuarantined = await releaseFromQuarantine({ ledger }, keyOf("u1"));
    // Assess
    expect(unknown).toBeUndefined();
    expect(notQuarantined).toBeUndefined();
    expect((await ledger.get(keyOf("u1")))?.state).toBe("archived");
  });

  it("sends an entry back to archived only with both archive key and SHA-256", async () => {
    // Prepare
    const ledger = new InMemoryLedger();
    await entryIn(ledger, "both", "quarantined", { archiveKey: "k", sha256: "a".repeat(64), attempts: 3 });
    await entryIn(ledger, "key-only", "quarantined", { archiveKey: "k" });
    await entryIn(ledger, "hash-only", "quarantined", { sha256: "a".repeat(64) });
    await entryIn(ledger, "neither", "quarantined");
    // Act
    const states = [];
    for (const uidl of ["both", "key-only", "hash-only", "neither"]) {
      const released = await releaseFromQuarantine({ ledger }, keyOf(uidl));
      states.push([uidl, released?.state, released?.attempts]);
    }
    // Assess
    expect(states).toEqual([
      ["both", "archived", 0],
      ["key-only", "listed", 0],
      ["hash-only", "listed", 0],
      ["neither", "listed", 0],
    ]);
  });

  it("passes on a ledger failure of the release that is not a lost race", async () => {
    // Prepare
    const ledger = new RacingLedger();
    await entryIn(ledger, "u1", "quarantined");
    ledger.transitionFailure = new Error("ledger unreachable");
    // Act
    const released = releaseFromQuarantine({ ledger }, keyOf("u1"));
    // Assess
    await expect(released).rejects.toThrow("ledger unreachable");
  });

  it("returns undefined when the release loses the race for the entry", async () => {
    // Prepare
    const ledger = new RacingLedger();
    await entryIn(ledger, "u1", "quarantined");
    ledger.transitionConflicts = 1;
    // Act
    const released = await releaseFromQuarantine({ ledger }, keyOf("u1"));
    // Assess
    expect(released).toBeUndefined();
    expect((await ledger.get(keyOf("u1")))?.state).toBe("quarantined");
  });

  it("forgets the UIDL in the snapshot, and works without a snapshot", async () => {
    // Prepare
    const ledger = new InMemoryLedger();
    await entryIn(ledger, "u1", "quarantined");
    await entryIn(ledger, "u2", "quarantined");
    const bare = new InMemoryLedger();
    await entryIn(bare, "u1", "quarantined");
    await snapshotWith(ledger, ["u1", "u2"]);
    // Act
    await releaseFromQuarantine({ ledger }, keyOf("u1"));
    const withoutSnapshot = await releaseFromQuarantine({ ledger: bare }, keyOf("u1"));
    // Assess
    const left = (await readSnapshot(ledger, mailbox)).entries;
    expect([...left.keys()]).toEqual([uidlHash("u2")]);
    expect(withoutSnapshot?.state).toBe("listed");
  });

  it("re-reads and retries the snapshot write up to five times when polls keep writing in between", async () => {
    // Prepare
    const ledger = new RacingLedger();
    await entryIn(ledger, "u1", "quarantined");
    await entryIn(ledger, "u2", "quarantined");
    await snapshotWith(ledger, ["u1", "u2"]);
    ledger.snapshotWrites = 0;
    ledger.snapshotConflicts = 4;
    // Act
    await releaseFromQuarantine({ ledger }, keyOf("u1"));
    // Assess
    expect(ledger.snapshotWrites).toBe(5);
    expect([...(await readSnapshot(ledger, mailbox)).entries.keys()]).toEqual([uidlHash("u2")]);
  });

  it("gives up after the fifth lost snapshot write, and at once on any other error", async () => {
    // Prepare
    const racing = new RacingLedger();
    await entryIn(racing, "u1", "quarantined");
    await snapshotWith(racing, ["u1"]);
    racing.snapshotWrites = 0;
    racing.snapshotConflicts = 5;
    const failing = new RacingLedger();
    await entryIn(failing, "u1", "quarantined");
    await snapshotWith(failing, ["u1"]);
    failing.snapshotWrites = 0;
    failing.snapshotFailure = new Error("disk on fire");
    // Act
    const raced = releaseFromQuarantine({ ledger: racing }, keyOf("u1"));
    const failed = releaseFromQuarantine({ ledger: failing }, keyOf("u1"));
    // Assess
    await expect(raced).rejects.toBeInstanceOf(LedgerConflictError);
    expect(racing.snapshotWrites).toBe(5);
    await expect(failed).rejects.toThrow("disk on fire");
    expect(failing.snapshotWrites).toBe(1);
  });
});
