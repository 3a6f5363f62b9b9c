import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { chainCheckedLeases, chainHeldLeases } from "../../shared/core/chain-session-leases";
import type { PollChains } from "../../shared/ports/poll-chains";
import type { SessionLeases, SessionSlots } from "../../shared/ports/session-leases";
import { newMailbox } from "./ledger-contract";

/** What the contract needs: the chain items, the lease items (and a look at one slot), sharing `now`. */
export interface ChainLeasePorts {
  readonly chains: PollChains;
  readonly leases: SessionLeases;
  readonly slots: SessionSlots;
}

const LEASE_MS = 60_000;
const POLL_MS = 300_000;

/**
 * Mutual exclusion between a chain poll's session (held by its chain item,
 * shared/core/chain-session-leases.ts) and every other session (a lease item), on the mailbox's
 * last slot, for one implementation of the three ports (docs/pipeline.md "Why leases").
 */
export function describeChainSessionLeasesContract(
  name: string,
  make: (now: () => number) => ChainLeasePorts | Promise<ChainLeasePorts>,
): void {
  describe(`chain-held sessions and leases exclude each other: ${name}`, () => {
    async function setup() {
      let current = 1_700_000_000_000;
      const now = () => current;
      const ports = await make(now);
      // A tenant of its own: other suites list the chain items of theirs.
      const mailbox = { ...newMailbox(), tenant: `leases-${randomUUID().slice(0, 8)}` };
      const copier = chainCheckedLeases(ports.leases, ports.chains, now);
      await ports.chains.start(mailbox.tenant, mailbox.mailboxId, "c1", now(), undefined);
      const message = { mailboxId: mailbox.mailboxId, chain: "c1", seq: 0 };
      let ended = 0;
      const hold = {
        end: async () => {
          ended++;
          await ports.chains.finish(mailbox.tenant, message, now() + POLL_MS, {
            at: now(),
            nextPollAt: now(),
          });
        },
      };
      return {
        ...ports,
        now,
        mailbox,
        copier,
        poller: chainHeldLeases(ports.slots, hold),
        /** The chain poll's take: its hold, until `now() + POLL_MS`. */
        take: () => ports.chains.take(mailbox.tenant, message, now(), now() + POLL_MS),
        advance: (ms: number) => {
          current += ms;
        },
        ended: () => ended,
      };
    }

    it("refuses a copier the last slot while a chain poll holds it, and grants it once the poll's session ended", async () => {
      // Prepare
      const s = await setup();
      await s.take();
      const polling = await s.poller.acquire(s.mailbox, 1, "lister", LEASE_MS);
      // Act
      const during = await s.copier.acquire(s.mailbox, 1, "copier", LEASE_MS);
      await s.poller.release(s.mailbox, polling!);
      const after = await s.copier.acquire(s.mailbox, 1, "copier", LEASE_MS);
      // Assess
      expect(polling).toEqual({ slot: 0, holder: "lister" });
      expect(during).toBeUndefined();
      expect(after).toEqual({ slot: 0, holder: "copier" });
      expect(s.ended()).toBe(1);
    });

    it("refuses a chain poll's session while a copier holds the last slot, and grants it after the copier's release", async () => {
      // Prepare
      const s = await setup();
      const copying = await s.copier.acquire(s.mailbox, 1, "copier", LEASE_MS);
      await s.take();
      // Act
      const during = await s.poller.acquire(s.mailbox, 1, "lister", LEASE_MS);
      await s.copier.release(s.mailbox, copying!);
      const after = await s.poller.acquire(s.mailbox, 1, "lister", LEASE_MS);
      // Assess
      expect(copying).toEqual({ slot: 0, holder: "copier" });
      expect(during).toBeUndefined();
      expect(after).toEqual({ slot: 0, holder: "lister" });
    });

    it("lets a chain poll in once the copier's lease expired", async () => {
      // Prepare
      const s = await setup();
      await s.copier.acquire(s.mailbox, 1, "copier", LEASE_MS);
      await s.take();
      // Act
      s.advance(LEASE_MS);
      const after = await s.poller.acquire(s.mailbox, 1, "lister", LEASE_MS);
      // Assess
      expect(after).toEqual({ slot: 0, holder: "lister" });
    });

    it("lets a copier in once the holding poll is past its pollUntil (the invocation died)", async () => {
      // Prepare
      const s = await setup();
      await s.take();
      // Act
      s.advance(POLL_MS);
      const atDeadline = await s.copier.acquire(s.mailbox, 1, "copier-1", LEASE_MS);
      s.advance(1);
      const after = await s.copier.acquire(s.mailbox, 1, "copier-2", LEASE_MS);
      // Assess
      expect(atDeadline).toBeUndefined();
      expect(after).toEqual({ slot: 0, holder: "copier-2" });
    });

    it("with two slots: a copier on the first slot and the chain poll on the last; a second copier is refused", async () => {
      // Prepare
      const s = await setup();
      const first = await s.copier.acquire(s.mailbox, 2, "copier-1", LEASE_MS);
      await s.take();
      // Act
      const polling = await s.poller.acquire(s.mailbox, 2, "lister", LEASE_MS);
      const second = await s.copier.acquire(s.mailbox, 2, "copier-2", LEASE_MS);
      // Assess
      expect(first).toEqual({ slot: 0, holder: "copier-1" });
      expect(polling).toEqual({ slot: 1, holder: "lister" });
      expect(second).toBeUndefined();
    });

    it("with two slots: a copier gets the first slot while a chain poll holds the last", async () => {
      // Prepare
      const s = await setup();
      await s.take();
      const polling = await s.poller.acquire(s.mailbox, 2, "lister", LEASE_MS);
      // Act
      const copying = await s.copier.acquire(s.mailbox, 2, "copier", LEASE_MS);
      // Assess
      expect(polling).toEqual({ slot: 1, holder: "lister" });
      expect(copying).toEqual({ slot: 0, holder: "copier" });
    });

    it("refuses a second copier when every slot holds a lease, without asking the chain", async () => {
      // Prepare
      const s = await setup();
      const copier = chainCheckedLeases(
        s.leases,
        { heldUntil: () => Promise.reject(new Error("the chain is not asked when no slot is free")) },
        s.now,
      );
      const first = await s.leases.acquire(s.mailbox, 1, "copier-1", LEASE_MS);
      // Act
      const second = await copier.acquire(s.mailbox, 1, "copier-2", LEASE_MS);
      // Assess
      expect(first).toEqual({ slot: 0, holder: "copier-1" });
      expect(second).toBeUndefined();
    });

    it("gives the copier's lease back when the chain's hold cannot be read", async () => {
      // Prepare
      const s = await setup();
      const broken = new Error("throttled");
      const copier = chainCheckedLeases(
        s.leases,
        {
          heldUntil: () => Promise.reject(broken),
        },
        s.now,
      );
      // Act
      const failed = copier.acquire(s.mailbox, 1, "copier-1", LEASE_MS);
      // Assess
      await expect(failed).rejects.toBe(broken);
      expect(await s.slots.slotFree(s.mailbox, 0)).toBe(true);
    });

    it("of a copier and a chain poll that both wrote before either read, neither opens a session", async () => {
      // Prepare: the copier's lease item is written (the inner acquire), then the poll's take.
      const s = await setup();
      const written = await s.leases.acquire(s.mailbox, 1, "copier", LEASE_MS);
      await s.take();
      // Act: now both read the other's write.
      const pollerSees = await s.poller.acquire(s.mailbox, 1, "lister", LEASE_MS);
      const copierSeesHold = await s.chains.heldUntil(s.mailbox.tenant, s.mailbox.mailboxId);
      // Assess
      expect(written).toEqual({ slot: 0, holder: "copier" });
      expect(pollerSees).toBeUndefined();
      expect(copierSeesHold).toBeGreaterThan(s.now());
    });
  });
}
