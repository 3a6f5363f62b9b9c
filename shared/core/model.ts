/** The message model every layer shares. Plain data: no I/O, no library types. */

/** Identifies one POP3 mailbox of one tenant. `mailboxId` is the config's stable id. */
export interface MailboxKey {
  readonly tenant: string;
  readonly mailboxId: string;
}

/**
 * Identifies one message: POP3 message numbers are per session (RFC 1939 §7), UIDLs are not.
 * `uidl` is the *ledger id* (`shared/core/message-identity.ts`): the server's UIDL for the first
 * generation, `<uidl> <n>` once the server reused the UIDL, `<uidl> #<size>.<hash>` when it lists
 * the UIDL twice (docs/pipeline.md "Message identity").
 */
export interface MessageKey extends MailboxKey {
  readonly uidl: string;
}

/**
 * Ledger states (DESIGN.md): listed -> archived -> importing -> imported -> deleted, with
 * `quarantined` off any step and `retained` (imported, kept on the server by a deleteAfter policy
 * until it is due). `importing` is one copier's claim on the Gmail import (taken before the
 * import call, dated by `importStartedAt`): it keeps two copiers from importing one message, and
 * a claim found stale means "the import may or may not have happened" (docs/pipeline.md).
 * Adapters store the state as a string and check what they read against `LEDGER_STATES`.
 */
export const LEDGER_STATES = [
  "listed",
  "archived",
  "importing",
  "imported",
  "retained",
  "deleted",
  "quarantined",
] as const;

export type LedgerState = (typeof LEDGER_STATES)[number];

/** One ledger item per (mailbox, UIDL). Optional fields are filled in as the message moves on. */
export interface LedgerEntry extends MessageKey {
  readonly state: LedgerState;
  /** Size in octets as the server announced it in LIST (may differ slightly from RETR's bytes). */
  readonly listedSize: number;
  /** Epoch ms when the lister first saw the message. */
  readonly listedAt: number;
  readonly archiveKey?: string;
  /** Size and SHA-256 (hex) of the archived bytes, i.e. what RETR served after dot-unstuffing. */
  readonly archivedSize?: number;
  readonly sha256?: string;
  /** The Message-ID header, if the message has one (Gmail merges re-imports by it). */
  readonly messageIdHeader?: string;
  /** Epoch ms of the topmost `Received:` header (arrival at the provider), for `DeliveryDelay`. */
  readonly receivedAt?: number;
  readonly archivedAt?: number;
  /**
   * Epoch ms when a copier last claimed the import (moved the entry to `importing`). Meaningful
   * only in `importing`; left behind afterwards (adapters cannot remove fields).
   */
  readonly importStartedAt?: number;
  readonly gmailId?: string;
  readonly importedAt?: number;
  readonly deletedAt?: number;
  /** Why the message was quarantined (e.g. Gmail's 400 reason), and the error code. */
  readonly quarantineReason?: string;
  readonly quarantineCode?: string;
  readonly quarantinedAt?: number;
  /** Failed copy attempts so far; a message that keeps failing is quarantined. */
  readonly attempts: number;
}

/** A message as one POP3 session sees it: `number` is valid only inside that session. */
export interface ServerMessage {
  readonly number: number;
  /** The server's UIDL, or `invalidUidlStandIn` of it when it breaks RFC 1939 §7. */
  readonly uidl: string;
  readonly size: number;
  /** Set when the server's UIDL breaks RFC 1939 §7: why, with a bounded printable excerpt. */
  readonly invalidUidl?: string;
}

/** Work for the copy step: one message of one mailbox. */
export interface CopyJob extends MessageKey {
  readonly listedSize: number;
  readonly listedAt: number;
}

/** Size and SHA-256 (lower-case hex) of a byte sequence. */
export interface ContentDigest {
  readonly size: number;
  readonly sha256: string;
}
