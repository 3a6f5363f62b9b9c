import type { MailboxConfig } from "../config/tenant-config";
import type { BusyReason } from "../ports/telemetry";
import type { WorkQueue } from "../ports/work-queue";
import { type CopyOutcome, type CopyPolicy, copyMessage, DEFAULT_COPY_POLICY } from "./copy-message";
import { deleteCopied } from "./delete-copied";
import { ConfigError } from "./errors";
import {
  DEFAULT_LIST_POLICY,
  type ListDeps,
  type ListingRead,
  type ListPolicy,
  type ListResult,
  readListing,
  settleListing,
} from "./list-new-messages";
import { withMailboxSession } from "./mailbox-session";
import type { CopyJob, LedgerEntry, MailboxKey } from "./model";
import type { PipelineDeps } from "./pipeline-deps";

/** The ports that copying needs beyond the lister's. */
export type CopyPorts = Pick<PipelineDeps, "archive" | "sink">;

/**
 * The lister's ports, and the copier's where this process has them: directly (the local
 * runtime), or built on first need by `copyPorts` (the list-new-messages function, which copies
 * only for a mailbox that announces a login delay).
 */
export type PollDeps = ListDeps &
  Partial<CopyPorts> & { readonly copyPorts?: () => Promise<CopyPorts> | CopyPorts };

/** What one poll did. `inSession` is set when the server has a login delay and the poll copied. */
export type MailboxPollResult =
  | { readonly kind: "busy"; readonly reason: BusyReason }
  | {
      readonly kind: "listed";
      readonly listed: Extract<ListResult, { kind: "listed" }>;
      /** The server's LOGIN-DELAY in ms (RFC 2449 §6.8): the next session must not start sooner. */
      readonly loginDelayMs?: number;
      /** The copy and delete work done inside the lister's session (login-delay servers only). */
      readonly inSession?: { readonly outcomes: readonly CopyOutcome[]; readonly deleted: number };
    };

/**
 * One poll of a mailbox in exactly one POP3 session (docs/pipeline.md "Login delay and UTF8").
 *
 * Without a login delay it is `listNewMessages`: UIDL + LIST, QUIT, then the diff and the enqueue,
 * so the maildrop is held no longer than before. When the session announces `LOGIN-DELAY`
 * (Cyrus's `popminpoll`, Courier's advisory 10 s), a second session within the delay would be
 * refused, so the copier's own session would never get in: this poll then copies every new and
 * in-flight message itself (`copyMessage`, resuming from the ledger), DELEs what is safely copied
 * and due, and QUITs once. Nothing is enqueued in that case: the work is done. A poller that
 * would have to load the copier's ports does that only for a long delay (`copiesInSession`);
 * for a short one it enqueues as usual, with the jobs held back by the delay.
 */
export async function pollInOneSession(
  deps: PollDeps,
  tenant: string,
  mailbox: MailboxConfig,
  policies: { list?: ListPolicy; copy?: CopyPolicy; shouldStop?: () => boolean } = {},
): Promise<MailboxPollResult> {
  const key: MailboxKey = { tenant, mailboxId: mailbox.id };
  const listPolicy = policies.list ?? DEFAULT_LIST_POLICY;
  const shouldStop = policies.shouldStop ?? (() => false);
  const outcome = await withMailboxSession(deps, key, mailbox, async (scope) => {
    // Read in this session: messages identified by content are hashed here (docs/pipeline.md
    // "Message identity").
    const read = await readListing(deps, scope);
    const delaySeconds = scope.session.capabilities?.loginDelaySeconds ?? 0;
    if (!copiesInSession(deps, mailbox, delaySeconds)) return { read, delaySeconds, work: undefined };
    const copying = { ...deps, ...(await copyPortsOf(deps, mailbox, delaySeconds)) };
    const captured: CopyJob[] = [];
    const listed = await listFrom(
      { ...deps, queue: { enqueue: async (jobs) => void captured.push(...jobs) } },
      tenant,
      mailbox,
      read,
      listPolicy,
    );
    const inFlight = await deps.ledger.listByState(key, ["listed", "archived", "importing", "imported"]);
    const jobs = uniqueByUidl([
      ...captured,
      ...inFlight.map((e) => ({ ...key, uidl: e.uidl, listedSize: e.listedSize, listedAt: e.listedAt })),
    ]);
    const outcomes: CopyOutcome[] = [];
    for (const job of jobs) {
      if (scope.broken || shouldStop()) break;
      outcomes.push(await copyMessage(copying, scope, mailbox, job, policies.copy ?? DEFAULT_COPY_POLICY));
    }
    const candidates: LedgerEntry[] = outcomes.flatMap((o) =>
      o.kind === "copied" || o.kind === "already-copied" ? [o.entry] : [],
    );
    const now = deps.clock.now();
    const copiedNow = await deleteCopied(deps, scope, mailbox, { now, candidates });
    // Retained messages that fell due: the DELEs above already cover this session's copies.
    const handled = new Set(candidates.map((entry) => entry.uidl));
    const dueUidls = listed.dueUidls.filter((uidl) => !handled.has(uidl));
    const fellDue =
      dueUidls.length === 0
        ? { marked: [], alreadyGone: [] }
        : await deleteCopied(deps, scope, mailbox, { now, uidls: dueUidls });
    return { read, delaySeconds, work: { listed, outcomes, plans: [copiedNow, fellDue] } };
  });
  if (outcome.kind === "busy") return outcome;
  const { read, delaySeconds, work } = outcome.value;
  const loginDelay = delaySeconds > 0 ? { loginDelayMs: delaySeconds * 1000 } : {};
  if (work === undefined) {
    // The session is closed: the ledger work runs on its listing, as listNewMessages always did.
    // A copier honours a short login delay by starting its session no sooner than the delay.
    const queue = delaySeconds > 0 ? delayedBy(deps.queue, delaySeconds) : deps.queue;
    return {
      kind: "listed",
      listed: await listFrom({ ...deps, queue }, tenant, mailbox, read, listPolicy),
      ...loginDelay,
    };
  }
  const deleted = work.plans.reduce(
    (sum, plan) => sum + (outcome.committed ? plan.marked.length : 0) + plan.alreadyGone.length,
    0,
  );
  return {
    kind: "listed",
    listed: work.listed,
    ...loginDelay,
    inSession: { outcomes: work.outcomes, deleted },
  };
}

/** `listNewMessages`'s ledger work over a listing already read, without opening another session. */
function listFrom(
  deps: ListDeps,
  tenant: string,
  mailbox: MailboxConfig,
  read: ListingRead,
  policy: ListPolicy,
): Promise<Extract<ListResult, { kind: "listed" }>> {
  return settleListing(deps, { tenant, mailboxId: mailbox.id }, mailbox, read, policy);
}

/**
 * Whether this poll copies in its own session. Always when a login delay is announced and the
 * poller holds an archive and a sink (the local runtime). A poller that would have to load them
 * (the list-new-messages function) does so only when the delay leaves no room for a separate
 * copier session between two polls (2 x delay > pollSeconds, e.g. Cyrus's 60 s); for a short
 * one (Courier's advisory 10 s at pollSeconds 60) the copy jobs wait out the delay instead.
 */
function copiesInSession(deps: PollDeps, mailbox: MailboxConfig, delaySeconds: number): boolean {
  if (delaySeconds <= 0) return false;
  if (deps.archive !== undefined && deps.sink !== undefined) return true;
  return 2 * delaySeconds > mailbox.pollSeconds;
}

/** A queue whose jobs become visible no sooner than `seconds` from now. */
function delayedBy(queue: WorkQueue, seconds: number): WorkQueue {
  return {
    enqueue: (jobs, options = {}) =>
      queue.enqueue(jobs, { ...options, delaySeconds: Math.max(options.delaySeconds ?? 0, seconds) }),
  };
}

/** The archive and sink to copy with, or a `ConfigError` saying why this process cannot copy. */
async function copyPortsOf(deps: PollDeps, mailbox: MailboxConfig, delaySeconds: number): Promise<CopyPorts> {
  if (deps.archive !== undefined && deps.sink !== undefined)
    return { archive: deps.archive, sink: deps.sink };
  if (deps.copyPorts === undefined) {
    throw new ConfigError(
      `mailboxes[${mailbox.id}].pop3`,
      `the server announces LOGIN-DELAY ${delaySeconds}, so the poll must copy in its own session, and this process cannot copy`,
      { hint: 'Give the poller the archive and Gmail ports (docs/pipeline.md, "Login delay and UTF8").' },
    );
  }
  return deps.copyPorts();
}

function uniqueByUidl(jobs: readonly CopyJob[]): CopyJob[] {
  return [...new Map(jobs.map((job) => [job.uidl, job])).values()];
}
