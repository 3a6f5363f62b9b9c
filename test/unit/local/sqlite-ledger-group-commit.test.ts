import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { SqliteLedger } from "../../../shared/adapters/local/sqlite-ledger";
import { EnvironmentError, LedgerConflictError } from "../../../shared/core/errors";
import type { MailboxKey, MessageKey } from "../../../shared/core/model";
import { newMailbox } from "../../contract/ledger-contract";

// The SQLite ledger's group commit (docs/pipeline.md "Group commit"): writes asked for together,
// from many mailboxes, share one transaction and one fsync; each caller hears back only after
// the fsync that covers its COMMIT; a failed condition rejects its own caller only; a fault of the database rejects
// the whole group and writes none of it.

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const CHILD = fileURLToPath(new URL("./sqlite-ledger-crash-child.ts", import.meta.url));

const dirs: string[] = [];
const ledgers: SqliteLedger[] = [];
afterAll(async () => {
  for (const ledger of ledgers) ledger.close();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function ledgerPath(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "pop2gmail-group-commit-"));
  dirs.push(dir);
  return join(dir, "ledger.sqlite");
}

/** A ledger that records the size of every group it commits. */
function countingLedger(path: string): { ledger: SqliteLedger; groups: number[] } {
  const groups: number[] = [];
  const ledger = new SqliteLedger({ path, afterCommit: (writes) => groups.push(writes) });
  ledgers.push(ledger);
  return { ledger, groups };
}

function keysOf(mailboxes: readonly MailboxKey[], perMailbox: number): MessageKey[] {
  return mailboxes.flatMap((mailbox) =>
    Array.from({ length: perMailbox }, (_, i) => ({ ...mailbox, uidl: `u${i}` })),
  );
}

async function listAll(ledger: SqliteLedger, keys: readonly MessageKey[]): Promise<void> {
  await ledger.createListed(keys.map((key) => ({ ...key, listedSize: 10, listedAt: 1 })));
}

/** The state of each key as a fresh connection reads it from the file. */
async function statesOnDisk(path: string, keys: readonly MessageKey[]): Promise<(string | undefined)[]> {
  const reader = new SqliteLedger({ path });
  try {
    return await Promise.all(keys.map(async (key) => (await reader.get(key))?.state));
  } finally {
    reader.close();
  }
}

function settle(write: Promise<unknown>): Promise<{ ok: boolean; error?: unknown }> {
  return write.then(
    () => ({ ok: true }),
    (error: unknown) => ({ ok: false, error }),
  );
}

describe("SqliteLedger group commit", () => {
  it("commits transitions asked for at once by 20 mailboxes in one transaction, each durable when it resolves", async () => {
    // Prepare
    const path = await ledgerPath();
    const { ledger, groups } = countingLedger(path);
    const keys = keysOf(
      Array.from({ length: 20 }, () => newMailbox()),
      5,
    );
    await listAll(ledger, keys);
    groups.length = 0;
    // Act
    const written = await Promise.all(
      keys.map((key) => ledger.transition(key, ["listed"], "importing", { importStartedAt: 5 })),
    );
    // Assess
    expect(written.every((entry) => entry.state === "importing")).toBe(true);
    expect(groups).toEqual([100]);
    expect(await statesOnDisk(path, keys)).toEqual(keys.map(() => "importing"));
  });

  it("groups every kind of write (list, transition, batch, attempt, snapshot, lease) into one commit", async () => {
    // Prepare
    const { ledger, groups } = countingLedger(await ledgerPath());
    const [a, b] = [newMailbox(), newMailbox()];
    await listAll(ledger, keysOf([a, b], 3));
    groups.length = 0;
    // Act
    const results = await Promise.all([
      ledger.createListed([{ ...a, uidl: "new", listedSize: 1, listedAt: 1 }]),
      ledger.transition({ ...a, uidl: "u0" }, ["listed"], "importing"),
      ledger.transitionEach(
        [
          { ...b, uidl: "u0" },
          { ...b, uidl: "u1" },
        ],
        ["listed"],
        "retained",
      ),
      ledger.recordAttempt({ ...a, uidl: "u1" }),
      ledger.putSnapshot(b, new Uint8Array([1, 2, 3]), undefined),
      ledger.acquire(a, 1, "me", 60_000),
    ]);
    // Assess
    expect(groups).toEqual([6]);
    expect(results[0]).toHaveLength(1);
    expect(results[2]).toHaveLength(2);
    expect(results[3]).toBe(1);
    expect(results[5]).toEqual({ slot: 0, holder: "me" });
  });

  it("settles a caller only after the fsync that covers its group's COMMIT", async () => {
    // Prepare
    const events: string[] = [];
    const ledger = new SqliteLedger({
      path: await ledgerPath(),
      afterCommit: (writes) => events.push(`commit ${writes}`),
      afterSync: (writes) => events.push(`fsync ${writes}`),
    });
    ledgers.push(ledger);
    const keys = keysOf([newMailbox()], 3);
    await listAll(ledger, keys);
    events.length = 0;
    // Act
    await Promise.all(
      keys.map((key) =>
        ledger.transition(key, ["listed"], "importing").then(() => events.push(`settled ${key.uidl}`)),
      ),
    );
    // Assess
    expect(events).toEqual(["commit 3", "fsync 3", "settled u0", "settled u1", "settled u2"]);
  });

  it("lets a reader see a caller's own writes once its call resolved (read-your-writes)", async () => {
    // Prepare
    const path = await ledgerPath();
    const { ledger } = countingLedger(path);
    const key = { ...newMailbox(), uidl: "u0" };
    await listAll(ledger, [key]);
    // Act
    await ledger.transition(key, ["listed"], "importing", { importStartedAt: 7 });
    const own = await ledger.get(key);
    const byMailbox = await ledger.listByState(key, ["importing"]);
    // Assess
    expect(own).toMatchObject({ state: "importing", importStartedAt: 7 });
    expect(byMailbox.map((entry) => entry.uidl)).toEqual(["u0"]);
    expect(await statesOnDisk(path, [key])).toEqual(["importing"]);
  });

  it("rejects only the caller whose condition fails; its neighbours in the group are written", async () => {
    // Prepare
    const path = await ledgerPath();
    const { ledger, groups } = countingLedger(path);
    const keys = keysOf(
      Array.from({ length: 5 }, () => newMailbox()),
      2,
    );
    await listAll(ledger, keys);
    groups.length = 0;
    const [wrongState, raced, ...others] = keys as [MessageKey, MessageKey, ...MessageKey[]];
    // Act: one from a state the entry is not in, two racing on one entry, the rest plain.
    const outcomes = await Promise.all([
      settle(ledger.transition(wrongState, ["importing"], "imported")),
      settle(ledger.transition(raced, ["listed"], "importing")),
      settle(ledger.transition(raced, ["listed"], "importing")),
      settle(ledger.recordAttempt({ ...raced, uidl: "missing" })),
      ...others.map((key) => settle(ledger.transition(key, ["listed"], "importing"))),
    ]);
    // Assess
    expect(groups).toEqual([outcomes.length]);
    expect(outcomes[0]?.error).toBeInstanceOf(LedgerConflictError);
    expect(outcomes[1]).toEqual({ ok: true });
    expect(outcomes[2]?.error).toBeInstanceOf(LedgerConflictError);
    expect(outcomes[3]?.error).toBeInstanceOf(LedgerConflictError);
    expect(outcomes.slice(4).every((outcome) => outcome.ok)).toBe(true);
    expect(await statesOnDisk(path, keys)).toEqual(["listed", "importing", ...others.map(() => "importing")]);
  });

  it("rejects every caller of a group with an environment fault when the disk is full, and writes none of them", async () => {
    // Prepare
    const path = await ledgerPath();
    const { ledger, groups } = countingLedger(path);
    const keys = keysOf(
      Array.from({ length: 4 }, () => newMailbox()),
      3,
    );
    await listAll(ledger, keys);
    groups.length = 0;
    // A real SQLITE_FULL: the database may not grow past the pages it has now (the private
    // connection is the only way to set this per-connection limit).
    const db = (ledger as unknown as { db: Database.Database }).db;
    const pages = db.pragma("page_count", { simple: true }) as number;
    db.pragma(`max_page_count = ${pages}`);
    const [big, ...small] = keys as [MessageKey, ...MessageKey[]];
    // Act: small writes that fit, and one that needs pages the "disk" does not have.
    const outcomes = await Promise.all([
      ...small.map((key) => settle(ledger.transition(key, ["listed"], "importing"))),
      settle(ledger.transition(big, ["listed"], "imported", { gmailId: "x".repeat(200_000) })),
    ]);
    const afterFault = await statesOnDisk(path, keys);
    db.pragma(`max_page_count = ${2 ** 30}`);
    const healed = await ledger.transition(big, ["listed"], "importing");
    // Assess
    expect(outcomes.every((outcome) => !outcome.ok)).toBe(true);
    for (const outcome of outcomes) {
      expect(outcome.error).toBeInstanceOf(EnvironmentError);
      expect(outcome.error).toMatchObject({ code: "ENVIRONMENT_FAULT", service: "ledger" });
      expect((outcome.error as EnvironmentError).errno).toMatch(/^SQLITE_FULL/);
    }
    expect(afterFault).toEqual(keys.map(() => "listed"));
    expect(groups).toEqual([1]);
    expect(healed.state).toBe("importing");
  });

  it("commits writes still queued when the ledger is closed", async () => {
    // Prepare
    const path = await ledgerPath();
    const ledger = new SqliteLedger({ path });
    const key = { ...newMailbox(), uidl: "u0" };
    await listAll(ledger, [key]);
    // Act
    const pending = ledger.transition(key, ["listed"], "importing");
    ledger.close();
    // Assess
    await expect(pending).resolves.toMatchObject({ state: "importing" });
    expect(await statesOnDisk(path, [key])).toEqual(["importing"]);
  });

  for (const [mode, expected] of [
    ["before-commit", "listed"],
    ["after-commit", "importing"],
    ["after-sync", "importing"],
  ] as const) {
    it(`keeps ${expected === "listed" ? "none" : "all"} of a group's writes when the process is killed ${mode.replace("-", " ")}`, async () => {
      // Prepare
      const path = await ledgerPath();
      const count = 20;
      // Act
      const { signal, stdout, stderr } = await new Promise<{
        signal: NodeJS.Signals | null;
        stdout: string;
        stderr: string;
      }>((resolve) => {
        execFile(
          process.execPath,
          ["--import", "tsx", CHILD, path, mode, String(count)],
          { cwd: ROOT },
          (error, out, err) => resolve({ signal: error?.signal ?? null, stdout: out, stderr: err }),
        );
      });
      const keys = Array.from({ length: count }, (_, i) => ({
        tenant: "acme",
        mailboxId: `box-${i % 5}@acme.example`,
        uidl: `u${i}`,
      }));
      // Assess
      expect({ signal, stdout, stderr }).toEqual({ signal: "SIGKILL", stdout: "listed\n", stderr: "" });
      expect(await statesOnDisk(path, keys)).toEqual(keys.map(() => expected));
    });
  }
});
