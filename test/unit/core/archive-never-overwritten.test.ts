import { describe, expect, it } from "vitest";
import { archiveKeyFor } from "../../../shared/core/archive-key";
import { Harness, makeMessage } from "./support/harness";

/** A ledger restored from an old backup (or a new disk), sharing the archive and Gmail. */
function withEmptyLedger(h: Harness): Harness {
  const fresh = new Harness(h.mailbox);
  Object.assign(fresh.deps, { archive: h.archive, sink: h.sink, pop3: h.pop3 });
  return fresh;
}

describe("an archived message is never overwritten by another one (docs/pipeline.md, A lost ledger)", () => {
  it("keeps the first message's archive when the ledger is lost and the server reuses its UIDL", async () => {
    // Prepare: message A is copied and deleted under UIDL 7; the ledger is lost; the server
    // reuses UIDL 7 for new mail B.
    const h = new Harness();
    const first = makeMessage();
    h.pop3.add(first, "7");
    await h.runUntilQuiet();
    const restored = withEmptyLedger(h);
    const second = makeMessage();
    h.pop3.add(second, "7");

    // Act
    await restored.runUntilQuiet();

    // Assess: A's archive is untouched; B has an archive of its own and is in Gmail once.
    expect(h.archive.objects.get(archiveKeyFor({ ...h.key, uidl: "7" }))?.bytes).toEqual(first);
    const entry = await restored.store.get({ ...h.key, uidl: "7" });
    expect(entry?.state).toBe("deleted");
    expect(entry?.archiveKey).not.toBe(archiveKeyFor({ ...h.key, uidl: "7" }));
    expect(h.archive.objects.get(entry?.archiveKey ?? "")?.bytes).toEqual(second);
    expect(h.sink.imported.map((m) => Buffer.from(m.bytes).equals(Buffer.from(second)))).toEqual([
      false,
      true,
    ]);
    expect(h.pop3.uidls()).toEqual([]);
  });

  it("gives each life its own key, one that no UIDL's first archive key can take", async () => {
    // Prepare: a UIDL whose text looks like another UIDL's second-life suffix.
    const key = { tenant: "acme", mailboxId: "info@acme.example", uidl: "7" };

    // Act
    const firstLife = archiveKeyFor(key);
    const laterLife = archiveKeyFor(key, 1_700_000_000_000);

    // Assess
    expect(laterLife).not.toBe(firstLife);
    for (const uidl of ["7@1700000000000", "7.1700000000000", "7%401700000000000"]) {
      expect(archiveKeyFor({ ...key, uidl })).not.toBe(laterLife);
    }
  });
});
