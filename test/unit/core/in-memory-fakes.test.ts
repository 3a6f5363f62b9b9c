import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { LedgerConflictError } from "../../../shared/core/errors";
import { TestClock } from "../../fakes/in-memory-clock";
import { InMemoryLedger } from "../../fakes/in-memory-ledger";
import { FakeMailSink } from "../../fakes/in-memory-mail-sink";
import { InMemoryPop3Source } from "../../fakes/in-memory-pop3-source";
import { InMemorySessionLeases } from "../../fakes/in-memory-session-leases";
import { mailboxConfig } from "./support/harness";

const mailbox = { tenant: "acme", mailboxId: "info" };
const key = { ...mailbox, uidl: "u1" };

describe("the in-memory fakes are as strict as the real adapters", () => {
  it("ledger: conditional transitions, idempotent create, versioned snapshots", async () => {
    // Prepare
    const ledger = new InMemoryLedger();
    const created = await ledger.createListed([{ ...key, listedSize: 1, listedAt: 0 }]);
    const again = await ledger.createListed([{ ...key, listedSize: 9, listedAt: 9 }]);

    // Act
    const wrongState = ledger.transition(key, ["archived"], "imported");
    const missing = ledger.transition({ ...key, uidl: "nope" }, ["listed"], "archived");
    await ledger.putSnapshot(mailbox, new Uint8Array([1]), undefined);
    const staleSnapshot = ledger.putSnapshot(mailbox, new Uint8Array([2]), undefined);

    // Assess
    expect(created).toHaveLength(1);
    expect(again).toEqual([]);
    expect((await ledger.get(key))?.listedSize).toBe(1);
    await expect(wrongState).rejects.toBeInstanceOf(LedgerConflictError);
    await expect(missing).rejects.toBeInstanceOf(LedgerConflictError);
    await expect(staleSnapshot).rejects.toBeInstanceOf(LedgerConflictError);
    expect(await ledger.getSnapshot(mailbox)).toEqual({ version: 1, body: new Uint8Array([1]) });
  });

  it("session leases: slots are limited and expire by the injected clock", async () => {
    // Prepare
    const clock = new TestClock();
    const leases = new InMemorySessionLeases(clock);
    const first = await leases.acquire(mailbox, 2, "a", 1000);
    const second = await leases.acquire(mailbox, 2, "b", 1000);

    // Act
    const third = await leases.acquire(mailbox, 2, "c", 1000);
    clock.advance(1000);
    const afterExpiry = await leases.acquire(mailbox, 2, "d", 1000);
    await leases.release(mailbox, first!); // expired and taken by "d": must not free d's slot
    const stillHeld = await leases.acquire(mailbox, 2, "e", 1000);

    // Assess
    expect([first?.slot, second?.slot, third]).toEqual([0, 1, undefined]);
    expect(afterExpiry).toEqual({ slot: 0, holder: "d" });
    expect(stillHeld?.slot).toBe(1);
  });

  it("POP3: numbers per session, DELE only on QUIT, IN-USE while locked", async () => {
    // Prepare
    const source = new InMemoryPop3Source();
    const config = mailboxConfig();
    source.add(new Uint8Array([1]), "a");
    source.add(new Uint8Array([2]), "b");
    const dropped = await source.open(config);
    await dropped.markDeleted(1);

    // Act
    const locked = source.open(config);
    dropped.abort();
    const session = await source.open(config);
    await session.markDeleted(2);
    const { committed } = await session.quit();
    const next = await source.open(config);

    // Assess
    await expect(locked).rejects.toMatchObject({ code: "MAILBOX_BUSY", responseCode: "IN-USE" });
    expect(committed).toBe(true);
    expect(await next.listMessages()).toEqual([{ number: 1, uidl: "a", size: 1 }]);
  });

  it("mail sink: merges a re-import of the same Message-ID like Gmail, never one without", async () => {
    // Prepare
    const sink = new FakeMailSink();
    const mailbox = mailboxConfig();
    const open = async () => Readable.from([new Uint8Array([1, 2, 3])]);
    const withId = { mailbox, uidl: "a", size: 3, messageIdHeader: "<a@x>", open };
    const withoutId = { mailbox, uidl: "b", size: 3, open };

    // Act
    const first = await sink.import(withId);
    const again = await sink.import(withId);
    await sink.import(withoutId);
    await sink.import(withoutId);

    // Assess
    expect(again.gmailId).toBe(first.gmailId);
    expect([sink.countFor("a"), sink.rawImportsFor("a")]).toEqual([1, 2]);
    expect([sink.countFor("b"), sink.rawImportsFor("b")]).toEqual([2, 2]);
  });
});
