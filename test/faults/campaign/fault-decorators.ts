import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { S3Client } from "@aws-sdk/client-s3";
import { ConnectionClosedError, MailboxBusyError, TransientError } from "../../../shared/core/errors";
import type { CopyJob, ServerMessage } from "../../../shared/core/model";
import type { ArchiveStore } from "../../../shared/ports/archive-store";
import type { ImportRequest, MailSink } from "../../../shared/ports/mail-sink";
import type { Pop3Session, Pop3Source } from "../../../shared/ports/pop3-source";
import type { EnqueueOptions, WorkQueue } from "../../../shared/ports/work-queue";
import type { FaultDice } from "./seeded-faults";

/** Stands for the process dying at a seam: not one of our errors, so the core never handles it. */
export class CrashError extends Error {
  constructor(readonly seam: string) {
    super(`injected crash ${seam}`);
  }
}

/** Every fault the campaign can inject, each with its probability per opportunity. */
export const FAULT_KINDS = [
  "crash-after-retr",
  "crash-after-archive-put",
  "crash-after-verify",
  "crash-after-import",
  "crash-between-dele-and-quit",
  "crash-after-quit",
  "crash-after-enqueue",
  "quit-never-came",
  "login-delay",
  "retr-connection-cut",
  "s3-5xx-attempt",
  "s3-5xx-call",
  "dynamodb-5xx-attempt",
  "dynamodb-5xx-call",
  "gmail-429",
  "gmail-5xx",
  "gmail-5xx-after-store",
  "gmail-timeout",
  "gmail-reset",
  "gmail-token-5xx",
  "sqs-redelivery",
  "sqs-concurrent-redelivery",
  "duplicate-enqueue",
  "duplicate-past-dedup-window",
  "sqs-hold-back-fails",
  "archive-enospc",
  "archive-erofs",
  "s3-access-denied",
  "gmail-5xx-shared-message-id",
  "gmail-labels-400",
  "gmail-400-rejects-message",
  "gmail-error-echoes-credentials",
  "uidl-reuse-after-dele",
  "delete-event-redelivered",
  "ledger-emptied",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
export type CampaignDice = FaultDice<FaultKind>;

/** Called before a QUIT that would commit DELEs, with the UIDLs it commits. */
export type QuitAudit = (uidls: readonly string[]) => Promise<void>;

interface MiddlewareAdder {
  add(
    middleware: (
      next: (args: unknown) => Promise<unknown>,
      context: { commandName?: string },
    ) => (args: unknown) => Promise<unknown>,
    options: { step: "initialize" | "finalizeRequest"; name: string; priority?: "low" },
  ): void;
}

/** Hooks the driver uses to line up concurrent work. */
export interface CampaignHooks {
  /** Called as a Gmail import starts (the concurrent redelivery waits for it). */
  onImportStart: (() => void) | undefined;
}

/**
 * The Pop3Source the handlers see. It audits every QUIT that would commit DELEs (invariant 1:
 * each one archived, imported and recorded at that moment) and injects the POP3-side faults:
 * `LOGIN-DELAY` at login, a crash once RETR streamed the whole message, and at the end of a
 * session that sent DELEs one of: a crash before QUIT, the connection dropped instead of QUIT
 * (the DELEs are not committed, RFC 1939 §6), or a crash after QUIT's `+OK` before the ledger
 * write.
 */
export class FaultyPop3Source implements Pop3Source {
  constructor(
    private readonly inner: Pop3Source,
    private readonly dice: CampaignDice,
    private readonly audit: QuitAudit,
  ) {}

  async open(mailbox: Parameters<Pop3Source["open"]>[0]): Promise<Pop3Session> {
    if (this.dice.roll("login-delay")) {
      throw new MailboxBusyError("LOGIN-DELAY", "-ERR [LOGIN-DELAY] wait before logging in again (injected)");
    }
    const session = await this.inner.open(mailbox);
    const { dice, audit } = this;
    let listing: ServerMessage[] = [];
    const marked: number[] = [];
    return {
      async listMessages() {
        listing = await session.listMessages();
        return listing;
      },
      async retrieve(number, options) {
        const stream = await session.retrieve(number, options);
        if (!dice.roll("crash-after-retr")) return stream;
        return (async function* () {
          yield* stream;
          throw new CrashError("after RETR");
        })();
      },
      async markDeleted(number) {
        await session.markDeleted(number);
        marked.push(number);
      },
      async quit() {
        if (marked.length === 0) return session.quit();
        if (dice.roll("crash-between-dele-and-quit")) throw new CrashError("between DELE and QUIT");
        if (dice.roll("quit-never-came")) {
          session.abort();
          throw new ConnectionClosedError("pop3", "the connection dropped before QUIT (injected)");
        }
        await audit(marked.map((n) => listing.find((m) => m.number === n)?.uidl ?? `#${n}`));
        const result = await session.quit();
        if (result.committed && dice.roll("crash-after-quit")) throw new CrashError("after QUIT");
        return result;
      },
      abort() {
        session.abort();
      },
    };
  }
}

/**
 * Crashes after the archive write returned, and after a verification that succeeded. And our own
 * environment failing under the archive (issue 10 item 5): a disk that fills up (`ENOSPC`) or turns
 * read-only (`EROFS`) for a stretch of writes, as node's `fs` reports it (an `Error` with `code`,
 * `errno` and `syscall`). A full disk fails after part of the message was written; a read-only one
 * fails at the open, before any byte is read.
 */
export class FaultyArchive implements ArchiveStore {
  /** Bodies handed out by `open` and not yet read to the end or let go (see `open`). */
  readonly openBodies = new Set<string>();
  /** Bodies whose reader let go before reading a byte (an S3 body then stays unread too). */
  letGoUnread = 0;
  private opened = 0;
  /** Writes left in the current disk-full or read-only episode. */
  private episode: { kind: "archive-enospc" | "archive-erofs"; left: number } | undefined;

  constructor(
    private readonly inner: ArchiveStore,
    private readonly dice: CampaignDice,
  ) {}
  async put(...args: Parameters<ArchiveStore["put"]>) {
    const failure = this.environmentFault(args[0]);
    if (failure !== undefined) {
      if (failure.code === "ENOSPC") {
        // Part of the message reached the disk before it filled up.
        for await (const _chunk of args[1]) break;
      }
      throw failure;
    }
    const digest = await this.inner.put(...args);
    if (this.dice.roll("crash-after-archive-put")) throw new CrashError("after the archive write");
    return digest;
  }
  async verify(...args: Parameters<ArchiveStore["verify"]>) {
    const ok = await this.inner.verify(...args);
    if (ok && this.dice.roll("crash-after-verify")) throw new CrashError("after the archive verify");
    return ok;
  }
  /**
   * The stored object, watched: until it is read to its end, fails, or its reader lets go
   * (`return`), it counts in `openBodies`. A body never read holds its connection (an S3
   * GetObject's socket) until the connection times out.
   */
  async open(...args: Parameters<ArchiveStore["open"]>): Promise<AsyncIterable<Uint8Array>> {
    const body = await this.inner.open(...args);
    const id = `${args[0]} #${++this.opened}`;
    this.openBodies.add(id);
    const done = () => this.openBodies.delete(id);
    let reads = 0;
    const archive = this;
    return {
      [Symbol.asyncIterator]() {
        const inner = body[Symbol.asyncIterator]();
        return {
          async next() {
            reads++;
            try {
              const result = await inner.next();
              if (result.done === true) done();
              return result;
            } catch (error) {
              done();
              throw error;
            }
          },
          async return(value?: unknown) {
            if (reads === 0 && archive.openBodies.has(id)) archive.letGoUnread++;
            done();
            return inner.return === undefined
              ? { done: true as const, value: undefined }
              : inner.return(value as Uint8Array);
          },
        };
      },
    };
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }

  /** The errno error of the episode in progress or of one that starts now, else undefined. */
  private environmentFault(key: string): NodeJS.ErrnoException | undefined {
    if (!this.dice.enabled) {
      this.episode = undefined;
      return undefined;
    }
    if (this.episode === undefined) {
      const kind = this.dice.roll("archive-enospc")
        ? "archive-enospc"
        : this.dice.roll("archive-erofs")
          ? "archive-erofs"
          : undefined;
      if (kind === undefined) return undefined;
      this.episode = { kind, left: this.dice.between(2, 8) };
    } else {
      // Every further write of the episode is one more fault met.
      this.dice.count(this.episode.kind);
    }
    const { kind } = this.episode;
    this.episode.left--;
    if (this.episode.left <= 0) this.episode = undefined;
    return kind === "archive-enospc" ? diskFull() : readOnly(key);
  }
}

/** What `fs.write` throws on a full disk. */
export function diskFull(): NodeJS.ErrnoException {
  return Object.assign(new Error("ENOSPC: no space left on device, write"), {
    code: "ENOSPC",
    errno: -28,
    syscall: "write",
  });
}

/** What `fs.open` throws on a read-only file system. */
export function readOnly(key: string): NodeJS.ErrnoException {
  const path = `/var/lib/pop2gmail/archive/.archive-tmp/${key.replaceAll("/", "_")}.part`;
  return Object.assign(new Error(`EROFS: read-only file system, open '${path}'`), {
    code: "EROFS",
    errno: -30,
    syscall: "open",
    path,
  });
}

/** Crashes after Gmail returned an id, before the copier's ledger write. */
export class FaultySink implements MailSink {
  constructor(
    private readonly inner: MailSink,
    private readonly dice: CampaignDice,
    private readonly hooks: CampaignHooks,
  ) {}
  async import(request: ImportRequest) {
    this.hooks.onImportStart?.();
    const result = await this.inner.import(request);
    if (this.dice.roll("crash-after-import")) throw new CrashError("after the Gmail import");
    return result;
  }
  findExisting(...args: Parameters<MailSink["findExisting"]>) {
    return this.inner.findExisting(...args);
  }
}

/**
 * The work queue as the functions see it: the product's FIFO `SqsWorkQueue` with its options
 * (delays become `notBefore`, re-sends get a fresh deduplication id) and its `holdBack`. Faults:
 * a job enqueued a second time, either within SQS FIFO's 5-minute deduplication window (the same
 * listing: SQS drops it) or past it (a listing sent again much later: SQS takes it, a duplicate
 * delivery); a crash after a successful enqueue (the lister before its snapshot write, the copier
 * after re-sending a postponed job); a hold-back whose ChangeMessageVisibility fails (the
 * delivery then stays invisible for the visibility timeout). Nothing waits for time: the event
 * source (`FifoEventSource`) moves the rig's clock to the moment a held-back job is due.
 */
export class FaultyQueue implements WorkQueue {
  readonly holdBack?: (receipts: readonly string[], delaySeconds: number) => Promise<void>;

  constructor(
    private readonly inner: WorkQueue,
    private readonly dice: CampaignDice,
    private readonly delays: number[],
    /** Told of every hold-back SQS accepted (the event source keeps the delivery invisible that long). */
    heldBack: (receipts: readonly string[], delaySeconds: number) => void,
  ) {
    const holdBack = inner.holdBack;
    if (holdBack !== undefined) {
      this.holdBack = async (receipts, delaySeconds) => {
        if (this.dice.roll("sqs-hold-back-fails"))
          throw new TransientError("queue", "injected: ChangeMessageVisibilityBatch failed (SQS 500)");
        await holdBack.call(inner, receipts, delaySeconds);
        heldBack(receipts, delaySeconds);
      };
    }
  }

  async enqueue(jobs: readonly CopyJob[], options: EnqueueOptions = {}) {
    if (options.delaySeconds !== undefined) this.delays.push(options.delaySeconds);
    await this.inner.enqueue(jobs, options);
    const twice = jobs.filter(() => this.dice.roll("duplicate-enqueue"));
    if (twice.length > 0) await this.inner.enqueue(twice, options);
    const late = jobs.filter(() => this.dice.roll("duplicate-past-dedup-window"));
    // SQS no longer remembers the first send: the same job under a deduplication id it takes.
    if (late.length > 0) await this.inner.enqueue(late, { ...options, resend: true });
    if (this.dice.roll("crash-after-enqueue")) throw new CrashError("after enqueue");
  }
}

/**
 * An SDK middleware (inside the retry loop, so each throw is one attempt the SDK sees fail) that
 * answers a 5xx: for single attempts at `attemptKind`'s rate, and for every attempt of a whole
 * call at `callKind`'s rate (so the SDK's own retries run out and the adapter sees the failure).
 */
export function addServerErrorMiddleware(
  client: S3Client | DynamoDBClient,
  dice: CampaignDice,
  service: "s3" | "dynamodb",
): void {
  // Both clients' stacks take these middlewares; the union of their generic signatures does not
  // type-check as one call, so the stack is seen through the shape used here.
  const stack = client.middlewareStack as unknown as MiddlewareAdder;
  const callKind: FaultKind = service === "s3" ? "s3-5xx-call" : "dynamodb-5xx-call";
  const attemptKind: FaultKind = service === "s3" ? "s3-5xx-attempt" : "dynamodb-5xx-attempt";
  const failing = new WeakSet<object>();
  if (service === "s3") {
    // A bucket turned read-only (a policy or an Object Lock denying writes): S3 answers 403
    // AccessDenied to every write of a stretch of calls; the SDK does not retry a 403.
    let deniedLeft = 0;
    stack.add(
      (next, context) => async (args) => {
        if (!WRITE_COMMANDS.has(context.commandName ?? "")) return next(args);
        if (!dice.enabled) deniedLeft = 0;
        else if (deniedLeft > 0) dice.count("s3-access-denied");
        else if (dice.roll("s3-access-denied")) deniedLeft = dice.between(1, 6);
        if (deniedLeft === 0) return next(args);
        deniedLeft--;
        throw accessDenied(context.commandName);
      },
      { step: "initialize", name: "campaign-s3-read-only" },
    );
  }
  stack.add(
    (next) => async (args) => {
      const input = (args as { input?: unknown }).input;
      if (typeof input === "object" && input !== null && dice.roll(callKind)) failing.add(input);
      return next(args);
    },
    { step: "initialize", name: `campaign-${service}-call-faults` },
  );
  stack.add(
    (next, context) => async (args) => {
      const input = (args as { input?: unknown }).input;
      const wholeCall = typeof input === "object" && input !== null && failing.has(input);
      if (wholeCall || dice.roll(attemptKind)) throw serverError(service, context.commandName);
      return next(args);
    },
    { step: "finalizeRequest", priority: "low", name: `campaign-${service}-attempt-faults` },
  );
}

const WRITE_COMMANDS = new Set([
  "PutObjectCommand",
  "CreateMultipartUploadCommand",
  "UploadPartCommand",
  "CompleteMultipartUploadCommand",
  "CopyObjectCommand",
]);

/** S3's answer to a write the bucket policy denies. */
function accessDenied(command: string | undefined): Error {
  return Object.assign(new Error(`Access Denied (injected into ${command ?? "a call"})`), {
    name: "AccessDenied",
    Code: "AccessDenied",
    $fault: "client",
    $metadata: { httpStatusCode: 403, attempts: 1 },
  });
}

function serverError(service: "s3" | "dynamodb", command: string | undefined): Error {
  const name = service === "s3" ? "InternalError" : "InternalServerError";
  return Object.assign(new Error(`${name} injected into ${command ?? "a call"}`), {
    name,
    $fault: "server",
    $metadata: { httpStatusCode: 500, attempts: 1 },
  });
}
