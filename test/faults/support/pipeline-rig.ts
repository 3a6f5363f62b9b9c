import { MemoryWorkQueue } from "../../../shared/adapters/local/memory-work-queue";
import { type MailboxConfig, mailboxSchema } from "../../../shared/config/tenant-config";
import { type CopyBatchResult, copyBatch } from "../../../shared/core/copy-batch";
import type { CopyOutcome } from "../../../shared/core/copy-message";
import { listNewMessages } from "../../../shared/core/list-new-messages";
import type { LedgerEntry } from "../../../shared/core/model";
import type { PipelineDeps } from "../../../shared/core/pipeline-deps";
import { delaySecondsOf, resendAfter } from "../../../shared/core/retry-rule";
import type { MailSink } from "../../../shared/ports/mail-sink";
import type { Pop3Source } from "../../../shared/ports/pop3-source";
import { InMemoryArchiveStore } from "../../fakes/in-memory-archive-store";
import { TestClock } from "../../fakes/in-memory-clock";
import { InMemoryLedger } from "../../fakes/in-memory-ledger";
import { InMemorySessionLeases } from "../../fakes/in-memory-session-leases";
import { RecordingTelemetry } from "../../fakes/in-memory-telemetry";

export const TENANT = "acme";

/** A mailbox config parsed by the real schema, with overrides. */
export function faultMailbox(overrides: Record<string, unknown> = {}): MailboxConfig {
  return mailboxSchema.parse({
    id: "info@acme.it",
    pop3: { host: "pop.example.net", user: "info@acme.it", passwordSecret: "pop-secret" },
    gmail: { user: "info.acme@gmail.com", credentialsSecret: "google-secret" },
    ...overrides,
  });
}

/**
 * The pipeline core over in-memory ledger, archive, queue and leases, with the POP3 source and
 * the mail sink given by the test (in-memory fakes, or the real client and sink over stand-ins).
 */
export class PipelineRig {
  readonly clock = new TestClock();
  ledger = new InMemoryLedger();
  readonly archive = new InMemoryArchiveStore(this.clock, 700);
  readonly queue = new MemoryWorkQueue(this.clock);
  readonly leases = new InMemorySessionLeases(this.clock);
  readonly telemetry = new RecordingTelemetry();
  deps: PipelineDeps;

  constructor(
    readonly mailbox: MailboxConfig,
    pop3: Pop3Source,
    sink: MailSink,
  ) {
    this.deps = {
      ledger: this.ledger,
      archive: this.archive,
      sink,
      queue: this.queue,
      pop3,
      leases: this.leases,
      clock: this.clock,
      telemetry: this.telemetry,
      holderId: "faults",
    };
  }

  /**
   * One pass, with no time passing: a poll, then every visible job copied in batches of 10 (each
   * batch one POP3 session that ends by deleting what it copied). Retries stay in the queue.
   */
  async onePass(): Promise<{ outcomes: CopyOutcome[]; batches: CopyBatchResult[] }> {
    await listNewMessages(this.deps, TENANT, this.mailbox);
    const outcomes: CopyOutcome[] = [];
    const batches: CopyBatchResult[] = [];
    for (;;) {
      const jobs = this.queue.take(10);
      if (jobs.length === 0) break;
      const result = await copyBatch(this.deps, TENANT, this.mailbox, jobs);
      batches.push(result);
      outcomes.push(...result.outcomes);
      for (const [i, outcome] of result.outcomes.entries()) {
        const job = jobs[i];
        // The one rule the copy-message function and the local runtime use (docs/pipeline.md).
        const verdict = resendAfter(outcome);
        if (job !== undefined && verdict.resend) {
          await this.queue.enqueue([job], { delaySeconds: delaySecondsOf(verdict.delayMs) });
        }
      }
    }
    return { outcomes, batches };
  }

  /**
   * The ledger is lost (a restored backup, a new disk: issue 10 item 6): every entry and the
   * snapshot are gone; archive, queue, leases and Gmail keep what they hold.
   */
  loseLedger(): void {
    this.ledger = new InMemoryLedger();
    this.deps = { ...this.deps, ledger: this.ledger };
  }

  /** The ledger entry of a UIDL. */
  entry(uidl: string): Promise<LedgerEntry | undefined> {
    return this.ledger.get({ tenant: TENANT, mailboxId: this.mailbox.id, uidl });
  }

  /** The archived bytes of a UIDL, if any object holds them. */
  archived(uidl: string): Buffer | undefined {
    const found = [...this.archive.objects.values()].find((o) => o.metadata.uidl === uidl);
    return found === undefined ? undefined : Buffer.from(found.bytes);
  }
}
