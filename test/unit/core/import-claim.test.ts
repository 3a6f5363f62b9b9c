import { describe, expect, it } from "vitest";
import { archiveKeyFor } from "../../../shared/core/archive-key";
import { copyBatch } from "../../../shared/core/copy-batch";
import {
  type CopyOutcome,
  copyMessage,
  DEFAULT_COPY_POLICY,
  DEFAULT_IMPORT_CLAIM_MS,
} from "../../../shared/core/copy-message";
import {
  ConnectionClosedError,
  RateLimitedError,
  TimeoutError,
  TransientError,
} from "../../../shared/core/errors";
import { DEFAULT_LIST_POLICY } from "../../../shared/core/list-new-messages";
import { withMailboxSession } from "../../../shared/core/mailbox-session";
import type { CopyJob, LedgerEntry } from "../../../shared/core/model";
import { releaseFromQuarantine } from "../../../shared/core/release-from-quarantine";
import { crashOnce, Harness, mailboxConfig, makeMessage, TENANT } from "./support/harness";

/**
 * DESIGN.md invariant 3 for the Gmail import: the `importing` claim keeps two copiers from
 * importing one message, and an import whose outcome is uncertain is settled by a look-up for the
 * copy's own trace id or by importing the same copy again, which Gmail merges by its (possibly
 * synthesized) Message-ID (docs/pipeline.md, "The import claim").
 */

/** Lists the mailbox if needed, then runs copyMessage for one UIDL in its own session. */
async function copyOne(h: Harness, uidl: string): Promise<CopyOutcome> {
  const job = await jobFor(h, uidl);
  const outcome = await withMailboxSession(h.deps, h.key, h.mailbox, (scope) =>
    copyMessage(h.deps, scope, h.mailbox, job),
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

/** A harness whose mailbox allows two POP3 sessions at once, so two copiers can overlap. */
function twoSessionHarness(): Harness {
  const h = new Harness(
    mailboxConfig({
      pop3: { host: "pop.example.net", user: "info@acme.it", passwordSecret: "pop-secret", maxSessions: 2 },
    }),
  );
  h.pop3.lockSessions = false;
  return h;
}

/** Moves a message to `archived` the way a copy does, through a 429 that gives the claim back. */
async function archivedMessage(h: Harness, messageId: string | null): Promise<string> {
  const uidl = h.pop3.add(makeMessage({ messageId }));
  h.sink.failNextImport(new RateLimitedError("google", 1000, "429"));
  await copyOne(h, uidl);
  return uidl;
}

async function stateOf(h: Harness, uidl: string): Promise<LedgerEntry | undefined> {
  return h.store.get({ ...h.key, uidl });
}

describe("a crash after the Gmail import, before the ledger write", () => {
  it("leaves one copy of a message without Message-ID, re-imported and merged when the sink cannot search", async () => {
    // Prepare
    const h = new Harness();
    h.sink.canSearch = false;
    const bytes = makeMessage({ messageId: null });
    const uidl = h.pop3.add(bytes);
    crashOnce(h.sink, "import", { after: true });

    // Act
    const crashed = await h.survive(() => h.runUntilQuiet());
    await h.runUntilQuiet();

    // Assess: the same copy (trace id, synthesized Message-ID) went twice; Gmail merged it.
    expect(crashed).toBe(true);
    expect(h.sink.countFor(uidl)).toBe(1);
    expect(h.sink.rawImportsFor(uidl)).toBe(2);
    expect(await stateOf(h, uidl)).toMatchObject({ state: "deleted", gmailId: "gmail-1" });
    expect(h.archive.objects.get(archiveKeyFor({ ...h.key, uidl }))?.bytes).toEqual(bytes);
    expect(h.sink.imported[0]?.bytes).toEqual(bytes);
    expect(h.pop3.uidls()).toEqual([]);
    expect(h.earlyDeletes).toEqual([]);
  });

  it.each([
    { canSearch: true, rawImports: 1 },
    { canSearch: false, rawImports: 2 },
  ])(
    "leaves one copy of a message with Message-ID, imported and deleted (sink can search: $canSearch)",
    async ({ canSearch, rawImports }) => {
      // Prepare
      const h = new Harness();
      h.sink.canSearch = canSearch;
      const uidl = h.pop3.add(makeMessage({ messageId: "<crash@x>" }));
      crashOnce(h.sink, "import", { after: true });

      // Act
      const crashed = await h.survive(() => h.runUntilQuiet());
      await h.runUntilQuiet();

      // Assess
      expect(crashed).toBe(true);
      expect(h.sink.countFor(uidl)).toBe(1);
      expect(h.sink.rawImportsFor(uidl)).toBe(rawImports);
      expect(await stateOf(h, uidl)).toMatchObject({ state: "deleted", gmailId: "gmail-1" });
      expect(h.pop3.uidls()).toEqual([]);
      expect(h.earlyDeletes).toEqual([]);
    },
  );

  it("keeps a later copier away while the claim is fresh, and settles it once stale", async () => {
    // Prepare
    const h = new Harness();
    const uidl = h.pop3.add(makeMessage({ messageId: null }));
    crashOnce(h.sink, "import", { after: true });
    await h.survive(() => copyOne(h, uidl));
    h.clock.advance(DEFAULT_IMPORT_CLAIM_MS - 60_000);

    // Act
    const whileFresh = await copyOne(h, uidl);
    h.clock.advance(60_000);
    const onceStale = await copyOne(h, uidl);

    // Assess
    expect(whileFresh).toMatchObject({
      kind: "retry-later",
      retryAfterMs: 60_000,
      error: { code: "IMPORT_IN_PROGRESS" },
    });
    expect(onceStale).toMatchObject({ kind: "copied", entry: { state: "imported", gmailId: "gmail-1" } });
    expect(h.sink.rawImportsFor(uidl)).toBe(1);
    expect(h.telemetry.ofType("imported").at(-1)?.reusedEarlierImport).toBe(true);
  });
});

describe("two copiers racing on one archived message", () => {
  it("imports once when a redelivered job arrives while the first import is running", async () => {
    // Prepare
    const h = twoSessionHarness();
    const uidl = await archivedMessage(h, null);
    const job = await jobFor(h, uidl);
    const held = h.sink.holdNextImport();
    const first = copyBatch(h.deps, TENANT, h.mailbox, [job]);
    await held.started;

    // Act
    const second = await copyBatch(h.deps, TENANT, h.mailbox, [job]);
    held.release();
    const firstResult = await first;

    // Assess
    expect(second.outcomes).toMatchObject([{ kind: "retry-later", error: { code: "IMPORT_IN_PROGRESS" } }]);
    expect(firstResult.outcomes).toMatchObject([{ kind: "copied" }]);
    expect(h.sink.rawImportsFor(uidl)).toBe(1);
    expect(h.sink.countFor(uidl)).toBe(1);
    expect(await stateOf(h, uidl)).toMatchObject({ state: "deleted" });
  });

  it("lets only one of two copiers that both read archived win the claim", async () => {
    // Prepare
    const h = twoSessionHarness();
    const uidl = await archivedMessage(h, null);
    const job = await jobFor(h, uidl);
    // The first copier stops after reading `archived`, while it verifies the archive.
    const verify = h.archive.verify.bind(h.archive);
    let letFirstOn: () => void = () => {};
    const firstPaused = new Promise<void>((paused) => {
      h.archive.verify = async (key, expected) => {
        h.archive.verify = verify;
        paused();
        await new Promise<void>((resume) => {
          letFirstOn = resume;
        });
        return verify(key, expected);
      };
    });
    const first = copyBatch(h.deps, TENANT, h.mailbox, [job]);
    await firstPaused;
    const held = h.sink.holdNextImport();
    const second = copyBatch(h.deps, TENANT, h.mailbox, [job]);
    await held.started;

    // Act
    letFirstOn();
    const firstResult = await first;
    held.release();
    const secondResult = await second;

    // Assess
    expect(firstResult.outcomes).toMatchObject([
      { kind: "retry-later", error: { code: "IMPORT_IN_PROGRESS" } },
    ]);
    expect(secondResult.outcomes).toMatchObject([{ kind: "copied" }]);
    expect(h.sink.rawImportsFor(uidl)).toBe(1);
  });
});

describe("an import that failed", () => {
  it.each([
    { name: "a 429", error: () => new RateLimitedError("google", 5000, "429"), attempts: 0 },
    {
      name: "a connection refused before the request was sent",
      error: () => new TransientError("google", "ECONNREFUSED", { requestNotSent: true }),
      attempts: 1,
    },
  ])("gives the claim back after $name, and a later attempt imports once", async ({ error, attempts }) => {
    // Prepare
    const h = new Harness();
    h.sink.canSearch = false;
    const uidl = h.pop3.add(makeMessage({ messageId: null }));
    h.sink.failNextImport(error());
    const first = await copyOne(h, uidl);
    const between = await stateOf(h, uidl);

    // Act
    const second = await copyOne(h, uidl);

    // Assess
    expect(first.kind).toBe("retry-later");
    expect(between).toMatchObject({ state: "archived", attempts });
    expect(second.kind).toBe("copied");
    expect(h.sink.rawImportsFor(uidl)).toBe(1);
    expect(h.sink.countFor(uidl)).toBe(1);
  });

  it.each([
    { name: "a timeout", error: () => new TimeoutError("google", "no answer in 120 s") },
    { name: "a 503", error: () => new TransientError("google", "503") },
    { name: "a connection reset", error: () => new ConnectionClosedError("google", "ECONNRESET") },
  ])(
    "settles a message without Message-ID after $name that hid a completed import, with one copy",
    async ({ error }) => {
      // Prepare
      const h = new Harness();
      h.sink.canSearch = false;
      const uidl = h.pop3.add(makeMessage({ messageId: null }));
      h.sink.failAfterNextImport(error());

      // Act
      const outcome = await copyOne(h, uidl);
      const again = await copyOne(h, uidl);

      // Assess: the claim went back; the same copy went again and Gmail merged it.
      expect(outcome.kind).toBe("retry-later");
      expect(again).toMatchObject({ kind: "copied", entry: { state: "imported", gmailId: "gmail-1" } });
      expect(h.sink.rawImportsFor(uidl)).toBe(2);
      expect(h.sink.countFor(uidl)).toBe(1);
    },
  );

  it.each([
    { canSearch: true, rawImports: 1, reused: true },
    { canSearch: false, rawImports: 2, reused: false },
  ])(
    "imports a message with Message-ID once after a timeout that hid a completed import (sink can search: $canSearch)",
    async ({ canSearch, rawImports, reused }) => {
      // Prepare
      const h = new Harness();
      h.sink.canSearch = canSearch;
      const uidl = h.pop3.add(makeMessage({ messageId: "<timeout@x>" }));
      h.sink.failAfterNextImport(new TimeoutError("google", "no answer in 120 s"));
      const first = await copyOne(h, uidl);
      const between = await stateOf(h, uidl);

      // Act
      const second = await copyOne(h, uidl);

      // Assess
      expect(first).toMatchObject({ kind: "retry-later", error: { code: "TIMEOUT" } });
      expect(between?.state).toBe("archived");
      expect(second).toMatchObject({ kind: "copied", entry: { state: "imported", gmailId: "gmail-1" } });
      expect(h.sink.countFor(uidl)).toBe(1);
      expect(h.sink.rawImportsFor(uidl)).toBe(rawImports);
      expect(h.telemetry.ofType("imported").at(-1)?.reusedEarlierImport).toBe(reused);
    },
  );
});

describe("the lister and an importing message", () => {
  it("re-sends a message left in importing once it is stuck, and the copier settles it", async () => {
    // Prepare
    const h = new Harness();
    const uidl = h.pop3.add(makeMessage({ messageId: "<stuck@x>" }));
    crashOnce(h.sink, "import", { after: true });
    await h.poll();
    await h.survive(() => h.copyVisible()); // the job is put back, as SQS would...
    h.queue.take(10); // ...and then lost
    h.clock.advance(DEFAULT_LIST_POLICY.stuckAfterMs);

    // Act
    const poll = await h.poll();
    await h.runUntilQuiet();

    // Assess
    expect(DEFAULT_LIST_POLICY.stuckAfterMs).toBeGreaterThan(DEFAULT_IMPORT_CLAIM_MS);
    expect(poll).toMatchObject({ kind: "listed", requeued: 1 });
    expect(h.telemetry.ofType("requeued")).toMatchObject([{ uidl, state: "importing" }]);
    expect(await stateOf(h, uidl)).toMatchObject({ state: "deleted" });
    expect(h.sink.countFor(uidl)).toBe(1);
  });
});

describe("releasing a quarantined message (pop2gmail quarantine retry)", () => {
  it("resumes a message quarantined IMPORT_UNCERTAIN by an earlier version from the archive", async () => {
    // Prepare: such an entry, as an earlier version left it after an uncertain import.
    const h = new Harness();
    h.sink.canSearch = false;
    const bytes = makeMessage({ messageId: null });
    const uidl = h.pop3.add(bytes);
    h.sink.failNextImport(new RateLimitedError("google", 1000, "429"));
    await copyOne(h, uidl);
    await h.store.transition({ ...h.key, uidl }, ["archived"], "quarantined", {
      quarantineCode: "IMPORT_UNCERTAIN",
      quarantineReason: "Gmail may or may not hold this message",
    });
    const putsBefore = h.archive.putCount;

    // Act
    const released = await releaseFromQuarantine(h.deps, { ...h.key, uidl });
    await h.runUntilQuiet();

    // Assess
    expect(released).toMatchObject({ state: "archived", attempts: 0 });
    expect(await stateOf(h, uidl)).toMatchObject({ state: "deleted" });
    expect(h.sink.imported.map((m) => m.bytes)).toEqual([bytes]);
    expect(h.archive.putCount).toBe(putsBefore);
  });

  it("gives a message quarantined after too many attempts a full set again", async () => {
    // Prepare
    const h = new Harness(mailboxConfig({ deleteAfter: "30d" }));
    const uidl = h.pop3.add(makeMessage());
    const refused = Array.from(
      { length: DEFAULT_COPY_POLICY.maxAttempts },
      () => new TransientError("google", "ECONNREFUSED", { requestNotSent: true }),
    );
    h.sink.failNextImport(...refused);
    await h.runUntilQuiet();
    const quarantinedFirst = await stateOf(h, uidl);

    // Act
    await releaseFromQuarantine(h.deps, { ...h.key, uidl });
    await h.runUntilQuiet();
    h.clock.advance(30 * 86_400_000);
    await h.runUntilQuiet();

    // Assess
    expect(quarantinedFirst).toMatchObject({ state: "quarantined", quarantineCode: "TRANSIENT" });
    expect(await stateOf(h, uidl)).toMatchObject({ state: "deleted" });
    expect(h.sink.countFor(uidl)).toBe(1);
  });

  it("archives a message quarantined before it was archived again from the server", async () => {
    // Prepare
    const h = new Harness();
    const bytes = makeMessage({ bodyBytes: 3000 });
    const uidl = h.pop3.add(bytes);
    await h.poll();
    await h.store.transition({ ...h.key, uidl }, ["listed"], "quarantined", { quarantineCode: "TEST" });

    // Act
    const released = await releaseFromQuarantine(h.deps, { ...h.key, uidl });
    await h.runUntilQuiet();

    // Assess
    expect(released?.state).toBe("listed");
    expect(h.archive.objects.get(archiveKeyFor({ ...h.key, uidl }))?.bytes).toEqual(bytes);
    expect(await stateOf(h, uidl)).toMatchObject({ state: "deleted" });
  });

  it("leaves a message that is not quarantined alone", async () => {
    // Prepare
    const h = new Harness();
    const uidl = h.pop3.add(makeMessage());
    await h.poll();

    // Act
    const released = await releaseFromQuarantine(h.deps, { ...h.key, uidl });

    // Assess
    expect(released).toBeUndefined();
    expect((await stateOf(h, uidl))?.state).toBe("listed");
  });
});
