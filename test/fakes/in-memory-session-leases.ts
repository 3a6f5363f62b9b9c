import type { MailboxKey } from "../../shared/core/model";
import type { Clock } from "../../shared/ports/clock";
import type { SessionLease, SessionLeases, SessionSlots } from "../../shared/ports/session-leases";

/** Session slots per mailbox in a Map; a lease expires by the injected clock, like the DynamoDB one. */
export class InMemorySessionLeases implements SessionLeases, SessionSlots {
  private readonly slots = new Map<string, Map<number, { holder: string; expiresAt: number }>>();

  constructor(private readonly clock: Clock) {}

  async acquire(
    mailbox: MailboxKey,
    slots: number,
    holder: string,
    leaseMs: number,
  ): Promise<SessionLease | undefined> {
    const held = this.slotsOf(mailbox);
    const now = this.clock.now();
    for (let slot = 0; slot < slots; slot++) {
      const current = held.get(slot);
      if (current === undefined || current.expiresAt <= now) {
        held.set(slot, { holder, expiresAt: now + leaseMs });
        return { slot, holder };
      }
    }
    return undefined;
  }

  async release(mailbox: MailboxKey, lease: SessionLease): Promise<void> {
    const held = this.slotsOf(mailbox);
    if (held.get(lease.slot)?.holder === lease.holder) held.delete(lease.slot);
  }

  async slotFree(mailbox: MailboxKey, slot: number): Promise<boolean> {
    const current = this.slotsOf(mailbox).get(slot);
    return current === undefined || current.expiresAt <= this.clock.now();
  }

  /** Slots currently held and unexpired, for assertions. */
  heldCount(mailbox: MailboxKey): number {
    const now = this.clock.now();
    return [...this.slotsOf(mailbox).values()].filter((s) => s.expiresAt > now).length;
  }

  private slotsOf(mailbox: MailboxKey) {
    const id = JSON.stringify([mailbox.tenant, mailbox.mailboxId]);
    let held = this.slots.get(id);
    if (held === undefined) {
      held = new Map();
      this.slots.set(id, held);
    }
    return held;
  }
}
