import { describe, expect, it } from "vitest";
import type { SessionLeases } from "../../shared/ports/session-leases";
import { newMailbox } from "./ledger-contract";

/** A clock the contract moves by hand, handed to the implementation under test as `now`. */
export interface ManualClock {
  now(): number;
  advance(ms: number): void;
}

function manualClock(start = 1_700_000_000_000): ManualClock {
  let current = start;
  return {
    now: () => current,
    advance: (ms) => {
      current += ms;
    },
  };
}

/**
 * The behaviour every `SessionLeases` must show. The factory gets the contract's `now`, so lease
 * expiry is tested by moving the clock instead of waiting.
 */
export function describeSessionLeasesContract(
  name: string,
  makeLeases: (now: () => number) => SessionLeases | Promise<SessionLeases>,
): void {
  describe(`SessionLeases contract: ${name}`, () => {
    const LEASE_MS = 60_000;

    it("hands out one slot and refuses a second holder while it is held", async () => {
      // Prepare
      const clock = manualClock();
      const leases = await makeLeases(clock.now);
      const mailbox = newMailbox();
      // Act
      const first = await leases.acquire(mailbox, 1, "lister-1", LEASE_MS);
      const second = await leases.acquire(mailbox, 1, "lister-2", LEASE_MS);
      // Assess
      expect(first).toEqual({ slot: 0, holder: "lister-1" });
      expect(second).toBeUndefined();
    });

    it("hands out each of several slots once", async () => {
      // Prepare
      const clock = manualClock();
      const leases = await makeLeases(clock.now);
      const mailbox = newMailbox();
      // Act
      const taken = [
        await leases.acquire(mailbox, 3, "a", LEASE_MS),
        await leases.acquire(mailbox, 3, "b", LEASE_MS),
        await leases.acquire(mailbox, 3, "c", LEASE_MS),
        await leases.acquire(mailbox, 3, "d", LEASE_MS),
      ];
      // Assess
      expect(
        taken
          .slice(0, 3)
          .map((lease) => lease?.slot)
          .sort(),
      ).toEqual([0, 1, 2]);
      expect(taken[3]).toBeUndefined();
    });

    it("lets exactly one of several racing holders take a single slot", async () => {
      // Prepare
      const clock = manualClock();
      const leases = await makeLeases(clock.now);
      const mailbox = newMailbox();
      // Act
      const results = await Promise.all(
        ["a", "b", "c", "d", "e"].map((holder) => leases.acquire(mailbox, 1, holder, LEASE_MS)),
      );
      // Assess
      expect(results.filter((lease) => lease !== undefined)).toHaveLength(1);
    });

    it("keeps a lease until it expires, then lets another holder take the slot", async () => {
      // Prepare
      const clock = manualClock();
      const leases = await makeLeases(clock.now);
      const mailbox = newMailbox();
      await leases.acquire(mailbox, 1, "crashed", LEASE_MS);
      // Act
      clock.advance(LEASE_MS - 1);
      const tooEarly = await leases.acquire(mailbox, 1, "next", LEASE_MS);
      clock.advance(2);
      const afterExpiry = await leases.acquire(mailbox, 1, "next", LEASE_MS);
      // Assess
      expect(tooEarly).toBeUndefined();
      expect(afterExpiry).toEqual({ slot: 0, holder: "next" });
    });

    it("frees the slot on release", async () => {
      // Prepare
      const clock = manualClock();
      const leases = await makeLeases(clock.now);
      const mailbox = newMailbox();
      const lease = await leases.acquire(mailbox, 1, "done-soon", LEASE_MS);
      // Act
      await leases.release(mailbox, lease!);
      const next = await leases.acquire(mailbox, 1, "next", LEASE_MS);
      // Assess
      expect(next).toEqual({ slot: 0, holder: "next" });
    });

    it("ignores a late release by a holder whose lease expired and was taken over", async () => {
      // Prepare
      const clock = manualClock();
      const leases = await makeLeases(clock.now);
      const mailbox = newMailbox();
      const stale = await leases.acquire(mailbox, 1, "slow", LEASE_MS);
      clock.advance(LEASE_MS + 1);
      await leases.acquire(mailbox, 1, "new-owner", LEASE_MS);
      // Act
      await leases.release(mailbox, stale!);
      await leases.release(mailbox, stale!);
      const third = await leases.acquire(mailbox, 1, "third", LEASE_MS);
      // Assess
      expect(third).toBeUndefined();
    });

    it("keeps the slots of different mailboxes apart", async () => {
      // Prepare
      const clock = manualClock();
      const leases = await makeLeases(clock.now);
      const one = newMailbox();
      const two = newMailbox();
      await leases.acquire(one, 1, "a", LEASE_MS);
      // Act
      const other = await leases.acquire(two, 1, "b", LEASE_MS);
      // Assess
      expect(other).toEqual({ slot: 0, holder: "b" });
    });
  });
}
