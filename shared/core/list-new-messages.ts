import type { MailboxConfig } from "../config/tenant-config";
import type { BusyReason } from "../ports/telemetry";
import { markDeleted } from "./delete-copied";
import { deleteDueAt } from "./delete-policy";
import { type IdentifiedMessage, type SessionScope, withMailboxSession } from "./mailbox-session";
import {
  contentMarkerOf,
  legacyMarkerHash,
  MAX_SNAPSHOT_GENERATION,
  readSnapshot,
  type SnapshotEntries,
  type SnapshotEntry,
  type StoredSnapshot,
  uidlHash,
  writeSnapshot,
} from "./mailbox-snapshot";
import { baseOf, generationOf, ledgerIdFor } from "./message-identity";
import type { CopyJob, LedgerEntry, LedgerState, MailboxKey, MessageKey, ServerMessage } from "./model";
import type { PipelineDeps } from "./pipeline-deps";
import { QUARANTINE_CODES, quarantine } from "./quarantine";

/** Tuning of the lister. */
export interface ListPolicy {
  /**
   * A job still in listed/archived/importing this long after it was enqueued is presumed lost and
   * re-sent. Longer than the import claim (`DEFAULT_IMPORT_CLAIM_MS`), so a message left in
   * `importing` by a dead copier is re-sent once its claim is stale and the copier settles it.
   */
  readonly stuckAfterMs: number;
  /** Jobs per `enqueue` call (the queue adapter splits further into its own batch size). */
  readonly enqueueBatchSize: number;
  /** Due UIDLs handed to one delete pass (keeps an async Lambda payload well under 256 KB). */
  readonly maxDeletesPerPass: number;
  /**
   * A copied message still on the server this long after its delete fell due is read from the
   * ledger again (default `DEFAULT_RECHECK_DUE_AFTER_MS`): found `deleted`, the server failed to
   * delete it or reused its UIDL, and the next generation starts.
   */
  readonly recheckDueAfterMs?: number;
}

/** One hour: a delete pass runs right after each poll that reports deletes due. */
export const DEFAULT_RECHECK_DUE_AFTER_MS = 60 * 60 * 1000;

export const DEFAULT_LIST_POLICY: ListPolicy = {
  stuckAfterMs: 30 * 60 * 1000,
  enqueueBatchSize: 500,
  maxDeletesPerPass: 1000,
};

/** The outcome of one poll. */
export type ListResult =
  | {
      readonly kind: "listed";
      readonly onServer: number;
      readonly newMessages: number;
      readonly requeued: number;
      readonly vanished: number;
      /** Copied messages on the server whose delete is due: the caller starts a delete pass. */
      readonly deletesDue: number;
      /**
       * The UIDLs of (at most `maxDeletesPerPass` of) those, so the delete pass reads only them
       * from the ledger instead of every retained message.
       */
      readonly dueUidls: readonly string[];
      /** Nothing new, nothing stuck, nothing vanished: the poll cost one ledger read (every snapshot shard). */
      readonly idle: boolean;
    }
  | { readonly kind: "busy"; readonly reason: BusyReason };

export type ListDeps = Pick<
  PipelineDeps,
  "ledger" | "queue" | "pop3" | "leases" | "clock" | "telemetry" | "holderId"
>;

/**
 * One poll of a mailbox: a POP3 session for UIDL + LIST only (and the snapshot read, which says
 * which UIDLs are identified by content; QUIT before any other ledger work, so the maildrop lock
 * is held briefly), then a diff against the mailbox snapshot. New messages are created as
 * `listed` and enqueued in batches; jobs stuck past `stuckAfterMs` are re-sent; copied messages
 * that vanished are recorded as deleted; listed ones that vanished are quarantined as `VANISHED`
 * (another client took them first). A message whose ledger entry is `deleted` but which is on the
 * server again gets the next generation (docs/pipeline.md "Message identity"). When the server
 * list is unchanged and nothing is stuck, the whole poll is one snapshot read, however many
 * messages the server keeps.
 */
export async function listNewMessages(
  deps: ListDeps,
  tenant: string,
  mailbox: MailboxConfig,
  policy: ListPolicy = DEFAULT_LIST_POLICY,
): Promise<ListResult> {
  const mailboxKey: MailboxKey = { tenant, mailboxId: mailbox.id };
  const session = await withMailboxSession(deps, mailboxKey, mailbox, (scope) => readListing(deps, scope));
  if (session.kind === "busy") return { kind: "busy", reason: session.reason };
  return settleListing(deps, mailboxKey, mailbox, session.value, policy);
}

/** What a poll reads inside its POP3 session (`readListing`), for `settleListing` after QUIT. */
export interface ListingRead {
  readonly server: readonly IdentifiedMessage[];
  readonly stored: StoredSnapshot;
  readonly before: SnapshotEntries;
  /** Each listed UIDL's hash, computed once per poll (docs/pipeline.md "Why the snapshot"). */
  readonly hashes: ReadonlyMap<string, string>;
  /** UIDLs the snapshot marks as identified by content. */
  readonly contentMode: ReadonlySet<string>;
}

/**
 * The part of a poll that needs the POP3 session: UIDL + LIST, the snapshot read (it says which
 * UIDLs are identified by content), and the RETR + SHA-256 of messages identified by content
 * (docs/pipeline.md "Message identity"). A poll that holds its session for more work (a login
 * delay) calls this and then `settleListing` in the same session.
 */
export async function readListing(deps: Pick<ListDeps, "ledger">, scope: SessionScope): Promise<ListingRead> {
  const listing = await scope.messages();
  const stored = await readSnapshot(deps.ledger, scope.mailbox);
  const before = stored.entries;
  const hashes = new Map<string, string>();
  for (const { uidl } of listing) if (!hashes.has(uidl)) hashes.set(uidl, uidlHash(uidl));
  if (stored.legacy) {
    // A snapshot from before shards keyed content mode by another hash: translate it once.
    for (const [uidl, hash] of hashes) {
      const legacy = legacyMarkerHash(uidl);
      const marker = before.get(legacy);
      if (marker === undefined) continue;
      before.delete(legacy);
      before.set(contentMarkerOf(hash), marker);
    }
  }
  // A UIDL once listed twice stays identified by content while it is on the server, so a
  // message keeps one identity when its twin leaves.
  const contentMode = new Set(
    [...hashes].filter(([, hash]) => before.has(contentMarkerOf(hash))).map(([uidl]) => uidl),
  );
  return { server: await scope.identify(contentMode), stored, before, hashes, contentMode };
}

/** The ledger work of a poll on what `readListing` read: the diff, creates, re-sends, snapshot. */
export async function settleListing(
  deps: ListDeps,
  mailboxKey: MailboxKey,
  mailbox: MailboxConfig,
  read: ListingRead,
  policy: ListPolicy = DEFAULT_LIST_POLICY,
): Promise<Extract<ListResult, { kind: "listed" }>> {
  const { server, stored, before, hashes, contentMode } = read;
  const now = deps.clock.now();
  // One hash per UIDL per poll: the identity of most messages is the UIDL itself.
  const hashOfUidl = (uidl: string) => hashes.get(uidl) ?? uidlHash(uidl);
  const hashOf = (message: IdentifiedMessage & { readonly identity: string }) =>
    message.identity === message.uidl ? hashOfUidl(message.uidl) : uidlHash(message.identity);
  const identityHashes: (string | undefined)[] = [];
  const after: SnapshotEntries = new Map();
  const unknown: IdentifiedMessage[] = [];
  const stuck: Recheck[] = [];
  const onServer = new Set<string>();
  let unidentified = 0;
  const counts = new Map<string, number>();
  // Every UIDL distinct (the usual case): no counting needed.
  if (hashes.size !== server.length) {
    for (const message of server) counts.set(message.uidl, (counts.get(message.uidl) ?? 0) + 1);
  }
  for (const message of server) {
    if ((counts.get(message.uidl) ?? 0) > 1 || contentMode.has(message.uidl)) {
      after.set(contentMarkerOf(hashOfUidl(message.uidl)), { kind: "parked", at: 0 });
    }
    if (message.identity === undefined) {
      unidentified++;
      identityHashes.push(undefined);
      continue;
    }
    const identified = message as IdentifiedMessage & { readonly identity: string };
    const hash = hashOf(identified);
    identityHashes.push(hash);
    onServer.add(hash);
    const known = before.get(hash);
    if (known === undefined) unknown.push(identified);
    else if (known.kind === "pending" && known.at <= now) stuck.push({ message: identified, known });
    else if (isOverdue(known, mailbox, now, policy)) stuck.push({ message: identified, known });
    else after.set(hash, known);
  }
  if (unidentified > 0) {
    // Some messages could not be read to identify them: keep what the snapshot knew, and take
    // nothing for vanished this time (a message not identified is not a message gone).
    for (const [hash, entry] of before) if (!after.has(hash) && !onServer.has(hash)) after.set(hash, entry);
  }
  const pendingGone = new Set<string>();
  const copiedGone = new Set<string>();
  if (unidentified === 0) {
    for (const [hash, entry] of before) {
      if (onServer.has(hash)) continue;
      if (entry.kind === "pending") pendingGone.add(hash);
      else if (entry.kind === "copied") copiedGone.add(hash);
    }
  }
  const work = new ListWork(deps, mailboxKey, policy, now, after);
  const created = await work.createNew(unknown);
  const rechecked = await work.recheck(stuck);
  const vanished = await work.settleVanished(new Set([...pendingGone, ...copiedGone]));
  await work.flushQueue();
  const newMessages = created + rechecked.created;
  const requeued = rechecked.requeued;
  const changed = (await writeSnapshot(deps.ledger, mailboxKey, stored, after)) > 0;
  const due = server.flatMap((m, i) => {
    const hash = identityHashes[i];
    const entry = hash === undefined ? undefined : after.get(hash);
    return m.identity !== undefined && isDue(entry, mailbox, now)
      ? [ledgerIdFor(m.identity, entry?.generation ?? 1)]
      : [];
  });
  const deletesDue = due.length;
  const idle = !changed && newMessages === 0 && requeued === 0 && pendingGone.size === 0;
  const result = {
    kind: "listed",
    onServer: server.length,
    newMessages,
    requeued,
    vanished,
    deletesDue,
    idle,
  } as const;
  deps.telemetry.record({ type: "poll-completed", ...mailboxKey, ...withoutKind(result) });
  return { ...result, dueUidls: due.slice(0, policy.maxDeletesPerPass) };
}

/** A message the lister reads the ledger for, with what the snapshot knew of it (if anything). */
interface Recheck {
  readonly message: IdentifiedMessage & { readonly identity: string };
  readonly known?: SnapshotEntry;
}

/** The ledger work of one poll, filling `after` as it classifies messages. */
class ListWork {
  private readonly jobs: CopyJob[] = [];

  constructor(
    private readonly deps: ListDeps,
    private readonly mailboxKey: MailboxKey,
    private readonly policy: ListPolicy,
    private readonly now: number,
    private readonly after: SnapshotEntries,
  ) {}

  /** Creates ledger entries for identities the snapshot does not know; returns how many were new. */
  async createNew(unknown: readonly IdentifiedMessage[]): Promise<number> {
    let created = 0;
    for (let i = 0; i < unknown.length; i += this.policy.enqueueBatchSize) {
      const batch = unknown
        .slice(i, i + this.policy.enqueueBatchSize)
        .flatMap((m) => (m.identity === undefined ? [] : [{ ...m, identity: m.identity }]));
      const entries = await this.deps.ledger.createListed(
        batch.map((m) => ({ ...this.mailboxKey, uidl: m.identity, listedSize: m.size, listedAt: this.now })),
      );
      const createdIds = new Set(entries.map((e) => e.uidl));
      for (const entry of entries) this.created(entry);
      created += entries.length;
      // Known to the ledger but not to the snapshot (a crash before the snapshot write, a lost
      // snapshot, or a UIDL back after our delete): find its latest generation and go on from it.
      const rechecked = await this.recheck(
        batch.filter((m) => !createdIds.has(m.identity)).map((message) => ({ message })),
      );
      created += rechecked.created;
    }
    return created;
  }

  /**
   * Reads the ledger for messages whose job may be lost, or that the snapshot does not know:
   * re-sends those not yet copied, and starts the next generation of those recorded as deleted
   * that are on the server again (the copier tells a failed delete from a reused UIDL by content).
   */
  async recheck(messages: readonly Recheck[]): Promise<{ requeued: number; created: number }> {
    let requeued = 0;
    let created = 0;
    for (const { message, known } of messages) {
      let entry =
        known === undefined
          ? await this.latestGeneration(message)
          : await this.deps.ledger.get(this.keyFor(message.identity, known.generation ?? 1));
      if (entry === undefined) {
        // The ledger forgot it (restored from an older backup): start over, idempotently.
        const [fresh] = await this.deps.ledger.createListed([
          this.listingOf(message, ledgerIdFor(message.identity, known?.generation ?? 1)),
        ]);
        if (fresh !== undefined) {
          this.created(fresh);
          created++;
        }
        continue;
      }
      for (let tries = 0; entry?.state === "deleted" && tries < MAX_GENERATION_STEPS; tries++) {
        const next = ledgerIdFor(message.identity, generationOf(entry.uidl) + 1);
        const [fresh] = await this.deps.ledger.createListed([this.listingOf(message, next)]);
        if (fresh !== undefined) {
          this.created(fresh);
          created++;
          entry = undefined;
        } else {
          entry = await this.deps.ledger.get(this.keyFor(message.identity, generationOf(next)));
        }
      }
      if (entry === undefined || entry.state === "deleted") continue;
      if (isInFlight(entry)) {
        this.deps.telemetry.record({ type: "requeued", ...keyOf(entry), state: entry.state });
        this.send(entry);
        requeued++;
        continue;
      }
      this.remember(entry, settled(entry));
    }
    return { requeued, created };
  }

  /**
   * Messages no longer on the server. Listed ones were taken by another client before we copied
   * them (quarantined as VANISHED, so an alarm says so); archived and importing ones are re-sent,
   * as the copy can finish from the archive; imported and retained ones were deleted, usually
   * already recorded by the session that deleted them, but a crash between its QUIT and that
   * ledger write leaves them unrecorded, so they are recorded here. One query finds their ledger
   * ids (the snapshot holds hashes), and only on a poll where some vanished.
   */
  async settleVanished(hashes: ReadonlySet<string>): Promise<number> {
    if (hashes.size === 0) return 0;
    const entries = await this.deps.ledger.listByState(this.mailboxKey, [
      ...IN_FLIGHT_STATES,
      ...COPIED_STATES,
    ]);
    let vanished = 0;
    for (const entry of entries) {
      if (!hashes.has(uidlHash(baseOf(entry.uidl)))) continue;
      if (COPIED_STATES.includes(entry.state)) {
        await markDeleted(this.deps, entry, this.now);
        continue;
      }
      vanished++;
      this.deps.telemetry.record({ type: "vanished", ...keyOf(entry), state: entry.state });
      if (entry.state !== "listed") {
        this.jobs.push(jobOf(entry));
      } else {
        await quarantine(
          this.deps,
          keyOf(entry),
          QUARANTINE_CODES.vanished,
          "left the POP3 server before it was copied",
          this.now,
        );
      }
    }
    return vanished;
  }

  /** Sends the collected jobs in batches. Runs before the snapshot write: a crash re-sends, never loses. */
  async flushQueue(): Promise<void> {
    for (let i = 0; i < this.jobs.length; i += this.policy.enqueueBatchSize) {
      await this.deps.queue.enqueue(this.jobs.slice(i, i + this.policy.enqueueBatchSize));
    }
  }

  /** The newest generation recorded for this message's identity, if any. */
  private async latestGeneration(message: Recheck["message"]): Promise<LedgerEntry | undefined> {
    const entries = await this.deps.ledger.listByServerUidl(this.mailboxKey, message.uidl);
    let latest: LedgerEntry | undefined;
    for (const entry of entries) {
      if (baseOf(entry.uidl) !== message.identity) continue;
      if (latest === undefined || generationOf(entry.uidl) > generationOf(latest.uidl)) latest = entry;
    }
    return latest;
  }

  private created(entry: LedgerEntry): void {
    this.deps.telemetry.record({
      type: "listed",
      ...keyOf(entry),
      bytes: entry.listedSize,
      listedAt: entry.listedAt,
    });
    this.send(entry);
  }

  private send(entry: LedgerEntry): void {
    this.jobs.push(jobOf(entry));
    this.remember(entry, { kind: "pending", at: this.now + this.policy.stuckAfterMs });
  }

  /** Records what the snapshot keeps for an entry's identity, with its generation. */
  private remember(entry: LedgerEntry, what: SnapshotEntry): void {
    const generation = generationOf(entry.uidl);
    // A generation the snapshot cannot hold is left out: that identity is read each poll.
    if (generation > MAX_SNAPSHOT_GENERATION) return;
    this.after.set(uidlHash(baseOf(entry.uidl)), generation === 1 ? what : { ...what, generation });
  }

  private keyFor(identity: string, generation: number): MessageKey {
    return { ...this.mailboxKey, uidl: ledgerIdFor(identity, generation) };
  }

  private listingOf(message: ServerMessage, ledgerId: string): Omit<LedgerEntry, "state" | "attempts"> {
    return { ...this.mailboxKey, uidl: ledgerId, listedSize: message.size, listedAt: this.now };
  }
}

/** Bound on the generations one poll steps through for one message (a ledger raced by others). */
const MAX_GENERATION_STEPS = 10;

/**
 * A copied message whose delete has been due for longer than `recheckDueAfterMs` and is still on
 * the server: its ledger entry is read again, which finds it `deleted` when the server failed to
 * delete it or reused its UIDL, so the next generation starts (docs/pipeline.md "Message identity").
 */
function isOverdue(entry: SnapshotEntry, mailbox: MailboxConfig, now: number, policy: ListPolicy): boolean {
  if (entry.kind !== "copied") return false;
  const due = deleteDueAt(mailbox.deleteAfter, entry.at);
  if (due === undefined) return false;
  return Math.max(due, entry.at) + (policy.recheckDueAfterMs ?? DEFAULT_RECHECK_DUE_AFTER_MS) <= now;
}

/** States of a message safely copied (archived and imported) that may still be on the server. */
const COPIED_STATES: readonly LedgerState[] = ["imported", "retained"];

/** States a copy job is still out for: the snapshot keeps them `pending`. */
const IN_FLIGHT_STATES: readonly LedgerState[] = ["listed", "archived", "importing"];

function isInFlight(entry: LedgerEntry): boolean {
  return IN_FLIGHT_STATES.includes(entry.state);
}

function settled(entry: LedgerEntry): SnapshotEntry {
  if (entry.state === "imported" || entry.state === "retained") {
    return { kind: "copied", at: entry.importedAt ?? 0 };
  }
  return { kind: "parked", at: 0 };
}

function isDue(entry: SnapshotEntry | undefined, mailbox: MailboxConfig, now: number): boolean {
  if (entry?.kind !== "copied") return false;
  const due = deleteDueAt(mailbox.deleteAfter, entry.at);
  return due !== undefined && due <= now;
}

function jobOf(entry: LedgerEntry): CopyJob {
  return { ...keyOf(entry), listedSize: entry.listedSize, listedAt: entry.listedAt };
}

function keyOf(entry: { tenant: string; mailboxId: string; uidl: string }) {
  return { tenant: entry.tenant, mailboxId: entry.mailboxId, uidl: entry.uidl };
}

function withoutKind<T extends { kind: string }>(value: T): Omit<T, "kind"> {
  const { kind: _kind, ...rest } = value;
  return rest;
}
