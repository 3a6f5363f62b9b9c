import type { MailboxConfig } from "../config/tenant-config";
import type { Ledger, LedgerUpdate } from "../ports/ledger";
import type { BusyReason } from "../ports/telemetry";
import { archiveKeyFor } from "./archive-key";
import { deleteDueAt, stateAfterImport } from "./delete-policy";
import { DigestingStream } from "./digesting-stream";
import {
  AccessDeniedError,
  ConfigError,
  CredentialsError,
  type EnvironmentError,
  environmentErrorOf,
  ImportInProgressError,
  IntegrityError,
  LedgerConflictError,
  MailboxBusyError,
  MessageRejectedError,
  MessageTooLargeError,
  Pop2GmailError,
  Pop3CommandError,
  ProtocolError,
  RateLimitedError,
  ServiceRequestError,
  TlsError,
  TransientError,
} from "./errors";
import { gmailCopyOf, withPrefix } from "./gmail-copy";
import { DEFAULT_HEADER_LIMIT_BYTES, readHeaderBlock } from "./header-block";
import type { SessionScope } from "./mailbox-session";
import { contentOf, serverUidlOf } from "./message-identity";
import type { ContentDigest, CopyJob, LedgerEntry, LedgerState, MessageKey, ServerMessage } from "./model";
import type { PipelineDeps } from "./pipeline-deps";
import { QUARANTINE_CODES, quarantine } from "./quarantine";
import { DEFAULT_ARCHIVE_MAX_BYTES, retrieveBound } from "./retr-bound";

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
   * Largest message archived at all (default `DEFAULT_ARCHIVE_MAX_BYTES`). A message LIST
   * announces above `mailbox.maxMessageBytes` is still archived whole (S3 takes it, streaming
   * keeps memory flat) and then quarantined; a RETR stops at `retrieveBound` (never past this
   * hard bound, and past `maxMessageBytes` only for a message LIST announced that large), so a
   * hostile or broken server is cut off there and the message quarantined unarchived.
   */
  readonly archiveMaxBytes: number;
  /** Read-ahead for the header block (Message-ID, topmost Received). */
  readonly headerLimitBytes: number;
  /**
   * How long an `importing` claim protects a running Gmail import (default
   * `DEFAULT_IMPORT_CLAIM_MS`). A copier finding a younger claim leaves the message alone; an
   * older one was left by a copier that died or timed out, so the import's outcome is uncertain.
   */
  readonly importClaimMs?: number;
}

/** Longer than any import can run: a Lambda invocation lives 15 minutes at most. */
export const DEFAULT_IMPORT_CLAIM_MS = 16 * 60 * 1000;

export const DEFAULT_COPY_POLICY: CopyPolicy = {
  maxAttempts: 5,
  archiveMaxBytes: DEFAULT_ARCHIVE_MAX_BYTES,
  headerLimitBytes: DEFAULT_HEADER_LIMIT_BYTES,
  importClaimMs: DEFAULT_IMPORT_CLAIM_MS,
};

export type CopyDeps = Pick<PipelineDeps, "ledger" | "archive" | "sink" | "clock" | "telemetry">;

const MAX_BACKOFF_MS = 15 * 60 * 1000;

/** One copy attempt's bookkeeping, handed to the failure paths. */
interface AttemptContext {
  readonly attempt: number;
  readonly attemptsBefore: number;
  readonly policy: CopyPolicy;
  /** Whether a ledger write of this attempt has carried its count yet (see `foldAttempt`). */
  readonly tally: { written: boolean };
}

/**
 * A copy started in a POP3 session: either decided already, or archived and claimed with only
 * the Gmail import left, which needs no POP3 session (`finish` never throws what `copyMessage`
 * would not). The copy batch RETRs the next message while such imports are pending
 * (docs/pipeline.md, "Imports in flight").
 */
export type StartedCopy =
  | { readonly kind: "done"; readonly outcome: CopyOutcome }
  | { readonly kind: "importing"; readonly finish: () => Promise<CopyOutcome> };

/** The import step of a copy whose archive step is done (see `startCopy`). */
interface ReadyToImport {
  readonly kind: "ready-to-import";
  readonly run: () => Promise<CopyOutcome>;
}

/**
 * Copies one message: RETR -> archive (verified) -> Gmail import from the archived bytes ->
 * ledger. It resumes from the ledger state, so a retry never archives or imports twice:
 * `listed` archives then imports, `archived` imports only, `imported`/`retained`/`deleted` is
 * `already-copied`. Each call records one attempt before any side effect, so a crash counts.
 *
 * The import runs under a claim (DESIGN.md invariant 3): `archived -> importing` is a conditional
 * write only one copier wins; a copier finding a fresh claim answers `retry-later` without
 * importing. Gmail gets the archived bytes behind our trace lines (`shared/core/gmail-copy.ts`):
 * a deterministic `X-Pop2Gmail-Id`, and a deterministic Message-ID for a message without one. A
 * definite failure gives the claim back; an uncertain one (timeout, 5xx, reset, or a claim left
 * stale by a dead copier) is settled by proof only: a look-up that finds a Gmail message carrying
 * our trace id, or our own import returning an id. Without a read scope the same copy is imported
 * again and Gmail merges it by its Message-ID. Nothing waits for an operator.
 *
 * Quarantines rejected, oversized and repeatedly failing messages (DESIGN.md invariant 5);
 * rethrows errors that break the whole mailbox (credentials, TLS, config, access). Resumes a
 * message released from quarantine (`quarantined -> archived` or `listed`, see
 * `releaseFromQuarantine`) like any other.
 */
export async function copyMessage(
  deps: CopyDeps,
  scope: SessionScope,
  mailbox: MailboxConfig,
  job: CopyJob,
  policy: CopyPolicy = DEFAULT_COPY_POLICY,
): Promise<CopyOutcome> {
  const started = await startCopy(deps, scope, mailbox, job, policy);
  return started.kind === "done" ? started.outcome : started.finish();
}

/**
 * `copyMessage` in two steps: the part that needs the POP3 session (resume from the ledger, RETR,
 * archive, verify, claim), and the Gmail import, returned as `finish` to run while the session
 * goes on to the next message (docs/pipeline.md, "Imports in flight").
 */
export async function startCopy(
  deps: CopyDeps,
  scope: SessionScope,
  mailbox: MailboxConfig,
  job: CopyJob,
  policy: CopyPolicy = DEFAULT_COPY_POLICY,
): Promise<StartedCopy> {
  const prepared = await prepareCopy(deps, scope, mailbox, job, policy);
  return prepared.kind === "ready-to-import"
    ? { kind: "importing", finish: prepared.run }
    : { kind: "done", outcome: prepared };
}

async function prepareCopy(
  deps: CopyDeps,
  scope: SessionScope,
  mailbox: MailboxConfig,
  job: CopyJob,
  policy: CopyPolicy,
): Promise<CopyOutcome | ReadyToImport> {
  const key: MessageKey = { tenant: job.tenant, mailboxId: job.mailboxId, uidl: job.uidl };
  const stored = await deps.ledger.get(key);
  const found = stored ?? (await recreateListed(deps, job));
  if (isCopied(found)) return { kind: "already-copied", entry: found };
  if (found.state === "quarantined") return { kind: "quarantined", entry: found };
  if (found.state === "importing") {
    const remainingMs = claimRemainingMs(deps, found, policy);
    // A stale claim: the claimant died or timed out mid-import, so Gmail may hold the message or
    // not. It is taken over below and settled by a look-up for our trace id (or a merged re-import).
    if (remainingMs > 0) return importInProgress(deps, key, found.attempts, remainingMs);
  }
  if (found.attempts >= policy.maxAttempts) {
    return quarantined(
      deps,
      key,
      [found.state],
      QUARANTINE_CODES.tooManyAttempts,
      `copy failed ${found.attempts} times; see the earlier retry-scheduled events`,
    );
  }
  const attemptsBefore = found.attempts;
  // The attempt is counted by the first ledger write of the attempt (docs/pipeline.md, "Ledger
  // commits"), not by a commit of its own; a failure before any write records it then.
  const attempt = attemptsBefore + 1;
  const tally = { written: false };
  const context: AttemptContext = { attempt, attemptsBefore, policy, tally };
  const counted: CopyDeps = { ...deps, ledger: foldAttempt(deps.ledger, key, attempt, tally) };
  let entry = found;
  // An earlier life of this message (docs/pipeline.md, "A lost ledger"): the copier had to
  // recreate the entry, or the archive already holds an object at its key.
  let earlierLife = stored === undefined;
  // True once the archive write also took the import claim (`listed -> importing`).
  let claimed = false;
  try {
    if (
      (entry.state === "archived" || entry.state === "importing") &&
      !(await archiveHolds(counted, entry))
    ) {
      // The archived object is gone or damaged (a lifecycle rule, a hand edit): never import
      // from it; archive again from the server, which still has the message.
      entry = await counted.ledger.transition(key, [entry.state], "listed");
    }
    if (entry.state === "listed") {
      const heldBefore = await archiveHoldsAnObject(counted, archiveKeyFor(key));
      earlierLife = earlierLife || heldBefore;
      if (heldBefore && !(await onServer(scope, entry.uidl))) {
        // Gone from the server, but archived by an earlier life (a lost ledger and a stale job,
        // or a crash after the archive write): the archive is the message, not "vanished".
        entry = await adoptArchived(counted, entry, policy);
      } else {
        const archived = await archiveFromServer(counted, scope, mailbox, entry, policy, heldBefore);
        if (archived.kind !== "archived") return archived;
        entry = archived.entry;
        claimed = archived.claimed;
      }
    }
    const size = entry.archivedSize ?? entry.listedSize;
    if (size > mailbox.maxMessageBytes) {
      return quarantined(
        counted,
        key,
        [entry.state],
        QUARANTINE_CODES.tooLarge,
        `${size} bytes is above maxMessageBytes ${mailbox.maxMessageBytes}; archived, not sent to Gmail`,
      );
    }
    // An earlier import may have reached Gmail: a claim left stale by a dead copier, a claim given
    // back after an uncertain failure, or an earlier life the ledger forgot.
    const mayHaveImported =
      found.state === "importing" || (found.state === "archived" && attemptsBefore > 0) || earlierLife;
    const ready = entry;
    const run = () =>
      importArchived(counted, mailbox, ready, mayHaveImported, context, claimed).catch((error: unknown) =>
        afterFailure(counted, key, error, context),
      );
    return { kind: "ready-to-import", run };
  } catch (error) {
    return afterFailure(counted, key, error, context);
  }
}

/**
 * `ledger` with the attempt folded into the first transition of `key` this attempt writes: one
 * conditional write records both (an explicit `attempts` in the update, a give-back, wins).
 */
function foldAttempt(ledger: Ledger, key: MessageKey, attempt: number, tally: { written: boolean }): Ledger {
  return {
    get: (k) => ledger.get(k),
    createListed: (entries) => ledger.createListed(entries),
    transition: async (k, from, to, update = {}) => {
      if (tally.written || k.uidl !== key.uidl || k.mailboxId !== key.mailboxId || k.tenant !== key.tenant) {
        return ledger.transition(k, from, to, update);
      }
      const written = await ledger.transition(k, from, to, { attempts: attempt, ...update });
      tally.written = true;
      return written;
    },
    ...(ledger.transitionEach === undefined ? {} : { transitionEach: ledger.transitionEach.bind(ledger) }),
    recordAttempt: (k) => ledger.recordAttempt(k),
    listByServerUidl: (mailbox, serverUidl) => ledger.listByServerUidl(mailbox, serverUidl),
    listByState: (mailbox, states) => ledger.listByState(mailbox, states),
    findInState: (mailbox, states, where) => ledger.findInState(mailbox, states, where),
    getSnapshot: (mailbox) => ledger.getSnapshot(mailbox),
    getSnapshotShards: (mailbox) => ledger.getSnapshotShards(mailbox),
    putSnapshot: (mailbox, body, expectedVersion, shard) =>
      ledger.putSnapshot(mailbox, body, expectedVersion, shard),
  };
}

type ArchiveStep =
  | { readonly kind: "archived"; readonly entry: LedgerEntry; readonly claimed: boolean }
  | CopyOutcome;

async function archiveFromServer(
  deps: CopyDeps,
  scope: SessionScope,
  mailbox: MailboxConfig,
  entry: LedgerEntry,
  policy: CopyPolicy,
  firstKeyTaken: boolean,
): Promise<ArchiveStep> {
  const key: MessageKey = { tenant: entry.tenant, mailboxId: entry.mailboxId, uidl: entry.uidl };
  const message = (await scope.find(entry.uidl)) ?? (await anyTwin(scope, entry.uidl));
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
      ["listed"],
      QUARANTINE_CODES.tooLarge,
      `${message.size} bytes is above the archive bound ${policy.archiveMaxBytes}; left on the server only`,
    );
  }
  // The entry's own key if it has one (archived before, the object since damaged). Otherwise an
  // object already at the first key may be another message (a lost ledger and a reused UIDL):
  // never overwrite it; this life gets a key of its own (docs/pipeline.md, "A lost ledger").
  const archiveKey =
    entry.archiveKey ?? (firstKeyTaken ? archiveKeyFor(key, entry.listedAt) : archiveKeyFor(key));
  let digest: { size: number; sha256: string };
  let headers: { messageId?: string; receivedAt?: number };
  try {
    const maxBytes = retrieveBound(scope.config, message.size, policy.archiveMaxBytes);
    const raw = await scope.session.retrieve(message.number, { maxBytes });
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
  const named = contentOf(entry.uidl);
  if (named !== undefined && !digest.sha256.startsWith(named.sha256Prefix)) {
    throw new IntegrityError(`message ${message.number} is not the content ${entry.uidl} names`);
  }
  const fields: LedgerUpdate = {
    archiveKey,
    archivedSize: digest.size,
    sha256: digest.sha256,
    archivedAt: now(deps),
    ...(headers.messageId === undefined ? {} : { messageIdHeader: headers.messageId }),
    ...(headers.receivedAt === undefined ? {} : { receivedAt: headers.receivedAt }),
  };
  const archivedEvent = {
    type: "archived",
    ...key,
    archiveKey,
    bytes: digest.size,
    sha256: digest.sha256,
  } as const;
  // The same bytes under another id of this UIDL already in Gmail: the server failed to delete
  // it, or listed it under a second identity. Never imported twice (docs/pipeline.md "Message
  // identity"): recorded as copied with the earlier Gmail id, so the delete pass DELEs it.
  const twin = await copiedTwin(deps, entry, digest);
  if (twin !== undefined) {
    const copied = await deps.ledger.transition(key, ["listed"], stateAfterImport(scope.config.deleteAfter), {
      ...fields,
      gmailId: twin.gmailId,
      importedAt: twin.importedAt,
    });
    deps.telemetry.record(archivedEvent);
    return { kind: "already-copied", entry: copied };
  }
  if (message.invalidUidl !== undefined) {
    // Archived whole (the customer keeps every message), never imported or deleted: the server's
    // id cannot be trusted to name this message in a later session (RFC 1939 §7).
    const reason = `${message.invalidUidl}; archived, left on the POP3 server`;
    const quarantinedEntry = await deps.ledger.transition(key, ["listed"], "quarantined", {
      ...fields,
      quarantineCode: QUARANTINE_CODES.invalidUidl,
      quarantineReason: reason,
      quarantinedAt: now(deps),
    });
    deps.telemetry.record(archivedEvent);
    deps.telemetry.record({
      type: "quarantined",
      ...key,
      code: QUARANTINE_CODES.invalidUidl,
      reason,
      archiveKey,
      bytes: digest.size,
    });
    return { kind: "quarantined", entry: quarantinedEntry };
  }
  // The archive is fsynced (verified above); when the import follows, the same write takes its
  // claim: `listed -> importing` in one commit (docs/pipeline.md, "Ledger commits").
  const claim = digest.size <= mailbox.maxMessageBytes;
  const archived = await deps.ledger.transition(
    key,
    ["listed"],
    claim ? "importing" : "archived",
    claim ? { ...fields, importStartedAt: now(deps) } : fields,
  );
  deps.telemetry.record(archivedEvent);
  return { kind: "archived", entry: archived, claimed: claim };
}

/**
 * For an entry of a UIDL the server now lists more than once, not yet archived: the first of
 * those messages. Which one does not matter: `copiedTwin` keeps a message that another id
 * already copied from being imported again (docs/pipeline.md "Message identity").
 */
async function anyTwin(scope: SessionScope, ledgerId: string): Promise<ServerMessage | undefined> {
  if (contentOf(ledgerId) !== undefined) return undefined;
  const uidl = serverUidlOf(ledgerId);
  return (await scope.messages()).find((m) => m.uidl === uidl);
}

/** Another entry of the same server UIDL that holds these very bytes and is in Gmail. */
async function copiedTwin(
  deps: CopyDeps,
  entry: LedgerEntry,
  digest: ContentDigest,
): Promise<(LedgerEntry & { gmailId: string; importedAt: number }) | undefined> {
  const mailbox = { tenant: entry.tenant, mailboxId: entry.mailboxId };
  for (const other of await deps.ledger.listByServerUidl(mailbox, serverUidlOf(entry.uidl))) {
    const { gmailId, importedAt } = other;
    if (other.uidl === entry.uidl || gmailId === undefined || importedAt === undefined) continue;
    if (!isCopied(other) || other.sha256 !== digest.sha256 || other.archivedSize !== digest.size) continue;
    return { ...other, gmailId, importedAt };
  }
  return undefined;
}

/**
 * Claims the import, then imports the Gmail copy (the archived bytes behind our trace lines;
 * never the POP3 stream again, so Gmail gets exactly what S3 holds) or reuses an earlier import
 * of this very copy found by its trace id, then records it.
 */
async function importArchived(
  deps: CopyDeps,
  mailbox: MailboxConfig,
  entry: LedgerEntry,
  mayHaveImported: boolean,
  context: AttemptContext,
  claimedWithArchive: boolean,
): Promise<CopyOutcome> {
  const key = keyOf(entry);
  const archiveKey = entry.archiveKey;
  const size = entry.archivedSize;
  const sha256 = entry.sha256;
  if (archiveKey === undefined || size === undefined || sha256 === undefined) {
    throw new IntegrityError(
      `ledger entry ${entry.uidl} is archived without an archive key, size or SHA-256`,
    );
  }
  // The claim: one conditional write, so of two copiers (an SQS redelivery, maxSessions > 1)
  // only one goes on to import. From `importing` it takes over a stale claim.
  let claim: LedgerEntry = entry;
  if (!claimedWithArchive) {
    try {
      claim = await deps.ledger.transition(key, [entry.state], "importing", { importStartedAt: now(deps) });
    } catch (error) {
      if (!(error instanceof LedgerConflictError)) throw error;
      return afterLostClaim(deps, key, error, context);
    }
  }
  const copy = gmailCopyOf({
    ...key,
    sha256,
    ...(claim.messageIdHeader === undefined ? {} : { messageIdHeader: claim.messageIdHeader }),
  });
  let gmailId: string | undefined;
  let importCalled = false;
  try {
    if (mayHaveImported) {
      gmailId = await deps.sink.findExisting(mailbox, {
        messageIdHeader: copy.messageIdHeader,
        traceId: copy.traceId,
      });
    }
    if (gmailId === undefined) {
      importCalled = true;
      gmailId = (
        await deps.sink.import({
          mailbox,
          uidl: claim.uidl,
          size: copy.prefix.byteLength + size,
          messageIdHeader: copy.messageIdHeader,
          traceId: copy.traceId,
          open: async () => withPrefix(copy.prefix, await deps.archive.open(archiveKey)),
        })
      ).gmailId;
    }
  } catch (error) {
    return afterImportFailure(deps, claim, error, { ...context, importCalled });
  }
  // A failure from here on leaves the claim: the import happened, and whoever finds the claim
  // stale finds it by its trace id (or re-imports the same copy, which Gmail merges).
  const importedAt = now(deps);
  const state = stateAfterImport(mailbox.deleteAfter);
  const imported = await deps.ledger.transition(key, ["importing"], state, { gmailId, importedAt });
  deps.telemetry.record({
    type: "imported",
    ...key,
    archiveKey,
    gmailId,
    bytes: size,
    pipelineDelayMs: importedAt - entry.listedAt,
    ...(entry.receivedAt === undefined ? {} : { deliveryDelayMs: importedAt - entry.receivedAt }),
    reusedEarlierImport: !importCalled,
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
  return { kind: "copied", entry: imported };
}

/**
 * Settles a claim whose look-up or import failed. Nothing sent, or a failure that proves Gmail
 * did not act (`importSurelyFailed`): the claim is given back (or the message quarantined, for a
 * rejection). Otherwise Gmail may hold the copy: the claim is given back too, and the next
 * attempt (`archived`, `attempts > 0`) looks for our trace id first; without a read scope it
 * imports the same copy again, which Gmail merges by its (possibly synthesized) Message-ID.
 */
async function afterImportFailure(
  deps: CopyDeps,
  claim: LedgerEntry,
  error: unknown,
  context: AttemptContext & { readonly importCalled: boolean },
): Promise<CopyOutcome> {
  // A crash or a bug: the claim stays and goes stale, and whoever finds it settles it.
  if (!(error instanceof Pop2GmailError)) throw error;
  const key = keyOf(claim);
  if (!context.importCalled || importSurelyFailed(error)) {
    if (error instanceof MessageRejectedError || error instanceof MessageTooLargeError) {
      return quarantined(deps, key, ["importing"], error.code, error.message);
    }
    // A rate limit is not the message's fault: its attempt goes back with the claim.
    const rateLimited = error instanceof RateLimitedError;
    await releaseClaim(deps, key, rateLimited ? { attempts: context.attemptsBefore } : {});
    return afterFailure(deps, key, error, context, { attemptReturned: rateLimited });
  }
  await releaseClaim(deps, key, {});
  return afterFailure(deps, key, error, context);
}

/**
 * True when the error proves Gmail did not import the message: it refused the request (429,
 * 4xx, credentials, permissions, a label it would not apply) or the request never left (TLS,
 * config, `requestNotSent`). Everything else (timeout, 5xx, reset, a broken reply) is uncertain.
 */
function importSurelyFailed(error: Pop2GmailError): boolean {
  if (error instanceof TransientError) return error.requestNotSent;
  // A refusal of the mailbox's request (not retryable, not about this message) is definite.
  if (!error.retryable && !isMessageLevel(error)) return true;
  return (
    error instanceof RateLimitedError ||
    error instanceof MessageRejectedError ||
    error instanceof MessageTooLargeError ||
    error instanceof CredentialsError ||
    error instanceof AccessDeniedError ||
    error instanceof ServiceRequestError ||
    error instanceof ConfigError ||
    error instanceof TlsError
  );
}

/** Gives an `importing` claim back (`importing -> archived`); a lost claim is left to its new holder. */
async function releaseClaim(deps: CopyDeps, key: MessageKey, update: LedgerUpdate): Promise<void> {
  try {
    await deps.ledger.transition(key, ["importing"], "archived", update);
  } catch (error) {
    // Taken over as stale by another copier (this import outlived the claim): it is theirs now.
    if (!(error instanceof LedgerConflictError)) throw error;
  }
}

/** Another copier moved the entry between our read and our claim: report what it did. */
async function afterLostClaim(
  deps: CopyDeps,
  key: MessageKey,
  conflict: LedgerConflictError,
  context: AttemptContext,
): Promise<CopyOutcome> {
  const current = await deps.ledger.get(key);
  if (current !== undefined && isCopied(current)) return { kind: "already-copied", entry: current };
  if (current?.state === "quarantined") return { kind: "quarantined", entry: current };
  if (current?.state === "importing") {
    return importInProgress(deps, key, context.attempt, claimRemainingMs(deps, current, context.policy));
  }
  throw conflict;
}

async function afterFailure(
  deps: CopyDeps,
  key: MessageKey,
  error: unknown,
  context: AttemptContext,
  options: { readonly attemptReturned?: boolean } = {},
): Promise<CopyOutcome> {
  const environment = environmentFaultOf(error);
  if (environment !== undefined) {
    // Our disk, permissions or ledger failed, not the message (docs/pipeline.md, "Environment
    // faults"): the attempt goes back and the pass stops. Best effort: the ledger itself may be
    // what failed, and then the attempt was most likely never recorded either.
    if (options.attemptReturned !== true) {
      await giveAttemptBack(deps, key, context.attemptsBefore).catch(() => {});
    }
    throw environment;
  }
  // Anything that is not one of our errors is a bug or a crash: let it surface.
  if (!(error instanceof Pop2GmailError)) throw error;
  if (error instanceof MessageRejectedError || error instanceof MessageTooLargeError) {
    return quarantined(deps, key, ["listed", "archived"], error.code, error.message);
  }
  if (error instanceof MailboxBusyError) return { kind: "busy", reason: error.responseCode };
  if (error instanceof RateLimitedError || error instanceof LedgerConflictError) {
    // Not this message's fault: give the attempt back so a quota cannot quarantine mail.
    if (options.attemptReturned !== true) await giveAttemptBack(deps, key, context.attemptsBefore);
    const retryAfterMs = error instanceof RateLimitedError ? error.retryAfterMs : 1000;
    return retryLater(deps, key, error, context.attempt, retryAfterMs);
  }
  if (!isMessageLevel(error)) {
    // Credentials, TLS, configuration, permissions: the mailbox is broken, not this message, so
    // the attempt goes back too (a revoked token must not quarantine mail across runs).
    if (options.attemptReturned !== true) await giveAttemptBack(deps, key, context.attemptsBefore);
    throw error;
  }
  // A failure before any ledger write of this attempt (RETR, the archive): count it now.
  if (!context.tally.written) {
    await deps.ledger.recordAttempt(key);
    context.tally.written = true;
  }
  if (context.attempt >= context.policy.maxAttempts) {
    return quarantined(
      deps,
      key,
      ["listed", "archived"],
      error.code,
      `failed ${context.attempt} times; last: ${error.message}`,
    );
  }
  const backoff = Math.min(MAX_BACKOFF_MS, 30_000 * 2 ** (context.attempt - 1));
  return retryLater(deps, key, error, context.attempt, backoff);
}

/**
 * An `EnvironmentError`, or an error carrying an environment code (a ledger adapter that let
 * `SQLITE_FULL` through, an archive I/O error wrapped as transient) as one; else undefined.
 */
function environmentFaultOf(error: unknown): EnvironmentError | undefined {
  return environmentErrorOf(error, "archive", "use the archive or the ledger");
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

/** Milliseconds until an `importing` claim goes stale (0 or less: stale now). */
function claimRemainingMs(deps: CopyDeps, entry: LedgerEntry, policy: CopyPolicy): number {
  const claimMs = policy.importClaimMs ?? DEFAULT_IMPORT_CLAIM_MS;
  return (entry.importStartedAt ?? Number.NEGATIVE_INFINITY) + claimMs - now(deps);
}

/** Another copier's import may be running: leave the message alone, look again after its claim. */
function importInProgress(
  deps: CopyDeps,
  key: MessageKey,
  attempt: number,
  remainingMs: number,
): CopyOutcome {
  const error = new ImportInProgressError(`another copier is importing ${key.uidl} into Gmail`);
  return retryLater(deps, key, error, attempt, Math.min(MAX_BACKOFF_MS, Math.max(1000, remainingMs)));
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
  from: readonly LedgerState[],
  code: string,
  reason: string,
): Promise<CopyOutcome> {
  const entry = await quarantine(deps, key, code, reason, now(deps), from);
  if (entry !== undefined) return { kind: "quarantined", entry };
  // Lost a race: report what the winner wrote.
  const current = await deps.ledger.get(key);
  if (current !== undefined && isCopied(current)) return { kind: "already-copied", entry: current };
  if (current?.state === "quarantined") return { kind: "quarantined", entry: current };
  if (current?.state === "importing") return importInProgress(deps, key, current.attempts, 60_000);
  throw new LedgerConflictError(`ledger entry ${key.uidl} moved while it was being quarantined`);
}

async function archiveHolds(deps: CopyDeps, entry: LedgerEntry): Promise<boolean> {
  if (entry.archiveKey === undefined || entry.archivedSize === undefined || entry.sha256 === undefined) {
    return false;
  }
  return deps.archive.verify(entry.archiveKey, { size: entry.archivedSize, sha256: entry.sha256 });
}

/**
 * True when the archive holds an object at `archiveKey` (opened and closed again, nothing read):
 * before this copier archived the message, that means an earlier life the ledger may have lost.
 */
async function archiveHoldsAnObject(deps: CopyDeps, archiveKey: string): Promise<boolean> {
  let body: AsyncIterable<Uint8Array>;
  try {
    body = await deps.archive.open(archiveKey);
  } catch (error) {
    // The port's answer for "no object under this key".
    if (error instanceof IntegrityError) return false;
    throw error;
  }
  await body[Symbol.asyncIterator]().return?.();
  return true;
}

/** Whether the server still lists the message (by its ledger id, or a twin of its UIDL). */
async function onServer(scope: SessionScope, ledgerId: string): Promise<boolean> {
  return ((await scope.find(ledgerId)) ?? (await anyTwin(scope, ledgerId))) !== undefined;
}

/**
 * Records the object already archived under a `listed` entry's key as its archive (`listed ->
 * archived`), for a message the server no longer has: size, SHA-256 and headers are read from
 * the stored object itself and checked against the store's own record (docs/pipeline.md, "A lost
 * ledger"). An object is only ever stored whole, as RETR served it.
 */
async function adoptArchived(deps: CopyDeps, entry: LedgerEntry, policy: CopyPolicy): Promise<LedgerEntry> {
  const key = keyOf(entry);
  const archiveKey = archiveKeyFor(key);
  const block = await readHeaderBlock(await deps.archive.open(archiveKey), policy.headerLimitBytes);
  const tap = new DigestingStream(block.body);
  for await (const _chunk of tap) {
    // Read to the end only to digest it.
  }
  const digest = tap.digest();
  if (!(await deps.archive.verify(archiveKey, digest))) {
    throw new IntegrityError(`archive ${archiveKey} changed while it was being read`);
  }
  const { messageId, receivedAt } = block.headers;
  return deps.ledger.transition(key, ["listed"], "archived", {
    archiveKey,
    archivedSize: digest.size,
    sha256: digest.sha256,
    archivedAt: now(deps),
    ...(messageId === undefined ? {} : { messageIdHeader: messageId }),
    ...(receivedAt === undefined ? {} : { receivedAt }),
  });
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

function keyOf(entry: MessageKey): MessageKey {
  return { tenant: entry.tenant, mailboxId: entry.mailboxId, uidl: entry.uidl };
}

function now(deps: Pick<CopyDeps, "clock">): number {
  return deps.clock.now();
}
