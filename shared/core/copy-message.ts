import type { MailboxConfig } from "../config/tenant-config";
import type { BusyReason } from "../ports/telemetry";
import { archiveKeyFor } from "./archive-key";
import { deleteDueAt, stateAfterImport } from "./delete-policy";
import { DigestingStream } from "./digesting-stream";
import {
  IntegrityError,
  LedgerConflictError,
  MailboxBusyError,
  MessageRejectedError,
  MessageTooLargeError,
  Pop2GmailError,
  Pop3CommandError,
  ProtocolError,
  RateLimitedError,
} from "./errors";
import { DEFAULT_HEADER_LIMIT_BYTES, readHeaderBlock } from "./header-block";
import type { SessionScope } from "./mailbox-session";
import type { CopyJob, LedgerEntry, MessageKey } from "./model";
import type { PipelineDeps } from "./pipeline-deps";
import { QUARANTINE_CODES, quarantine } from "./quarantine";

/** What became of one copy job. Anything not listed here is thrown. */
export type CopyOutcome =
  | { readonly kind: "copied"; readonly entry: LedgerEntry }
  | { readonly kind: "already-copied"; readonly entry: LedgerEntry }
  | { readonly kind: "gone"; readonly uidl: string }
  | { readonly kind: "quarantined"; readonly entry: LedgerEntry }
  | { readonly kind: "busy"; readonly reason: BusyReason }
  | { readonly kind: "retry-later"; readonly error: Pop2GmailError; readonly retryAfterMs: number };

/** Limits of the copy step. */
export interface CopyPolicy {
  /** Copy attempts started (a crash counts) before the message is quarantined. */
  readonly maxAttempts: number;
  /**
   * Largest message archived at all. Above `mailbox.maxMessageBytes` a message is still archived
   * (S3 takes it, streaming keeps memory flat) and then quarantined; above this hard bound a
   * hostile or broken server is cut off and the message is quarantined unarchived.
   */
  readonly archiveMaxBytes: number;
  /** Read-ahead for the header block (Message-ID, topmost Received). */
  readonly headerLimitBytes: number;
}

export const DEFAULT_COPY_POLICY: CopyPolicy = {
  maxAttempts: 5,
  archiveMaxBytes: 2 * 1024 * 1024 * 1024,
  headerLimitBytes: DEFAULT_HEADER_LIMIT_BYTES,
};

export type CopyDeps = Pick<PipelineDeps, "ledger" | "archive" | "sink" | "clock" | "telemetry">;

const MAX_BACKOFF_MS = 15 * 60 * 1000;

/**
 * Copies one message: RETR -> archive (verified) -> Gmail import from the archived bytes ->
 * ledger. It resumes from the ledger state, so a retry never archives or imports twice:
 * `listed` archives then imports, `archived` imports only, `imported`/`retained`/`deleted` is
 * `already-copied`. Each call records one attempt before any side effect, so a crash counts and
 * a retry of an import that may have happened first asks the sink for the earlier copy.
 * Quarantines rejected, oversized and repeatedly failing messages (DESIGN.md invariant 5);
 * rethrows errors that break the whole mailbox (credentials, TLS, config, access).
 */
export async function copyMessage(
  deps: CopyDeps,
  scope: SessionScope,
  mailbox: MailboxConfig,
  job: CopyJob,
  policy: CopyPolicy = DEFAULT_COPY_POLICY,
): Promise<CopyOutcome> {
  const key: MessageKey = { tenant: job.tenant, mailboxId: job.mailboxId, uidl: job.uidl };
  const found = (await deps.ledger.get(key)) ?? (await recreateListed(deps, job));
  if (isCopied(found)) return { kind: "already-copied", entry: found };
  if (found.state === "quarantined") return { kind: "quarantined", entry: found };
  if (found.attempts >= policy.maxAttempts) {
    return quarantined(
      deps,
      key,
      QUARANTINE_CODES.tooManyAttempts,
      `copy failed ${found.attempts} times; see the earlier retry-scheduled events`,
    );
  }
  const attemptsBefore = found.attempts;
  const attempt = await deps.ledger.recordAttempt(key);
  let entry = found;
  try {
    if (entry.state === "archived" && !(await archiveHolds(deps, entry))) {
      // The archived object is gone or damaged (a lifecycle rule, a hand edit): never import
      // from it; archive again from the server, which still has the message.
      entry = await deps.ledger.transition(key, ["archived"], "listed");
    }
    if (entry.state === "listed") {
      const archived = await archiveFromServer(deps, scope, entry, policy);
      if (archived.kind !== "archived") return archived;
      entry = archived.entry;
    }
    const size = entry.archivedSize ?? entry.listedSize;
    if (size > mailbox.maxMessageBytes) {
      return quarantined(
        deps,
        key,
        QUARANTINE_CODES.tooLarge,
        `${size} bytes is above maxMessageBytes ${mailbox.maxMessageBytes}; archived, not sent to Gmail`,
      );
    }
    // A previous attempt may have imported and crashed before its ledger write.
    const mayHaveImported = found.state === "archived" && attemptsBefore > 0;
    return { kind: "copied", entry: await importArchived(deps, mailbox, entry, mayHaveImported) };
  } catch (error) {
    return afterFailure(deps, key, error, { attempt, attemptsBefore, policy });
  }
}

type ArchiveStep = { readonly kind: "archived"; readonly entry: LedgerEntry } | CopyOutcome;

async function archiveFromServer(
  deps: CopyDeps,
  scope: SessionScope,
  entry: LedgerEntry,
  policy: CopyPolicy,
): Promise<ArchiveStep> {
  const key: MessageKey = { tenant: entry.tenant, mailboxId: entry.mailboxId, uidl: entry.uidl };
  const message = await scope.find(entry.uidl);
  if (message === undefined) {
    // Someone else deleted it before we read it: report it, never fail the batch over it.
    deps.telemetry.record({ type: "vanished", ...key, state: entry.state });
    await quarantine(
      deps,
      key,
      QUARANTINE_CODES.vanished,
      "left the POP3 server before it was copied",
      now(deps),
    );
    return { kind: "gone", uidl: entry.uidl };
  }
  if (message.size > policy.archiveMaxBytes) {
    return quarantined(
      deps,
      key,
      QUARANTINE_CODES.tooLarge,
      `${message.size} bytes is above the archive bound ${policy.archiveMaxBytes}; left on the server only`,
    );
  }
  const archiveKey = archiveKeyFor(key);
  let digest: { size: number; sha256: string };
  let headers: { messageId?: string; receivedAt?: number };
  try {
    const raw = await scope.session.retrieve(message.number, { maxBytes: policy.archiveMaxBytes });
    const block = await readHeaderBlock(raw, policy.headerLimitBytes);
    headers = block.headers;
    const tap = new DigestingStream(block.body);
    const stored = await deps.archive.put(archiveKey, tap, {
      ...key,
      ...(headers.messageId === undefined ? {} : { messageIdHeader: headers.messageId }),
    });
    digest = tap.digest();
    if (stored.size !== digest.size || stored.sha256 !== digest.sha256) {
      throw new IntegrityError(`archive ${archiveKey} stored other bytes than RETR served`);
    }
  } catch (error) {
    // A RETR cut short leaves the connection mid-response: no further command may use it.
    scope.markBroken();
    throw error;
  }
  if (!(await deps.archive.verify(archiveKey, digest))) {
    throw new IntegrityError(
      `archive ${archiveKey} does not hold ${digest.size} bytes with the expected SHA-256`,
    );
  }
  const archived = await deps.ledger.transition(key, ["listed"], "archived", {
    archiveKey,
    archivedSize: digest.size,
    sha256: digest.sha256,
    archivedAt: now(deps),
    ...(headers.messageId === undefined ? {} : { messageIdHeader: headers.messageId }),
    ...(headers.receivedAt === undefined ? {} : { receivedAt: headers.receivedAt }),
  });
  deps.telemetry.record({ type: "archived", ...key, archiveKey, bytes: digest.size, sha256: digest.sha256 });
  return { kind: "archived", entry: archived };
}

/** Imports the archived bytes (never the POP3 stream again), so Gmail gets exactly what S3 holds. */
async function importArchived(
  deps: CopyDeps,
  mailbox: MailboxConfig,
  entry: LedgerEntry,
  mayHaveImported: boolean,
): Promise<LedgerEntry> {
  const key: MessageKey = { tenant: entry.tenant, mailboxId: entry.mailboxId, uidl: entry.uidl };
  const archiveKey = entry.archiveKey;
  if (archiveKey === undefined || entry.archivedSize === undefined) {
    throw new IntegrityError(`ledger entry ${entry.uidl} is archived without an archive key or size`);
  }
  let gmailId: string | undefined;
  if (mayHaveImported && entry.messageIdHeader !== undefined) {
    gmailId = await deps.sink.findExisting(mailbox, entry.messageIdHeader);
  }
  const reusedEarlierImport = gmailId !== undefined;
  gmailId ??= (
    await deps.sink.import({
      mailbox,
      uidl: entry.uidl,
      size: entry.archivedSize,
      ...(entry.messageIdHeader === undefined ? {} : { messageIdHeader: entry.messageIdHeader }),
      open: () => deps.archive.open(archiveKey),
    })
  ).gmailId;
  const importedAt = now(deps);
  const state = stateAfterImport(mailbox.deleteAfter);
  const imported = await deps.ledger.transition(key, ["archived"], state, { gmailId, importedAt });
  deps.telemetry.record({
    type: "imported",
    ...key,
    archiveKey,
    gmailId,
    bytes: entry.archivedSize,
    pipelineDelayMs: importedAt - entry.listedAt,
    ...(entry.receivedAt === undefined ? {} : { deliveryDelayMs: importedAt - entry.receivedAt }),
    reusedEarlierImport,
  });
  if (state === "retained") {
    const due = deleteDueAt(mailbox.deleteAfter, importedAt);
    deps.telemetry.record({
      type: "retained",
      ...key,
      gmailId,
      ...(due === undefined ? {} : { deleteDueAt: due }),
    });
  }
  return imported;
}

async function afterFailure(
  deps: CopyDeps,
  key: MessageKey,
  error: unknown,
  context: { attempt: number; attemptsBefore: number; policy: CopyPolicy },
): Promise<CopyOutcome> {
  // Anything that is not one of our errors is a bug or a crash: let it surface.
  if (!(error instanceof Pop2GmailError)) throw error;
  if (error instanceof MessageRejectedError || error instanceof MessageTooLargeError) {
    return quarantined(deps, key, error.code, error.message);
  }
  if (error instanceof MailboxBusyError) return { kind: "busy", reason: error.responseCode };
  if (error instanceof RateLimitedError || error instanceof LedgerConflictError) {
    // Not this message's fault: give the attempt back so a quota cannot quarantine mail.
    await giveAttemptBack(deps, key, context.attemptsBefore);
    const retryAfterMs = error instanceof RateLimitedError ? error.retryAfterMs : 1000;
    return retryLater(deps, key, error, context.attempt, retryAfterMs);
  }
  if (!isMessageLevel(error)) throw error;
  if (context.attempt >= context.policy.maxAttempts) {
    return quarantined(deps, key, error.code, `failed ${context.attempt} times; last: ${error.message}`);
  }
  const backoff = Math.min(MAX_BACKOFF_MS, 30_000 * 2 ** (context.attempt - 1));
  return retryLater(deps, key, error, context.attempt, backoff);
}

/**
 * Errors that may be about this one message (a passing fault, or a server choking on it) and so
 * count towards quarantine. Other non-retryable errors (credentials, TLS, config, permissions)
 * break the whole mailbox and are thrown: one alarm, not one per message.
 */
function isMessageLevel(error: Pop2GmailError): boolean {
  return error.retryable || error instanceof ProtocolError || error instanceof Pop3CommandError;
}

async function giveAttemptBack(deps: CopyDeps, key: MessageKey, attempts: number): Promise<void> {
  const current = await deps.ledger.get(key);
  if (current === undefined || (current.state !== "listed" && current.state !== "archived")) return;
  try {
    await deps.ledger.transition(key, [current.state], current.state, { attempts });
  } catch (error) {
    if (!(error instanceof LedgerConflictError)) throw error;
  }
}

function retryLater(
  deps: CopyDeps,
  key: MessageKey,
  error: Pop2GmailError,
  attempt: number,
  retryAfterMs: number,
): CopyOutcome {
  deps.telemetry.record({ type: "retry-scheduled", ...key, code: error.code, attempt, retryAfterMs });
  return { kind: "retry-later", error, retryAfterMs };
}

async function quarantined(
  deps: CopyDeps,
  key: MessageKey,
  code: string,
  reason: string,
): Promise<CopyOutcome> {
  const entry = await quarantine(deps, key, code, reason, now(deps));
  if (entry !== undefined) return { kind: "quarantined", entry };
  // Lost a race: report what the winner wrote.
  const current = await deps.ledger.get(key);
  if (current !== undefined && isCopied(current)) return { kind: "already-copied", entry: current };
  if (current !== undefined && current.state === "quarantined")
    return { kind: "quarantined", entry: current };
  throw new LedgerConflictError(`ledger entry ${key.uidl} moved while it was being quarantined`);
}

async function archiveHolds(deps: CopyDeps, entry: LedgerEntry): Promise<boolean> {
  if (entry.archiveKey === undefined || entry.archivedSize === undefined || entry.sha256 === undefined) {
    return false;
  }
  return deps.archive.verify(entry.archiveKey, { size: entry.archivedSize, sha256: entry.sha256 });
}

async function recreateListed(deps: CopyDeps, job: CopyJob): Promise<LedgerEntry> {
  // A job without a ledger entry (ledger restored from backup, or a hand-made replay job).
  await deps.ledger.createListed([job]);
  const entry = await deps.ledger.get(job);
  if (entry === undefined) throw new LedgerConflictError(`ledger entry ${job.uidl} could not be created`);
  return entry;
}

function isCopied(entry: LedgerEntry): boolean {
  return entry.state === "imported" || entry.state === "retained" || entry.state === "deleted";
}

function now(deps: Pick<CopyDeps, "clock">): number {
  return deps.clock.now();
}
