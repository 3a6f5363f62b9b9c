import type { PollChains } from "../ports/poll-chains";
import type { SessionLease, SessionLeases, SessionSlots } from "../ports/session-leases";
import type { MailboxKey } from "./model";

/*
 * A chain poll's POP3 session without a lease item of its own (docs/pipeline.md "Why leases",
 * "Poll chains on AWS"): the chain item's `pollUntil`, written by the take that every chain poll
 * makes anyway, is the lister's hold on the mailbox's LAST lease slot (slot maxSessions - 1), and
 * the `finish` at the end of the session is its release. That makes an idle poll two writes
 * instead of four. Mutual exclusion on that slot is write-then-read on both sides, each read
 * strongly consistent: the poll writes its hold (the take), then reads the slot's lease item; a
 * copier (or deleter, or a direct poll) writes the lease item, then reads the chain's hold. Of two
 * that overlap, at least the later reader sees the other and stands back (both may: then both
 * are busy, which the poll and the copier already handle). Slots 0 .. maxSessions - 2 are plain
 * leases, so at most maxSessions sessions are open at once.
 */

/** The hold of a chain poll that took its chain: `end` records the poll at the end of its session. */
export interface ChainHold {
  /** The POP3 session is over (or never opened): release the hold. Idempotent. */
  end(): Promise<void>;
}

/**
 * The leases of a chain poll: `acquire` succeeds when the mailbox's last slot holds no unexpired
 * lease (the chain item, already taken, is the hold); `release` ends the hold.
 */
export function chainHeldLeases(slots: SessionSlots, hold: ChainHold): SessionLeases {
  return {
    async acquire(mailbox, slotCount, holder) {
      const slot = slotCount - 1;
      if (!(await slots.slotFree(mailbox, slot))) return undefined;
      return { slot, holder };
    },
    async release() {
      await hold.end();
    },
  };
}

/**
 * Every other session's leases: `inner`'s, except that a lease on the mailbox's last slot stands
 * back (is released, and the acquire returns undefined) while a chain poll holds that slot.
 */
export function chainCheckedLeases(
  inner: SessionLeases,
  chains: Pick<PollChains, "heldUntil">,
  now: () => number,
): SessionLeases {
  return {
    async acquire(mailbox: MailboxKey, slotCount: number, holder: string, leaseMs: number) {
      const lease = await inner.acquire(mailbox, slotCount, holder, leaseMs);
      if (lease === undefined || lease.slot !== slotCount - 1) return lease;
      let heldUntil: number | undefined;
      try {
        heldUntil = await chains.heldUntil(mailbox.tenant, mailbox.mailboxId);
      } catch (error) {
        // Unknown whether a poll holds the slot: give it back rather than block the mailbox.
        await inner.release(mailbox, lease);
        throw error;
      }
      if (heldUntil === undefined || heldUntil < now()) return lease;
      await inner.release(mailbox, lease);
      return undefined;
    },
    release(mailbox: MailboxKey, lease: SessionLease) {
      return inner.release(mailbox, lease);
    },
  };
}
