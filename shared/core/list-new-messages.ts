import type { MailboxConfig } from "../config/tenant-config";
import type { BusyReason } from "../ports/telemetry";
import { markDeleted } from "./delete-copied";
import { deleteDueAt } from "./delete-policy";
import { LedgerConflictError } from "./errors";
import { withMailboxSession } from "./mailbox-session";
import {
  decodeSnapshot,
  encodeSnapshot,
  type SnapshotEntries,
  type SnapshotEntry,
  sameSnapshot,
  uidlHash,
} from "./mailbox-snapshot";
import type { CopyJob, LedgerEntry, LedgerState, MailboxKey, ServerMessage } from "./model";
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
}

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
      /** Nothing new, nothing stuck, nothing vanished: the poll cost one ledger read. */
      readonly idle: boolean;
    }
  | { readonly kind: "busy"; readonly reason: BusyReason };

export type ListDeps = Pick<
  PipelineDeps,
  "ledger" | "queue" | "pop3" | "leases" | "clock" | "telemetry" | "holderId"
>;

/**
 * One poll of a mailbox: a POP3 session for UIDL + LIST only (QUIT before any ledger work, so the
 * maildrop lock is held briefly), then a diff against the mailbox snapshot. New UIDLs are
 * created as `listed` and enqueued in batches; jobs stuck past `stuckAfterMs` are re-sent;
 * copied messages that vanished are dropped; listed ones that vanished are quarantined as
 * `VANISHED` (another client took them first). When the server list is unchanged and nothing
 * is stuck, the whole poll is one snapshot read, however many messages the server keeps.
 */
export async function listNewMessages(
  deps: ListDeps,
  tenant: string,
  mailbox: MailboxConfig,
  policy: ListPolicy = DEFAULT_LIST_POLICY,
): Promise<ListResult> {
  const mailboxKey: MailboxKey = { tenant, mailboxId: mailbox.id };
  const session = await withMailboxSession(deps, mailboxKey, mailbox, (scope) => scope.messages());
  if (session.kind === "busy") return { kind: "busy", reason: session.reason };
  const server = session.value;
  const now = deps.clock.now();
  const stored = await deps.ledger.getSnapshot(mailboxKey);
  const before = decodeSnapshot(stored?.body);
  const after: SnapshotEntries = new Map();
  const unknown: ServerMessage[] = [];
  const stuck: ServerMessage[] = [];
  const onServer = new Set<string>();
  for (const message of server) {
    const hash = uidlHash(message.uidl);
    onServer.add(hash);
    const known = before.get(hash);
    if (known === undefined) unknown.push(message);
    else if (known.kind === "pending" && known.at <= now) stuck.push(message);
    else after.set(hash, known);
  }
  const gone = (kind: string) =>
    new Set(
      [...before].filter(([hash, entry]) => entry.kind === kind && !onServer.has(hash)).map(([hash]) => hash),
    );
  const pendingGone = gone("pending");
  const copiedGone = gone("copied");
  const work = new ListWork(deps, mailboxKey, policy, now, after);
  const newMessages = await work.createNew(unknown);
  const requeued = await work.recheck(stuck);
  const vanished = await work.settleVanished(new Set([...pendingGone, ...copiedGone]));
  await work.flushQueue();
  const changed = !sameSnapshot(before, after);
  if (changed) await writeSnapshot(deps, mailboxKey, after, stored?.version);
  const due = server.filter((m) => isDue(after.get(uidlHash(m.uidl)), mailbox, now)).map((m) => m.uidl);
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

  /** Creates ledger entries for UIDLs the snapshot does not know; returns how many were new. */
  async createNew(unknown: readonly ServerMessage[]): Promise<number> {
    let created = 0;
    for (let i = 0; i < unknown.length; i += this.policy.enqueueBatchSize) {
      const batch = unknown.slice(i, i + this.policy.enqueueBatchSize);
      const entries = await this.deps.ledger.createListed(
        batch.map((m) => ({ ...this.mailboxKey, uidl: m.uidl, listedSize: m.size, listedAt: this.now })),
      );
      const createdUidls = new Set(entries.map((e) => e.uidl));
      for (const entry of entries) {
        this.deps.telemetry.record({
          type: "listed",
          ...keyOf(entry),
          bytes: entry.listedSize,
          listedAt: entry.listedAt,
        });
        this.send(entry);
      }
      created += entries.length;
      // Known to the ledger but not to the snapshot (a crash before the snapshot write, or a
      // lost snapshot): look each up once and carry on from its state.
      await this.recheck(batch.filter((m) => !createdUidls.has(m.uidl)));
    }
    return created;
  }

  /** Reads the ledger for messages whose job may be lost; re-sends those not yet copied. */
  async recheck(messages: readonly ServerMessage[]): Promise<number> {
    let requeued = 0;
    for (const message of messages) {
      const key = { ...this.mailboxKey, uidl: message.uidl };
      const entry = await this.deps.ledger.get(key);
      if (entry === undefined) {
        // The ledger forgot it (restored from an older backup): start over, idempotently.
        const [created] = await this.deps.ledger.createListed([
          { ...key, listedSize: message.size, listedAt: this.now },
        ]);
        if (created !== undefined) this.send(created);
        continue;
      }
      if (isInFlight(entry)) {
        this.deps.telemetry.record({ type: "requeued", ...key, state: entry.state });
        this.send(entry);
        requeued++;
        continue;
      }
      this.after.set(uidlHash(message.uidl), settled(entry));
    }
    return requeued;
  }

  /**
   * Messages no longer on the server. Listed ones were taken by another client before we copied
   * them (quarantined as VANISHED, so an alarm says so); archived and importing ones are re-sent,
   * as the copy can finish from the archive; imported and retained ones were deleted, usually
   * already recorded by the session that deleted them, but a crash between its QUIT and that
   * ledger write leaves them unrecorded, so they are recorded here. One query finds their UIDLs
   * (the snapshot holds hashes), and only on a poll where some vanished.
   */
  async settleVanished(hashes: ReadonlySet<string>): Promise<number> {
    if (hashes.size === 0) return 0;
    const entries = await this.deps.ledger.listByState(this.mailboxKey, [
      ...IN_FLIGHT_STATES,
      ...COPIED_STATES,
    ]);
    let vanished = 0;
    for (const entry of entries) {
      if (!hashes.has(uidlHash(entry.uidl))) continue;
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

  private send(entry: LedgerEntry): void {
    this.jobs.push(jobOf(entry));
    this.after.set(uidlHash(entry.uidl), { kind: "pending", at: this.now + this.policy.stuckAfterMs });
  }
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

async function writeSnapshot(
  deps: ListDeps,
  mailboxKey: MailboxKey,
  entries: SnapshotEntries,
  expectedVersion: number | undefined,
): Promise<void> {
  try {
    await deps.ledger.putSnapshot(mailboxKey, encodeSnapshot(entries), expectedVersion);
  } catch (error) {
    // Another lister wrote first (maxSessions > 1). Its snapshot is as good as ours; the next
    // poll reconciles, and createListed/enqueue are idempotent.
    if (!(error instanceof LedgerConflictError)) throw error;
  }
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
