/**
 * The poll chain of each mailbox on AWS (docs/pipeline.md "Poll chains"): a poll message
 * `{mailboxId, chain, seq}` on the tenant's poll queue, delayed by the mailbox's interval, makes
 * the lister poll once and send the next one. The chain item, one per mailbox, says which message
 * is the live one, so a duplicate or stale message is a no-op and two polls of one mailbox never
 * overlap.
 */

/** Why the last poll of a mailbox did not succeed. */
export type PollFailureKind =
  /** The maildrop was locked or no session lease was free: normal now and then. */
  | "busy"
  /** The POP3 server or Google refused the credentials. */
  | "credentials"
  /** A retryable error (timeout, dropped connection, throttling). */
  | "retryable"
  /** Anything else (TLS, configuration, permissions, a bug). */
  | "error";

/** One mailbox's chain, as stored. */
export interface PollChainItem {
  readonly mailboxId: string;
  /** The live chain's id; a message of another chain is stale. */
  readonly chain: string;
  /** The live message's sequence number; the message with this number may take the chain. */
  readonly seq: number;
  /** When the live message is due (epoch ms): what the keeper compares to notice a lost message. */
  readonly nextPollAt: number;
  /** Set while a poll holds the chain: the time (epoch ms) after which the poll is taken as dead. */
  readonly pollUntil?: number;
  /** The first time any chain of this mailbox started (kept across restarts), epoch ms. */
  readonly firstStartedAt: number;
  /** When a poll of this mailbox last reached the server and diffed the list, epoch ms. */
  readonly lastSucceededAt?: number;
  /** When the last poll ended, epoch ms. */
  readonly lastPolledAt?: number;
  /** Why the last poll did not succeed; absent when it did. */
  readonly lastFailure?: PollFailureKind;
  /** The error code of that failure, for the keeper's log line. */
  readonly lastFailureCode?: string;
}

/** A poll message's body. */
export interface PollMessage {
  readonly mailboxId: string;
  readonly chain: string;
  readonly seq: number;
}

/** How a poll ended, as `finish` records it. */
export interface PollEnd {
  readonly at: number;
  /** When the next message (already decided) is due. */
  readonly nextPollAt: number;
  readonly failure?: { readonly kind: PollFailureKind; readonly code?: string };
}

/**
 * The chain items of a tenant (DynamoDB: one partition per tenant in the ledger table, so the
 * keeper reads them all with one Query). Every write is conditional on what the writer saw.
 */
export interface PollChains {
  /** Every chain item of the tenant. */
  list(tenant: string): Promise<PollChainItem[]>;
  /**
   * Starts chain `chain` at seq 0, due at `dueAt` (default `now`), replacing the stored one only
   * if it is still exactly `seen` (chain, seq and pollUntil; undefined: no item yet). Keeps
   * `firstStartedAt` (else `now`), `lastSucceededAt` and the last failure. False when the item
   * changed meanwhile.
   */
  start(
    tenant: string,
    mailboxId: string,
    chain: string,
    now: number,
    seen: PollChainItem | undefined,
    dueAt?: number,
  ): Promise<boolean>;
  /**
   * Takes the chain for one poll: only when `message` is the live one (same chain and seq) and no
   * poll holds it (no `pollUntil`, or one that has passed: that poll died). Sets `pollUntil`.
   * Returns the item as taken, or undefined when the message is stale, a duplicate, or its poll
   * is still running.
   */
  take(
    tenant: string,
    message: PollMessage,
    now: number,
    pollUntil: number,
  ): Promise<PollChainItem | undefined>;
  /**
   * Ends the poll that took `message` at `pollUntil`: seq + 1, no `pollUntil`, the outcome
   * recorded. False when the chain moved on meanwhile (the keeper restarted it).
   */
  finish(tenant: string, message: PollMessage, pollUntil: number, end: PollEnd): Promise<boolean>;
  /**
   * Corrects what `finish` recorded at the end of the poll's POP3 session (`recorded`, taken as a
   * success) once the poll's outcome is known to differ: `end` replaces it, and a failure puts
   * back `lastSucceededAt` as it was before the poll (`succeededBefore`). Only while the chain is
   * still at `message.seq + 1`, not held, and still shows `recorded`; false otherwise.
   */
  amend(
    tenant: string,
    message: PollMessage,
    recorded: PollEnd,
    end: PollEnd,
    succeededBefore: number | undefined,
  ): Promise<boolean>;
  /**
   * When the poll holding the mailbox's chain is taken as dead (its `pollUntil`), read strongly
   * consistent; undefined when no poll holds it (or there is no chain). A poll's hold is its POP3
   * session lease on the mailbox's last slot (docs/pipeline.md "Why leases").
   */
  heldUntil(tenant: string, mailboxId: string): Promise<number | undefined>;
}

/** The tenant's poll queue: where poll messages wait out their delay. */
export interface PollQueue {
  /** Sends `message`, visible after `delaySeconds` (0-900, SQS's per-message timer). */
  send(message: PollMessage, delaySeconds: number): Promise<void>;
}
