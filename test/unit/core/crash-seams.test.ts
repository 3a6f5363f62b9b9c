import { describe, expect, it } from "vitest";
import { archiveKeyFor } from "../../../shared/core/archive-key";
import { CrashError, crashOnce, Harness, makeMessage, TENANT } from "./support/harness";

/**
 * The fault campaign of issue 4, against the in-memory adapters: the process dies at each seam
 * (a thrown CrashError), the pipeline runs again, and every invariant of DESIGN.md holds.
 */
type Seam = { name: string; arm: (h: Harness) => void };

const seams: Seam[] = [
  {
    name: "after RETR, before the archive write",
    arm: (h) => {
      let armed = true;
      h.pop3.faults.afterRetrieve = () => {
        if (armed) {
          armed = false;
          throw new CrashError("crash after RETR");
        }
      };
    },
  },
  { name: "after the archive write", arm: (h) => crashOnce(h.archive, "put", { after: true }) },
  {
    name: "after the ledger recorded the archive and took the import claim",
    arm: (h) =>
      crashOnce(h.ledger, "transition", { after: true, when: (...a: never[]) => a[2] === "importing" }),
  },
  {
    name: "after the Gmail import, before the ledger write",
    arm: (h) => crashOnce(h.sink, "import", { after: true }),
  },
  {
    name: "between DELE and QUIT",
    arm: (h) => {
      let armed = true;
      h.pop3.faults.beforeQuit = () => {
        if (armed && h.queue.size === 0) {
          armed = false;
          throw new CrashError("crash before QUIT");
        }
      };
    },
  },
  {
    name: "after QUIT committed, before the ledger moved to deleted",
    arm: (h) =>
      crashOnce(h.ledger, "transitionEach", { after: false, when: (...a: never[]) => a[2] === "deleted" }),
  },
  {
    name: "in the lister, after createListed",
    arm: (h) => crashOnce(h.ledger, "createListed", { after: true }),
  },
  { name: "in the lister, after enqueue", arm: (h) => crashOnce(h.queue, "enqueue", { after: true }) },
];

describe("a crash at every seam", () => {
  for (const seam of seams) {
    it(`loses nothing, imports once and deletes nothing early: ${seam.name}`, async () => {
      // Prepare
      const h = new Harness();
      const originals = new Map<string, Uint8Array>();
      for (let i = 0; i < 3; i++) {
        const bytes = makeMessage({ bodyBytes: 500 + i * 900 });
        originals.set(h.pop3.add(bytes), bytes);
      }
      seam.arm(h);

      // Act: the first run dies at the seam; later runs recover.
      let crashed = false;
      for (let run = 0; run < 3 && !crashed; run++) {
        crashed = await h.survive(() => h.runUntilQuiet());
      }
      await h.runUntilQuiet();

      // Assess
      expect(crashed).toBe(true);
      expect(h.earlyDeletes).toEqual([]);
      expect(h.pop3.uidls()).toEqual([]);
      for (const [uidl, bytes] of originals) {
        const key = { tenant: TENANT, mailboxId: h.mailbox.id, uidl };
        expect(h.archive.objects.get(archiveKeyFor(key))?.bytes).toEqual(bytes);
        expect(h.sink.countFor(uidl)).toBe(1);
        expect(h.sink.imported.find((m) => m.uidl === uidl)?.bytes).toEqual(bytes);
        expect((await h.store.get(key))?.state).toBe("deleted");
      }
    });
  }
});
