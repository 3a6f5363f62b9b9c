import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { SqliteLedger } from "../../../shared/adapters/local/sqlite-ledger";
import { EnvironmentError } from "../../../shared/core/errors";
import { newMailbox } from "../../contract/ledger-contract";

// The group commit's fsync of the write-ahead log fails (an I/O error of the disk): every caller
// it covers is rejected as an environment fault, none resolves as if durable (docs/pipeline.md
// "Group commit"), and the next group syncs again.

const failNextFsync = vi.hoisted(() => ({ armed: false }));
vi.mock("node:fs", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs")>();
  return {
    ...fs,
    fsync: (fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => {
      if (!failNextFsync.armed) return fs.fsync(fd, callback);
      failNextFsync.armed = false;
      const error: NodeJS.ErrnoException = Object.assign(new Error("EIO: i/o error, fsync"), {
        code: "EIO",
        errno: -5,
        syscall: "fsync",
      });
      setImmediate(() => callback(error));
    },
  };
});

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe("SqliteLedger group commit, a failed fsync", () => {
  it("rejects every caller the failed fsync covers with an environment fault; the next group syncs", async () => {
    // Prepare
    const dir = await mkdtemp(join(tmpdir(), "pop2gmail-fsync-fault-"));
    dirs.push(dir);
    const ledger = new SqliteLedger({ path: join(dir, "ledger.sqlite") });
    const mailbox = newMailbox();
    const keys = ["u0", "u1", "u2"].map((uidl) => ({ ...mailbox, uidl }));
    await ledger.createListed(keys.map((key) => ({ ...key, listedSize: 1, listedAt: 1 })));
    failNextFsync.armed = true;
    // Act
    const outcomes = await Promise.allSettled(
      keys.map((key) => ledger.transition(key, ["listed"], "importing")),
    );
    const next = await ledger.recordAttempt({ ...mailbox, uidl: "u0" });
    ledger.close();
    // Assess
    for (const outcome of outcomes) {
      expect(outcome.status).toBe("rejected");
      const reason = (outcome as PromiseRejectedResult).reason as EnvironmentError;
      expect(reason).toBeInstanceOf(EnvironmentError);
      expect(reason).toMatchObject({ code: "ENVIRONMENT_FAULT", errno: "EIO", service: "ledger" });
    }
    expect(next).toBe(1);
  });
});
