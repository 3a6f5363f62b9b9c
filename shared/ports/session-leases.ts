import type { MailboxKey } from "../core/model";

/** A held POP3 session slot; release it when the session ends. */
export interface SessionLease {
  readonly slot: number;
  readonly holder: string;
}

/**
 * Limits how many POP3 sessions this tool holds on one mailbox at once (`pop3.maxSessions`,
 * default 1), across all Lambda invocations: many servers lock the maildrop (RFC 1939 §8), and a
 * second session would only earn `-ERR [IN-USE]`. A lease expires on its own, so a crashed
 * holder cannot block the mailbox for longer than `leaseMs`.
 */
export interface SessionLeases {
  /** Takes a free slot (0..slots-1) or returns undefined when all are held and unexpired. */
  acquire(
    mailbox: MailboxKey,
    slots: number,
    holder: string,
    leaseMs: number,
  ): Promise<SessionLease | undefined>;
  /** Gives the slot back; a no-op when it has expired and been taken by another holder. */
  release(mailbox: MailboxKey, lease: SessionLease): Promise<void>;
}

/**
 * A strongly consistent look at one lease slot, for a poll chain's hold (docs/pipeline.md "Why
 * leases"): a chain poll holds the mailbox's last slot through its chain item instead of a lease
 * item, and checks the slot's lease after taking the chain, as a copier checks the chain after
 * taking the slot.
 */
export interface SessionSlots {
  /** Whether `slot` holds no unexpired lease now. */
  slotFree(mailbox: MailboxKey, slot: number): Promise<boolean>;
}
