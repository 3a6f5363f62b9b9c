import { describe, expect, it } from "vitest";
import { copyMessage, DEFAULT_COPY_POLICY } from "../../../shared/core/copy-message";
import { withMailboxSession } from "../../../shared/core/mailbox-session";
import { Harness, mailboxConfig, makeMessage } from "./support/harness";

/** docs/pipeline.md, "Quarantine policy": a RETR stops at its bound, not after gigabytes. */
describe("the RETR bound", () => {
  it("stops a RETR past maxMessageBytes of a server that announced a small size, and quarantines it unarchived", async () => {
    // Prepare
    const h = new Harness(mailboxConfig({ maxMessageBytes: 1000 }));
    const uidl = h.pop3.add(makeMessage({ bodyBytes: 3000 }));
    await h.poll();
    const entry = await h.store.get({ ...h.key, uidl });
    const job = { ...h.key, uidl, listedSize: 10, listedAt: entry?.listedAt ?? 0 };
    const asked: number[] = [];

    // Act: LIST lies (10 bytes); the server streams 3000.
    const session = await withMailboxSession(h.deps, h.key, h.mailbox, async (scope) => {
      const original = scope.find.bind(scope);
      const retrieve = scope.session.retrieve.bind(scope.session);
      const lying = {
        ...scope,
        find: async (u: string) => ({ ...(await original(u))!, size: 10 }),
        session: {
          ...scope.session,
          retrieve: (n: number, options: { maxBytes: number }) => {
            asked.push(options.maxBytes);
            return retrieve(n, options);
          },
        },
      };
      return copyMessage(h.deps, lying, h.mailbox, job, DEFAULT_COPY_POLICY);
    });

    // Assess
    expect(asked).toEqual([1000]);
    expect(session).toMatchObject({ kind: "done", value: { kind: "quarantined" } });
    expect(h.archive.objects.size).toBe(0);
    expect(await h.store.get({ ...h.key, uidl })).toMatchObject({
      state: "quarantined",
      quarantineCode: "MESSAGE_TOO_LARGE",
    });
    expect(h.pop3.uidls()).toEqual([uidl]);
  });

  it("reads a message LIST announces above maxMessageBytes to its end, to archive it whole", async () => {
    // Prepare
    const h = new Harness(mailboxConfig({ maxMessageBytes: 1000 }));
    const bytes = makeMessage({ bodyBytes: 4000 });
    const uidl = h.pop3.add(bytes);
    await h.poll();
    const entry = await h.store.get({ ...h.key, uidl });
    const job = { ...h.key, uidl, listedSize: bytes.length, listedAt: entry?.listedAt ?? 0 };

    // Act
    const session = await withMailboxSession(h.deps, h.key, h.mailbox, (scope) =>
      copyMessage(h.deps, scope, h.mailbox, job, DEFAULT_COPY_POLICY),
    );

    // Assess
    expect(session).toMatchObject({ kind: "done", value: { kind: "quarantined" } });
    expect(h.archive.objects.size).toBe(1);
    expect(h.sink.importCalls).toBe(0);
  });

  it("keeps the default hard bound far below 2 GiB", () => {
    // Assess
    expect(DEFAULT_COPY_POLICY.archiveMaxBytes).toBeLessThanOrEqual(512 * 1024 * 1024);
  });
});
