/**
 * What the core reports about its work. Handlers map these events to Powertools logs and EMF
 * metrics; the local runtime to its own log. Events carry ids, sizes and delays only: never a
 * password, token or message body (DESIGN.md invariant 6).
 */

/** Fields every message event carries, so each log line names tenant, mailbox and UIDL. */
export interface MessageEventBase {
  readonly tenant: string;
  readonly mailboxId: string;
  readonly uidl: string;
}

/** Fields every mailbox-level event carries. */
export interface MailboxEventBase {
  readonly tenant: string;
  readonly mailboxId: string;
}

/** Why a mailbox could not be worked on now; never a message failure (DESIGN.md invariant 4). */
export type BusyReason = "no-lease" | "IN-USE" | "LOGIN-DELAY";

/** One thing that happened in the pipeline, as a tagged union on `type`. */
export type PipelineEvent =
  | (MessageEventBase & { readonly type: "listed"; readonly bytes: number; readonly listedAt: number })
  | (MessageEventBase & {
      readonly type: "archived";
      readonly archiveKey: string;
      readonly bytes: number;
      readonly sha256: string;
    })
  | (MessageEventBase & {
      readonly type: "imported";
      readonly archiveKey: string;
      readonly gmailId: string;
      readonly bytes: number;
      /** `PipelineDelay`: first listed -> in Gmail, in ms. */
      readonly pipelineDelayMs: number;
      /** `DeliveryDelay`: topmost `Received:` date -> in Gmail, in ms; absent without a parsable date. */
      readonly deliveryDelayMs?: number;
      /** True when an earlier import was found and reused instead of importing again. */
      readonly reusedEarlierImport: boolean;
    })
  | (MessageEventBase & {
      readonly type: "retained";
      readonly gmailId: string;
      /** Epoch ms from which the message may be deleted; absent for `deleteAfter: never`. */
      readonly deleteDueAt?: number;
    })
  | (MessageEventBase & { readonly type: "deleted"; readonly archiveKey?: string; readonly gmailId?: string })
  | (MessageEventBase & {
      readonly type: "quarantined";
      readonly code: string;
      readonly reason: string;
      readonly archiveKey?: string;
      readonly bytes?: number;
    })
  | (MessageEventBase & {
      readonly type: "retry-scheduled";
      readonly code: string;
      readonly attempt: number;
      readonly retryAfterMs: number;
    })
  /** The lister sent a job again because it sat in listed/archived past the grace period. */
  | (MessageEventBase & { readonly type: "requeued"; readonly state: string })
  /** The message left the server (another client deleted it) before it was copied. */
  | (MessageEventBase & { readonly type: "vanished"; readonly state: string })
  | (MailboxEventBase & { readonly type: "busy"; readonly reason: BusyReason })
  | (MailboxEventBase & {
      readonly type: "credentials-broken";
      readonly service: string;
      readonly code: string;
    })
  /** DELEs were sent but QUIT did not commit them (RFC 1939 §6): nothing was deleted. */
  | (MailboxEventBase & { readonly type: "delete-uncommitted"; readonly messages: number })
  | (MailboxEventBase & {
      readonly type: "poll-completed";
      readonly onServer: number;
      readonly newMessages: number;
      readonly requeued: number;
      readonly vanished: number;
      readonly deletesDue: number;
      /** True when nothing changed and nothing was due: the poll cost one snapshot read. */
      readonly idle: boolean;
    });

/** The event type names, for exhaustive switches in the mappers. */
export type PipelineEventType = PipelineEvent["type"];

/** Receives pipeline events. Must not throw and must not block: buffer, then flush elsewhere. */
export interface Telemetry {
  record(event: PipelineEvent): void;
}
