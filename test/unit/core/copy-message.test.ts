import { describe, expect, it } from "vitest";
import { archiveKeyFor } from "../../../shared/core/archive-key";
import { type CopyOutcome, copyMessage, DEFAULT_COPY_POLICY } from "../../../shared/core/copy-message";
import {
  CredentialsError,
  MessageRejectedError,
  RateLimitedError,
  TransientError,
} from "../../../shared/core/errors";
import { withMailboxSession } from "../../../shared/core/mailbox-session";
import type { CopyJob } from "../../../shared/core/model";
import { Harness, mailboxConfig, makeMessage, TENANT } from "./support/harness";

/** Lists the mailbox, then runs copyMessage for one UIDL in its own session. */
async function copyOne(h: Harness, uidl: string, policy = DEFAULT_COPY_POLICY): Promise<CopyOutcome> {
  const job = await jobFor(h, uidl);
  const outcome = await withMailboxSession(h.deps, h.key, h.mailbox, (scope) =>
    copyMessage(h.deps, scope, h.mailbox, job, policy),
  );
  if (outcome.kind === "busy") throw new Error("unexpected busy");
  return outcome.value;
}

async function jobFor(h: Harness, uidl: string): Promise<CopyJob> {
  const key = { ...h.key, uidl };
  if ((await h.store.get(key)) === undefined) await h.poll();
  const entry = await h.store.get(key);
  if (entry === undefined) throw new Error(`not listed: ${uidl}`);
  return { ...key, listedSize: entry.listedSize, listedAt: entry.listedAt };
}

describe("copyMessage", () => {
  it("archives the exact bytes RETR served, imports them and records every field", async () => {
    // Prepare
    const h = new Harness();
    const receivedAt = h.clock.now() - 45_000;
    const bytes = makeMessage({ messageId: "<a@x>", receivedAt, bodyBytes: 5000 });
    const uidl = h.pop3.add(bytes);
    await h.poll();
    h.clock.advance(2_000);

    // Act
    const outcome = await copyOne(h, uidl);

    // Assess
    const key = { tenant: TENANT, mailboxId: h.mailbox.id, uidl };
    expect(outcome.kind).toBe("copied");
    expect(h.archive.objects.get(archiveKeyFor(key))?.bytes).toEqual(bytes);
    expect(h.sink.imported[0]?.bytes).toEqual(bytes);
    const entry = await h.store.get(key);
    expect(entry).toMatchObject({
      state: "imported",
      archiveKey: archiveKeyFor(key),
      archivedSize: bytes.length,
      messageIdHeader: "<a@x>",
      gmailId: "gmail-1",
      receivedAt: Math.floor(receivedAt / 1000) * 1000,
    });
    expect(entry?.sha256).toMatch(/^[0-9a-f]{64}$/);
    const [imported] = h.telemetry.ofType("imported");
    expect(imported?.pipelineDelayMs).toBe(2_000);
    expect(imported?.deliveryDelayMs).toBe(h.clock.now() - Math.floor(receivedAt / 1000) * 1000);
  });

  it("resumes an archived message from the archive without reading POP3 again", async () => {
    // Prepare
    const h = new Harness();
    const uidl = h.pop3.add(makeMessage());
    h.sink.failNextImport(new TransientError("google", "503"));
    const first = await copyOne(h, uidl);
    const putsBefore = h.archive.putCount;

    // Act
    const second = await copyOne(h, uidl);

    // Assess
    expect(first.kind).toBe("retry-later");
    expect((await h.store.get({ ...h.key, uidl }))?.state).toBe("imported");
    expect(second.kind).toBe("copied");
    expect(h.archive.putCount).toBe(putsBefore);
    expect(h.sink.countFor(uidl)).toBe(1);
  });

  it("answers already-copied for imported, retained and deleted messages without importing", async () => {
    // Prepare
    const h = new Harness();
    const uidl = h.pop3.add(makeMessage());
    await copyOne(h, uidl);

    // Act
    const again = await copyOne(h, uidl);

    // Assess
    expect(again.kind).toBe("already-copied");
    expect(h.sink.importCalls).toBe(1);
  });

  it("reports gone and quarantines as VANISHED when another client deleted the message first", async () => {
    // Prepare
    const h = new Harness();
    const uidl = h.pop3.add(makeMessage());
    const job = await jobFor(h, uidl);
    h.pop3.removeByOtherClient(uidl);

    // Act
    const outcome = await withMailboxSession(h.deps, h.key, h.mailbox, (s) =>
      copyMessage(h.deps, s, h.mailbox, job),
    );

    // Assess
    expect(outcome).toMatchObject({ kind: "done", value: { kind: "gone", uidl } });
    expect(await h.store.get({ ...h.key, uidl })).toMatchObject({
      state: "quarantined",
      quarantineCode: "VANISHED",
    });
  });

  it("quarantines a Gmail-rejected message, keeps it archived and never deletes it", async () => {
    // Prepare
    const h = new Harness();
    const bad = h.pop3.add(makeMessage({ messageId: "<bad@x>" }));
    const good = h.pop3.add(makeMessage());
    h.sink.rejectWhen((r) => (r.uidl === bad ? new MessageRejectedError("Invalid From header") : undefined));

    // Act
    await h.runUntilQuiet();

    // Assess
    const entry = await h.store.get({ ...h.key, uidl: bad });
    expect(entry).toMatchObject({ state: "quarantined", quarantineCode: "MESSAGE_REJECTED" });
    expect(entry?.archiveKey).toBeDefined();
    expect(h.pop3.uidls()).toEqual([bad]);
    expect(h.sink.countFor(good)).toBe(1);
    expect(h.telemetry.ofType("quarantined")).toHaveLength(1);
  });

  it("archives a message above maxMessageBytes whole, then quarantines it instead of importing", async () => {
    // Prepare
    const h = new Harness(mailboxConfig({ maxMessageBytes: 1000 }));
    const bytes = makeMessage({ bodyBytes: 4000 });
    const uidl = h.pop3.add(bytes);

    // Act
    const outcome = await copyOne(h, uidl);

    // Assess
    expect(outcome.kind).toBe("quarantined");
    expect(h.archive.objects.get(archiveKeyFor({ ...h.key, uidl }))?.bytes).toEqual(bytes);
    expect(h.sink.importCalls).toBe(0);
    expect(await h.store.get({ ...h.key, uidl })).toMatchObject({ quarantineCode: "MESSAGE_TOO_LARGE" });
  });

  it("cuts off a RETR that exceeds the archive bound and quarantines the message unarchived", async () => {
    // Prepare
    const h = new Harness();
    const uidl = h.pop3.add(makeMessage({ bodyBytes: 3000 }));
    const job = await jobFor(h, uidl);
    // The server announced a small size in LIST but streams more: a lying server.
    const policy = { ...DEFAULT_COPY_POLICY, archiveMaxBytes: 2000 };
    const lyingJob = { ...job, listedSize: 10 };
    const session = await withMailboxSession(h.deps, h.key, h.mailbox, async (scope) => {
      const original = scope.find.bind(scope);
      const lying = { ...scope, find: async (u: string) => ({ ...(await original(u))!, size: 10 }) };
      return { outcome: await copyMessage(h.deps, lying, h.mailbox, lyingJob, policy), broken: scope.broken };
    });

    // Assess
    expect(session).toMatchObject({
      kind: "done",
      value: { outcome: { kind: "quarantined" }, broken: true },
    });
    expect(h.archive.objects.size).toBe(0);
    expect(await h.store.get({ ...h.key, uidl })).toMatchObject({
      state: "quarantined",
      quarantineCode: "MESSAGE_TOO_LARGE",
    });
  });

  it("retries a failing message with growing delays, then quarantines it after maxAttempts", async () => {
    // Prepare
    const h = new Harness();
    const uidl = h.pop3.add(makeMessage());
    const policy = { ...DEFAULT_COPY_POLICY, maxAttempts: 3 };
    h.sink.failNextImport(...Array.from({ length: 5 }, () => new TransientError("google", "500")));

    // Act
    const outcomes: CopyOutcome[] = [];
    for (let i = 0; i < 4; i++) outcomes.push(await copyOne(h, uidl, policy));

    // Assess
    expect(outcomes.map((o) => o.kind)).toEqual(["retry-later", "retry-later", "quarantined", "quarantined"]);
    const delays = outcomes.flatMap((o) => (o.kind === "retry-later" ? [o.retryAfterMs] : []));
    expect(delays).toEqual([30_000, 60_000]);
    expect(await h.store.get({ ...h.key, uidl })).toMatchObject({ quarantineCode: "TRANSIENT", attempts: 3 });
    expect(h.telemetry.ofType("quarantined")).toHaveLength(1);
  });

  it("waits out a rate limit for the time Gmail asked, without counting it as an attempt", async () => {
    // Prepare
    const h = new Harness();
    const uidl = h.pop3.add(makeMessage());
    h.sink.failNextImport(
      new RateLimitedError("google", 42_000, "429"),
      new RateLimitedError("google", 42_000, "429"),
    );

    // Act
    const first = await copyOne(h, uidl);
    const second = await copyOne(h, uidl);

    // Assess
    expect(first).toMatchObject({ kind: "retry-later", retryAfterMs: 42_000 });
    expect(second.kind).toBe("retry-later");
    expect((await h.store.get({ ...h.key, uidl }))?.attempts).toBe(0);
  });

  it("rethrows a credentials error: the mailbox is broken, not the message", async () => {
    // Prepare
    const h = new Harness();
    const uidl = h.pop3.add(makeMessage());
    h.sink.failNextImport(new CredentialsError("google", "invalid_grant"));

    // Act
    const act = copyOne(h, uidl);

    // Assess
    await expect(act).rejects.toBeInstanceOf(CredentialsError);
    expect(h.telemetry.ofType("credentials-broken")).toHaveLength(1);
    expect(h.telemetry.ofType("quarantined")).toHaveLength(0);
  });

  it("treats an archive that does not verify as a failed attempt and leaves the message listed", async () => {
    // Prepare
    const h = new Harness();
    const uidl = h.pop3.add(makeMessage());
    const verify = h.archive.verify.bind(h.archive);
    let lie = true;
    h.archive.verify = async (key, expected) => {
      if (!lie) return verify(key, expected);
      lie = false;
      return false;
    };

    // Act
    const first = await copyOne(h, uidl);
    const second = await copyOne(h, uidl);

    // Assess
    expect(first).toMatchObject({ kind: "retry-later", error: { code: "INTEGRITY" } });
    expect(second.kind).toBe("copied");
  });

  it("asks Gmail for an earlier import on a retry and reuses it instead of importing again", async () => {
    // Prepare
    const h = new Harness();
    const uidl = h.pop3.add(makeMessage({ messageId: "<once@x>" }));
    const key = { ...h.key, uidl };
    await copyOne(h, uidl);
    // Rewind the ledger as if the write after the import had never happened.
    await h.store.transition(key, ["imported"], "archived", { attempts: 1 });

    // Act
    const outcome = await copyOne(h, uidl);

    // Assess
    expect(outcome.kind).toBe("copied");
    expect(h.sink.importCalls).toBe(1);
    expect(h.sink.findCalls).toBe(1);
    expect(h.telemetry.ofType("imported").at(-1)?.reusedEarlierImport).toBe(true);
  });

  it("retains the message when deleteAfter is not immediately and reports when it is due", async () => {
    // Prepare
    const h = new Harness(mailboxConfig({ deleteAfter: "30d" }));
    const uidl = h.pop3.add(makeMessage());

    // Act
    await copyOne(h, uidl);

    // Assess
    expect((await h.store.get({ ...h.key, uidl }))?.state).toBe("retained");
    expect(h.telemetry.ofType("retained")[0]?.deleteDueAt).toBe(h.clock.now() + 30 * 86_400_000);
  });

  it("archives again from the server when the archived object has disappeared, never importing from it", async () => {
    // Prepare
    const h = new Harness();
    const bytes = makeMessage();
    const uidl = h.pop3.add(bytes);
    h.sink.failNextImport(new TransientError("google", "503"));
    await copyOne(h, uidl);
    const archiveKey = archiveKeyFor({ ...h.key, uidl });
    h.archive.corrupt(archiveKey);

    // Act
    const outcome = await copyOne(h, uidl);

    // Assess
    expect(outcome.kind).toBe("copied");
    expect(h.archive.objects.get(archiveKey)?.bytes).toEqual(bytes);
    expect(h.sink.imported.map((m) => m.bytes)).toEqual([bytes]);
  });
});
