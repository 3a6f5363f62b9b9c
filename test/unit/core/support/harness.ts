import { MemoryWorkQueue } from "../../../../shared/adapters/local/memory-work-queue";
import { type MailboxConfig, mailboxSchema } from "../../../../shared/config/tenant-config";
import { type CopyBatchResult, copyBatch } from "../../../../shared/core/copy-batch";
import { deleteCopiedInOwnSession } from "../../../../shared/core/delete-copied";
import { type ListResult, listNewMessages } from "../../../../shared/core/list-new-messages";
import { serverUidlOf } from "../../../../shared/core/message-identity";
import type { CopyJob } from "../../../../shared/core/model";
import type { PipelineDeps } from "../../../../shared/core/pipeline-deps";
import { delaySecondsOf, resendAfter } from "../../../../shared/core/retry-rule";
import { InMemoryArchiveStore } from "../../../fakes/in-memory-archive-store";
import { TestClock } from "../../../fakes/in-memory-clock";
import { CountingLedger, InMemoryLedger } from "../../../fakes/in-memory-ledger";
import { FakeMailSink } from "../../../fakes/in-memory-mail-sink";
import { InMemoryPop3Source } from "../../../fakes/in-memory-pop3-source";
import { InMemorySessionLeases } from "../../../fakes/in-memory-session-leases";
import { RecordingTelemetry } from "../../../fakes/in-memory-telemetry";

export const TENANT = "acme";

/** A valid mailbox config with overrides, parsed by the real schema so defaults apply. */
export function mailboxConfig(overrides: Record<string, unknown> = {}): MailboxConfig {
  return mailboxSchema.parse({
    id: "info@acme.it",
    pop3: { host: "pop.example.net", user: "info@acme.it", passwordSecret: "pop-secret" },
    gmail: { user: "info.acme@gmail.com", credentialsSecret: "google-secret" },
    ...overrides,
  });
}

let counter = 0;

/**
 * An awkward test message: CRLF line ends, a folded topmost Received with a comment, 8-bit and
 * NUL bytes in the body, and (unless `messageId: null`) a Message-ID.
 */
export function makeMessage(
  options: { messageId?: string | null; receivedAt?: number; bodyBytes?: number } = {},
): Uint8Array {
  counter++;
  const received = new Date(options.receivedAt ?? Date.UTC(2026, 0, 15, 8, 59, 0)).toUTCString();
  const lines = [
    "Received: from mx.sender.example (mx.sender.example [192.0.2.1])",
    `\tby pop.example.net with ESMTPS id ${counter}; ${received.replace("GMT", "+0000")} (UTC)`,
    "Received: from older.example by mx.sender.example; Mon, 1 Jan 2024 00:00:00 +0000",
    ...(options.messageId === null
      ? []
      : [`Message-ID: ${options.messageId ?? `<m${counter}@sender.example>`}`]),
    `Subject: test ${counter}`,
    "",
    "",
  ].join("\r\n");
  const head = Buffer.from(lines, "latin1");
  const body = Buffer.alloc(options.bodyBytes ?? 300);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7 + counter) % 256; // 8-bit, NUL, bare CR/LF
  return new Uint8Array(Buffer.concat([head, body, Buffer.from("\r\n")]));
}

/** Thrown by injected faults: stands for the process dying at that point. */
export class CrashError extends Error {}

/**
 * Makes `target[method]` throw a `CrashError` once, before or after the real call, when `when`
 * matches its arguments. Plain instance patching of a fake; the core is never mocked.
 */
export function crashOnce<T extends object, K extends keyof T>(
  target: T,
  method: K,
  options: { after: boolean; when?: (...args: never[]) => boolean },
): void {
  const original = target[method] as unknown as (...args: unknown[]) => Promise<unknown>;
  let armed = true;
  const patched = async (...args: unknown[]) => {
    const hit =
      armed && (options.when === undefined || (options.when as (...a: unknown[]) => boolean)(...args));
    if (hit && !options.after) {
      armed = false;
      throw new CrashError(`crash before ${String(method)}`);
    }
    const result = await original.apply(target, args);
    if (hit) {
      armed = false;
      throw new CrashError(`crash after ${String(method)}`);
    }
    return result;
  };
  (target as Record<K, unknown>)[method] = patched;
}

/** All the in-memory adapters wired together, plus a driver that plays Lambda + SQS. */
export class Harness {
  readonly clock = new TestClock();
  readonly store = new InMemoryLedger();
  readonly ledger = new CountingLedger(this.store);
  readonly archive = new InMemoryArchiveStore(this.clock, 700);
  readonly sink = new FakeMailSink();
  readonly queue = new MemoryWorkQueue(this.clock);
  readonly pop3 = new InMemoryPop3Source();
  readonly leases = new InMemorySessionLeases(this.clock);
  readonly telemetry = new RecordingTelemetry();
  readonly deps: PipelineDeps;
  /** UIDLs whose deletion was committed while archive or Gmail did not hold them. */
  readonly earlyDeletes: string[] = [];

  constructor(readonly mailbox: MailboxConfig = mailboxConfig()) {
    this.deps = {
      ledger: this.ledger,
      archive: this.archive,
      sink: this.sink,
      queue: this.queue,
      pop3: this.pop3,
      leases: this.leases,
      clock: this.clock,
      telemetry: this.telemetry,
      holderId: "test",
    };
    this.pop3.chunkSize = 333;
    this.pop3.onCommit = (uidls) => {
      for (const uidl of uidls) {
        // Ledger ids name the server UIDL first (docs/pipeline.md "Message identity").
        const archived = [...this.archive.objects.values()].some(
          (o) => serverUidlOf(o.metadata.uidl) === uidl,
        );
        const inGmail = this.sink.imported.some((m) => serverUidlOf(m.uidl) === uidl);
        if (!archived || !inGmail) this.earlyDeletes.push(uidl);
      }
    };
  }

  get key() {
    return { tenant: TENANT, mailboxId: this.mailbox.id };
  }

  poll(): Promise<ListResult> {
    return listNewMessages(this.deps, TENANT, this.mailbox);
  }

  /** One copy invocation over up to 10 visible jobs; a crash puts them back, as SQS would. */
  async copyVisible(): Promise<CopyBatchResult | undefined> {
    const jobs = this.queue.take(10);
    if (jobs.length === 0) return undefined;
    let result: CopyBatchResult;
    try {
      result = await copyBatch(this.deps, TENANT, this.mailbox, jobs);
    } catch (error) {
      await this.queue.enqueue(jobs, { delaySeconds: 60 });
      throw error;
    }
    for (const [i, outcome] of result.outcomes.entries()) {
      // The one rule the copy-message function and the local runtime use (docs/pipeline.md).
      const verdict = resendAfter(outcome);
      if (verdict.resend) {
        await this.queue.enqueue([jobs[i] as CopyJob], { delaySeconds: delaySecondsOf(verdict.delayMs) });
      }
    }
    return result;
  }

  /** Polls, copies, deletes and lets time pass until nothing is left to do. */
  async runUntilQuiet(maxRounds = 50): Promise<void> {
    for (let round = 0; round < maxRounds; round++) {
      const listed = await this.poll();
      if (listed.kind === "listed" && listed.deletesDue > 0) {
        await deleteCopiedInOwnSession(this.deps, TENANT, this.mailbox, { uidls: listed.dueUidls });
      }
      while ((await this.copyVisible()) !== undefined) {}
      const quiet =
        this.queue.size === 0 && listed.kind === "listed" && listed.idle && listed.deletesDue === 0;
      if (quiet) return;
      this.clock.advance(Math.max(60_000, (this.queue.nextVisibleAt() ?? 0) - this.clock.now()));
    }
    throw new Error("pipeline did not settle");
  }

  /** Runs a step that is expected to crash, swallowing only the injected crash. */
  async survive(step: () => Promise<unknown>): Promise<boolean> {
    try {
      await step();
      return false;
    } catch (error) {
      if (error instanceof CrashError) return true;
      throw error;
    }
  }
}
