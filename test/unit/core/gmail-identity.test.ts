import { describe, expect, it } from "vitest";
import { DEFAULT_IMPORT_CLAIM_MS } from "../../../shared/core/copy-message";
import { ConnectionClosedError, TimeoutError, TransientError } from "../../../shared/core/errors";
import type { LedgerEntry } from "../../../shared/core/model";
import type { ImportRequest } from "../../../shared/ports/mail-sink";
import { crashOnce, Harness, mailboxConfig, makeMessage } from "./support/harness";

/**
 * Issue 10 items 1, 2 and 6 (docs/pipeline.md, "The Gmail copy" and "The import claim"): an
 * uncertain import is settled only by proof that Gmail holds *this* message (our own import
 * returned an id, or a look-up found a message carrying our `X-Pop2Gmail-Id`); every uncertain
 * import settles by itself, with or without a Message-ID; a lost ledger does not duplicate mail.
 */

async function entryOf(h: Harness, uidl: string): Promise<LedgerEntry | undefined> {
  return h.store.get({ ...h.key, uidl });
}

/** The copy Gmail holds of the message with this UIDL (the archived bytes behind the trace lines). */
function copiesOf(h: Harness, uidl: string) {
  return h.sink.imported.filter((m) => m.uidl === uidl);
}

const SHARED_ID = "<resent@sender.example>";

describe("two messages sharing one Message-ID (issue 10 item 1)", () => {
  it("does not take the first message as proof for the second after the second's import got a 503", async () => {
    // Prepare: the first is copied; the second (same Message-ID, other bytes) meets one 503.
    const h = new Harness();
    const firstBytes = makeMessage({ messageId: SHARED_ID });
    const first = h.pop3.add(firstBytes);
    await h.runUntilQuiet();
    const secondBytes = makeMessage({ messageId: SHARED_ID });
    const second = h.pop3.add(secondBytes);
    h.sink.failNextImport(new TransientError("google", "Gmail answered 503 to import"));

    // Act
    await h.runUntilQuiet();

    // Assess: the second is in Gmail with its own bytes and id before it left POP3.
    const [one, two] = [await entryOf(h, first), await entryOf(h, second)];
    expect(two?.state).toBe("deleted");
    expect(two?.gmailId).not.toBe(one?.gmailId);
    expect(copiesOf(h, second).map((m) => Buffer.from(m.bytes))).toEqual([Buffer.from(secondBytes)]);
    expect(copiesOf(h, first)).toHaveLength(1);
    expect(h.earlyDeletes).toEqual([]);
  });

  it("settles a stale claim on the second message by its own trace id, not by the first message", async () => {
    // Prepare: the first is copied; the copier of the second dies at the start of its import.
    const h = new Harness();
    const first = h.pop3.add(makeMessage({ messageId: SHARED_ID }));
    await h.runUntilQuiet();
    const secondBytes = makeMessage({ messageId: SHARED_ID });
    const second = h.pop3.add(secondBytes);
    crashOnce(h.sink, "import", { after: false, when: (r: ImportRequest) => r.uidl === second });
    await h.survive(() => h.runUntilQuiet());
    h.clock.advance(DEFAULT_IMPORT_CLAIM_MS + 1);

    // Act
    await h.runUntilQuiet();

    // Assess
    const [one, two] = [await entryOf(h, first), await entryOf(h, second)];
    expect(two?.state).toBe("deleted");
    expect(two?.gmailId).not.toBe(one?.gmailId);
    expect(copiesOf(h, second).map((m) => Buffer.from(m.bytes))).toEqual([Buffer.from(secondBytes)]);
    expect(h.earlyDeletes).toEqual([]);
  });
});

describe("an uncertain import settles by itself, Message-ID or not (issue 10 item 2)", () => {
  it("finds its own earlier import of a message without Message-ID after a timeout, instead of quarantining it", async () => {
    // Prepare: the import reaches Gmail, but the answer is lost.
    const h = new Harness();
    const bytes = makeMessage({ messageId: null });
    const uidl = h.pop3.add(bytes);
    h.sink.failAfterNextImport(new TimeoutError("google", "Gmail did not answer import in time"));

    // Act
    await h.runUntilQuiet();

    // Assess: one copy, imported once, found by its trace id, deleted from POP3.
    const entry = await entryOf(h, uidl);
    expect(entry?.state).toBe("deleted");
    expect(copiesOf(h, uidl).map((m) => Buffer.from(m.bytes))).toEqual([Buffer.from(bytes)]);
    expect(h.sink.rawImportsFor(uidl)).toBe(1);
    expect(entry?.gmailId).toBe(copiesOf(h, uidl)[0]?.gmailId);
    expect(h.earlyDeletes).toEqual([]);
  });

  it("re-imports a message without Message-ID after a 503 when it cannot look, and Gmail merges the copy", async () => {
    // Prepare: no read scope; the import is stored, then the answer is a 503.
    const h = new Harness();
    h.sink.canSearch = false;
    const bytes = makeMessage({ messageId: null });
    const uidl = h.pop3.add(bytes);
    h.sink.failAfterNextImport(new TransientError("google", "Gmail answered 503 to import"));

    // Act
    await h.runUntilQuiet();

    // Assess: imported twice, merged into one copy carrying a synthesized Message-ID.
    expect((await entryOf(h, uidl))?.state).toBe("deleted");
    expect(copiesOf(h, uidl)).toHaveLength(1);
    expect(h.sink.rawImportsFor(uidl)).toBe(2);
    expect(copiesOf(h, uidl)[0]?.messageIdHeader).toMatch(/^<[0-9a-f]{32}@pop2gmail\.invalid>$/);
    expect(h.earlyDeletes).toEqual([]);
  });

  it("takes over a stale claim on a message without Message-ID and settles it, instead of quarantining it", async () => {
    // Prepare: the copier dies right after its import reached Gmail.
    const h = new Harness();
    const bytes = makeMessage({ messageId: null });
    const uidl = h.pop3.add(bytes);
    crashOnce(h.sink, "import", { after: true });
    await h.survive(() => h.runUntilQuiet());
    h.clock.advance(DEFAULT_IMPORT_CLAIM_MS + 1);

    // Act
    await h.runUntilQuiet();

    // Assess
    expect((await entryOf(h, uidl))?.state).toBe("deleted");
    expect(copiesOf(h, uidl).map((m) => Buffer.from(m.bytes))).toEqual([Buffer.from(bytes)]);
    expect(h.sink.rawImportsFor(uidl)).toBe(1);
    expect(h.earlyDeletes).toEqual([]);
  });

  it("leaves no message quarantined for uncertainty after resets on every first import", async () => {
    // Prepare: ten messages, half without Message-ID; each first import is stored, then reset.
    const h = new Harness();
    const uidls = Array.from({ length: 10 }, (_, i) =>
      h.pop3.add(i % 2 === 0 ? makeMessage({ messageId: null }) : makeMessage()),
    );
    h.sink.failAfterNextImport(
      ...uidls.map(() => new ConnectionClosedError("google", "connection reset during import")),
    );

    // Act
    await h.runUntilQuiet();

    // Assess
    const entries = await Promise.all(uidls.map((uidl) => entryOf(h, uidl)));
    expect(entries.map((e) => e?.state)).toEqual(uidls.map(() => "deleted"));
    expect(uidls.map((uidl) => copiesOf(h, uidl).length)).toEqual(uidls.map(() => 1));
    expect(h.earlyDeletes).toEqual([]);
  });
});

describe("a lost ledger (issue 10 item 6)", () => {
  /** A second pipeline over the same POP3 box, archive and Gmail, with an empty ledger. */
  function withEmptyLedger(h: Harness): Harness {
    const fresh = new Harness(h.mailbox);
    Object.assign(fresh.deps, { archive: h.archive, sink: h.sink, pop3: h.pop3 });
    return fresh;
  }

  it("does not import again a message without Message-ID that is archived and in Gmail", async () => {
    // Prepare: copied and kept on the server (deleteAfter never); then the ledger is lost.
    const h = new Harness(mailboxConfig({ deleteAfter: "never" }));
    const bytes = makeMessage({ messageId: null });
    const uidl = h.pop3.add(bytes);
    await h.runUntilQuiet();
    const restored = withEmptyLedger(h);

    // Act
    await restored.runUntilQuiet();

    // Assess: found in Gmail by its trace id, not imported a second time.
    expect(copiesOf(h, uidl)).toHaveLength(1);
    expect(h.sink.rawImportsFor(uidl)).toBe(1);
    expect((await restored.store.get({ ...h.key, uidl }))?.gmailId).toBe(copiesOf(h, uidl)[0]?.gmailId);
  });

  it("without a read scope, re-imports the same copy, which Gmail merges", async () => {
    // Prepare
    const h = new Harness(mailboxConfig({ deleteAfter: "never" }));
    h.sink.canSearch = false;
    const uidl = h.pop3.add(makeMessage({ messageId: null }));
    await h.runUntilQuiet();
    const restored = withEmptyLedger(h);

    // Act
    await restored.runUntilQuiet();

    // Assess
    expect(copiesOf(h, uidl)).toHaveLength(1);
    expect(h.sink.rawImportsFor(uidl)).toBe(2);
  });

  it("settles a stale job for a message copied and deleted before the ledger was lost, from the archive", async () => {
    // Prepare: copied, imported and deleted from POP3; the ledger is lost; a duplicate of the
    // old job is still in the queue.
    const h = new Harness();
    const bytes = makeMessage({ messageId: null });
    const uidl = h.pop3.add(bytes);
    await h.runUntilQuiet();
    const before = await h.store.get({ ...h.key, uidl });
    const restored = withEmptyLedger(h);
    await restored.queue.enqueue([{ ...h.key, uidl, listedSize: bytes.length, listedAt: h.clock.now() }]);

    // Act
    const batch = await restored.copyVisible();

    // Assess: not "vanished"; recorded from the archive and Gmail, and deleted, as it is.
    expect(batch?.outcomes.map((o) => o.kind)).toEqual(["copied"]);
    expect(restored.telemetry.ofType("vanished")).toEqual([]);
    expect(await restored.store.get({ ...h.key, uidl })).toMatchObject({
      state: "deleted",
      gmailId: before?.gmailId,
      archiveKey: before?.archiveKey,
      sha256: before?.sha256,
    });
    expect(copiesOf(h, uidl)).toHaveLength(1);
    expect(h.sink.rawImportsFor(uidl)).toBe(1);
  });

  it("does not look Gmail up for a message whose archive key held nothing before", async () => {
    // Prepare
    const h = new Harness();
    h.pop3.add(makeMessage({ messageId: null }));
    h.pop3.add(makeMessage());

    // Act
    await h.runUntilQuiet();

    // Assess: the cheap rule costs nothing for new mail.
    expect(h.sink.findCalls).toBe(0);
    expect(h.sink.importCalls).toBe(2);
  });
});
