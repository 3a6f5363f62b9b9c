import type { MailboxConfig } from "../config/tenant-config";

/** One message to deliver, with a way to (re)open its bytes so an upload can restart cleanly. */
export interface ImportRequest {
  readonly mailbox: MailboxConfig;
  readonly uidl: string;
  /** Bytes `open` yields: the Gmail copy (the archived bytes and the prepended trace lines). */
  readonly size: number;
  /**
   * The Message-ID the copy carries (the message's own, or the one the core synthesized, see
   * `shared/core/gmail-copy.ts`): Gmail merges a re-import by it, a look-up searches by it.
   */
  readonly messageIdHeader?: string;
  /**
   * The copy's own `X-Pop2Gmail-Id`: the only proof a look-up accepts that Gmail holds *this*
   * message. Without it a sink never takes a look-up as proof.
   */
  readonly traceId?: string;
  readonly open: () => Promise<AsyncIterable<Uint8Array>>;
}

/** What a look-up for an earlier import searches by and must find. */
export interface ImportProof {
  /** The Message-ID the earlier copy carried (searched with `rfc822msgid:`). */
  readonly messageIdHeader: string;
  /** The `X-Pop2Gmail-Id` the earlier copy carried: a candidate without it is another message. */
  readonly traceId: string;
}

/**
 * Where messages are delivered (Gmail `users.messages.import`).
 *
 * Errors: `CredentialsError` (token expired/revoked: the mailbox's credentials are broken),
 * `RateLimitedError` (retry after `retryAfterMs`), `MessageRejectedError` (quarantine, reason
 * kept), `LabelError` (the mailbox's label could not be applied; the message is not at fault),
 * `TransientError`/`TimeoutError` (retry; an uncertain outcome unless `requestNotSent`).
 * A sink must report an uncertain outcome as uncertain, and never take a look-up by Message-ID
 * alone as proof of an import (docs/pipeline.md, "The import claim").
 */
export interface MailSink {
  /** Imports the message and returns the id the destination gave it. */
  import(request: ImportRequest): Promise<{ gmailId: string }>;
  /**
   * Looks for an earlier import of this very copy: a message with this Message-ID that carries
   * this trace id (needs a read scope). Returns undefined when there is none or when the sink
   * cannot look (then the caller relies on Gmail's merge by Message-ID).
   */
  findExisting(mailbox: MailboxConfig, proof: ImportProof): Promise<string | undefined>;
  /**
   * How many imports into this mailbox's Gmail user are worth keeping in flight at once (the
   * sink's own concurrency cap for the user). The copy batch RETRs the next message while up to
   * this many are pending (docs/pipeline.md, "Imports in flight"); absent: the core's default.
   */
  importsInFlight?(mailbox: MailboxConfig): number;
}
