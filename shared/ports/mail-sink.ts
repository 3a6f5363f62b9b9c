import type { MailboxConfig } from "../config/tenant-config";

/** One message to deliver, with a way to (re)open its bytes so an upload can restart cleanly. */
export interface ImportRequest {
  readonly mailbox: MailboxConfig;
  readonly uidl: string;
  readonly size: number;
  /** The Message-ID header if present: lets a sink with read scope find an earlier import. */
  readonly messageIdHeader?: string;
  readonly open: () => Promise<AsyncIterable<Uint8Array>>;
}

/**
 * Where messages are delivered (Gmail `users.messages.import`).
 *
 * Errors: `CredentialsError` (token expired/revoked: the mailbox's credentials are broken),
 * `RateLimitedError` (retry after `retryAfterMs`), `MessageRejectedError` (quarantine, reason
 * kept), `TransientError`/`TimeoutError` (retry).
 */
export interface MailSink {
  /** Imports the message and returns the id the destination gave it. */
  import(request: ImportRequest): Promise<{ gmailId: string }>;
  /**
   * Looks for an earlier import of the same Message-ID (needs a read scope). Returns undefined
   * when there is none or when the sink cannot look (then the caller relies on Gmail's merge).
   */
  findExisting(mailbox: MailboxConfig, messageIdHeader: string): Promise<string | undefined>;
}
