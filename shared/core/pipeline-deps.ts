import type { ArchiveStore } from "../ports/archive-store";
import type { Clock } from "../ports/clock";
import type { Ledger } from "../ports/ledger";
import type { MailSink } from "../ports/mail-sink";
import type { Pop3Source } from "../ports/pop3-source";
import type { SessionLeases } from "../ports/session-leases";
import type { Telemetry } from "../ports/telemetry";
import type { WorkQueue } from "../ports/work-queue";

/**
 * Everything the use cases may need. Each use case declares the subset it uses with `Pick`, so
 * a caller builds only what it needs and a test sees at a glance what a use case touches.
 */
export interface PipelineDeps {
  readonly ledger: Ledger;
  readonly archive: ArchiveStore;
  readonly sink: MailSink;
  readonly queue: WorkQueue;
  readonly pop3: Pop3Source;
  readonly leases: SessionLeases;
  readonly clock: Clock;
  readonly telemetry: Telemetry;
  /** Identifies this process in session leases (a Lambda request id, or host + pid locally). */
  readonly holderId?: string;
  /**
   * How long a session lease taken now may last (default `DEFAULT_SESSION_LEASE_MS`). A Lambda
   * function passes the rest of its invocation plus a margin, so a holder killed at its timeout
   * blocks the mailbox no longer than that (docs/pipeline.md, "Why leases").
   */
  readonly sessionLeaseMs?: () => number;
}

/** A telemetry sink that drops every event, for callers that do not report. */
export const silentTelemetry: Telemetry = { record: () => {} };
