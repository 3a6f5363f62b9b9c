import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeRun } from "../../cli/commands/run";
import { createLocalRuntime, type LocalRuntimeOverrides } from "../../cli/runtime/local-runtime";
import { runForever, runOnce } from "../../cli/runtime/run-local";
import { parseLocalConfig } from "../../shared/config/local-config";
import { TransientError } from "../../shared/core/errors";
import type { ArchiveStore } from "../../shared/ports/archive-store";
import type { SecretStore } from "../../shared/ports/secret-store";
import { TestClock } from "../fakes/in-memory-clock";
import { RawPop3Reader } from "../fakes/raw-pop3-reader";
import { ScriptedPop3Server, type ScriptedPop3ServerOptions } from "../fakes/scripted-pop3-server";
import { generateMailbox } from "../fixtures/awkward-messages";
import { type LocalWorld, startLocalWorld } from "./support/local-world";

/**
 * The local runtime in-process (no child process): how `runOnce` reports a mailbox it could not
 * work on. A busy or broken mailbox is never "done", and the operator is told what to do.
 */
const oauth = { clientId: "rt", clientSecret: "rt-secret", refreshToken: "rt-refresh" };

describe("local runtime runOnce", () => {
  let dir: string;
  let google: { baseUrl: string; tokenUrl: string };
  const servers: ScriptedPop3Server[] = [];

  let world: LocalWorld | undefined;

  beforeAll(async () => {
    world = await startLocalWorld("pop2gmail-runtime-", "owner@acme.example", oauth, servers);
    ({ dir, google } = world);
  });

  afterAll(() => world?.stop());

  async function runtimeFor(
    name: string,
    password: string,
    extra: {
      overrides?: LocalRuntimeOverrides;
      deliver?: ScriptedPop3ServerOptions["deliver"];
    } = {},
  ) {
    const server = new ScriptedPop3Server({
      users: { box: "right" },
      messages: generateMailbox(3, 81).map((m) => m.bytes),
      ...(extra.deliver === undefined ? {} : { deliver: extra.deliver }),
    });
    servers.push(server);
    const { port } = await server.start();
    const config = parseLocalConfig(
      {
        tenant: "acme",
        google: { apiBaseUrl: google.baseUrl, tokenUrl: google.tokenUrl },
        local: { dataDir: join(dir, name), maxRetryWaitSeconds: 0 },
        mailboxes: [
          {
            id: `${name}@acme.example`,
            pop3: {
              host: "127.0.0.1",
              port,
              tls: "none",
              allowPlaintext: true,
              user: "box",
              passwordSecret: "pop3",
            },
            gmail: { user: "owner@acme.example", credentialsSecret: "google" },
          },
        ],
      },
      dir,
    );
    const secrets: SecretStore = { get: async (n) => (n === "pop3" ? password : JSON.stringify(oauth)) };
    return {
      runtime: createLocalRuntime(config, { secrets, clock: new TestClock(), ...extra.overrides }),
      server,
      port,
      dataDir: config.local.dataDir,
    };
  }

  it("reports a wrong POP3 password as the mailbox's failure with what to do, and is not ok", async () => {
    // Prepare
    const { runtime } = await runtimeFor("wrong", "not-the-password");
    // Act
    const summary = await runOnce(runtime).finally(() => runtime.close());
    // Assess
    expect(summary.ok).toBe(false);
    expect(summary.mailboxes[0]?.failure).toMatchObject({
      code: "CREDENTIALS_REJECTED",
      hint: expect.stringContaining("password"),
    });
    expect(describeRun(summary)).toMatch(/FAILED: .*\n {2}what to do: /);
    expect(describeRun(summary)).not.toContain("not-the-password");
  });

  it("treats a mailbox locked by another client as busy, then finishes once it is free", async () => {
    // Prepare
    const { runtime, server, port } = await runtimeFor("busy", "right");
    const otherClient = await RawPop3Reader.login("127.0.0.1", port, "box", "right");
    // Act
    const whileLocked = await runOnce(runtime);
    await otherClient.quit();
    const afterwards = await runOnce(runtime).finally(() => runtime.close());
    // Assess
    expect(whileLocked.ok).toBe(false);
    expect(whileLocked.mailboxes[0]?.busy).toBe("IN-USE");
    expect(describeRun(whileLocked)).toContain("try again later");
    expect(afterwards.ok).toBe(true);
    expect(afterwards.mailboxes[0]).toMatchObject({ copied: 3, deleted: 3, inFlight: 0 });
    expect(server.remainingMessages()).toHaveLength(0);
  });

  it("stops a pass on a full disk without spending attempts, is not ok, and delivers once space is freed", async () => {
    // Prepare
    let diskFull = true;
    const { runtime, server } = await runtimeFor("full", "right", {
      overrides: { decorateArchive: (files) => fillingDisk(files, () => diskFull) },
    });
    const key = { tenant: "acme", mailboxId: "full@acme.example" };

    // Act: more runs than maxAttempts while the disk is full, then one after space was freed.
    const whileFull = [];
    for (let run = 0; run < 7; run++) whileFull.push(await runOnce(runtime));
    const ledgerWhileFull = await runtime.ledger.listByState(key, ["listed", "quarantined"]);
    diskFull = false;
    const afterwards = await runOnce(runtime);
    const quarantinedAfter = await runtime.ledger.listByState(key, ["quarantined"]);
    await runtime.close();

    // Assess
    for (const summary of whileFull) {
      expect(summary.ok).toBe(false);
      expect(summary.quarantined).toBe(0);
      expect(summary.environmentError).toMatchObject({
        code: "ENVIRONMENT_FAULT",
        environmentErrno: "ENOSPC",
        hint: expect.stringContaining("free space"),
      });
    }
    expect(describeRun(whileFull[0]!)).toContain("ENOSPC");
    expect(ledgerWhileFull.map((e) => [e.state, e.attempts])).toEqual([
      ["listed", 0],
      ["listed", 0],
      ["listed", 0],
    ]);
    expect(afterwards).toMatchObject({ ok: true, quarantined: 0, mailboxes: [{ copied: 3, deleted: 3 }] });
    expect(quarantinedAfter).toEqual([]);
    expect(server.remainingMessages()).toHaveLength(0);
  });

  it("backs a mailbox off further with each pass its full disk stops, and resets once it heals", async () => {
    // Prepare
    let diskFull = true;
    const clock = new TestClock();
    const { runtime } = await runtimeFor("backoff", "right", {
      overrides: { clock, decorateArchive: (files) => fillingDisk(files, () => diskFull) },
    });
    const stop = new AbortController();
    const passes: { at: number; failed: boolean }[] = [];

    // Act: five passes on a full disk, then space is freed.
    await runForever(runtime, {
      signal: stop.signal,
      onPass: (pass) => {
        passes.push({ at: clock.now(), failed: pass.failure !== undefined });
        if (passes.length === 5) diskFull = false;
        if (passes.length === 7) stop.abort();
      },
    }).finally(() => runtime.close());

    // Assess: pollSeconds is 60; the back-off is 30 s doubling per failed pass. (A pass that
    // copies lets the Gmail sink's pacing move the test clock a little, hence the bounds.)
    const gaps = passes.slice(1).map((p, i) => p.at - (passes[i]?.at ?? 0));
    expect(passes.map((p) => p.failed)).toEqual([true, true, true, true, true, false, false]);
    expect(gaps.slice(0, 4)).toEqual([60_000, 60_000, 120_000, 240_000]);
    expect(gaps[4]).toBeGreaterThanOrEqual(480_000);
    expect(gaps[5]).toBeLessThanOrEqual(60_000);
  });

  it("ends a stopped run within its grace period even when the message in hand hangs, deleting nothing", async () => {
    // Prepare
    const stop = new AbortController();
    const { runtime, server } = await runtimeFor("stall", "right", {
      deliver: (reply) => {
        if (reply.command !== "RETR" || reply.count !== 1) return undefined;
        stop.abort(); // SIGTERM arrives while the first RETR is on the wire, which then hangs.
        return { kind: "stall", afterBytes: 40 };
      },
    });

    // Act
    const stopped = await runOnce(runtime, { signal: stop.signal, stopGraceMs: 0 });
    const next = await runOnce(runtime).finally(() => runtime.close());

    // Assess
    expect(stopped).toMatchObject({ ok: false, stopped: true, timedOut: true });
    expect(next).toMatchObject({ ok: true, mailboxes: [{ copied: 3, deleted: 3 }] });
    expect(server.remainingMessages()).toHaveLength(0);
  });

  it("removes temp files a killed run left in the archive's temp folder at start-up", async () => {
    // Prepare
    const { runtime, dataDir } = await runtimeFor("orphans", "right");
    const tmp = join(dataDir, ".archive-tmp");
    await mkdir(tmp, { recursive: true });
    await writeFile(join(tmp, "0b9e1c1e-dead-4bee-8000-000000000000.part"), "half a message");
    await writeFile(join(tmp, "0b9e1c1e-dead-4bee-8000-000000000001.meta"), "{");

    // Act
    const summary = await runOnce(runtime).finally(() => runtime.close());

    // Assess
    expect(summary.ok).toBe(true);
    expect(await readdir(tmp)).toEqual([]);
  });
});

/**
 * The folder archive on a disk that is full while `isFull()`: every write fails the way the
 * folder archive reports it (`ENOSPC` from the file system, kept as the cause).
 */
function fillingDisk(files: ArchiveStore, isFull: () => boolean): ArchiveStore {
  return {
    async put(key, body, metadata) {
      if (!isFull()) return files.put(key, body, metadata);
      for await (const _chunk of body) break;
      const cause = Object.assign(new Error("ENOSPC: no space left on device, write"), {
        code: "ENOSPC",
        errno: -28,
        syscall: "write",
      });
      throw new TransientError("archive", `cannot write ${key} (ENOSPC)`, { cause });
    },
    verify: (key, digest) => files.verify(key, digest),
    open: (key) => files.open(key),
    list: (prefix) => files.list(prefix),
  };
}
