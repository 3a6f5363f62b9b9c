import type { MailboxConfig } from "../config/tenant-config";
import type { Ledger } from "../ports/ledger";
import type { LedgerState } from "./model";
import type { TenantProblem } from "./poll-chain";

/*
 * The part of the keeper's once-a-minute problem count (METRIC.tenantProblems) that looks at the
 * mail itself rather than at the polls: whatever stops a message on its way (a failing or
 * throttled copier, refused Google credentials, Gmail's 429s, a lost job, a claim left stale),
 * the message waits in the ledger, so one rule catches it (docs/pipeline.md "What counts as a
 * tenant problem"). This is what lets the `problems` alarm stand in for the former
 * `queue-stuck`, `quarantined` and `gmail-rate-limited` alarms (docs/deploy.md section 6).
 */

/** The states of a message listed but not yet in Gmail. */
export const NOT_IN_GMAIL_STATES: readonly LedgerState[] = ["listed", "archived", "importing"];

/** Timing rules of the mail checks. */
export interface MailProblemPolicy {
  /** A message still not in Gmail this long after it was first listed is stuck. */
  readonly stuckAfterMs: number;
  /** A mailbox counts as a problem this long after a message of it was quarantined. */
  readonly quarantinedWithinMs: number;
}

/**
 * 15 minutes: the copier imports within seconds and retries a 429 or a 5xx within minutes, so a
 * message older than that is held by something an operator must look at (the former
 * `queue-stuck` alarm's threshold). An hour: long enough for the `problems` alarm (two 5-minute
 * windows) to fire and mail, short enough that it turns OK again and can fire for the next
 * problem; the quarantine itself stays listed by `pop2gmail quarantine list`.
 */
export const DEFAULT_MAIL_PROBLEM_POLICY: MailProblemPolicy = {
  stuckAfterMs: 15 * 60_000,
  quarantinedWithinMs: 60 * 60_000,
};

/**
 * The keeper checks each mailbox's mail at one tick in this many (one a minute), so a healthy
 * mailbox costs its 2 read units once in 5 minutes instead of every minute (issue 14's cost
 * target). Stuck means 15 minutes, so a check every 5 minutes finds it at most 5 minutes later;
 * the `problems` alarm reads the Maximum of 5-minute windows, and each window holds one tick of
 * every mailbox (docs/pipeline.md "What counts as a tenant problem").
 */
export const MAIL_CHECK_EVERY_TICKS = 5;

/**
 * Whether the keeper's tick at `now` checks the mail of `mailboxId`: a stable hash of the id
 * (32-bit FNV-1a over its UTF-16 code units, then MurmurHash3's finalizer) mod `everyTicks` equal to the tick's minute mod
 * `everyTicks`. So each tick checks about 1 / `everyTicks` of the mailboxes, and a mailbox is
 * checked at the same minute of every clock-aligned window of `everyTicks` minutes, the windows
 * CloudWatch's 5-minute periods are.
 */
export function mailChecksDue(mailboxId: string, now: number, everyTicks = MAIL_CHECK_EVERY_TICKS): boolean {
  if (everyTicks <= 1) return true;
  let hash = 0x811c9dc5;
  for (let i = 0; i < mailboxId.length; i++) {
    hash ^= mailboxId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  // MurmurHash3's finalizer: FNV's low bits spread ids that differ in one digit poorly over 5.
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35);
  hash = (hash ^ (hash >>> 16)) >>> 0;
  return hash % everyTicks === Math.floor(now / 60_000) % everyTicks;
}

/**
 * Whether the keeper's tick at `now` reads the depth of the two problem queues (the copy
 * dead-letter queue and the failed-deletes queue, 2 SQS requests): at the ticks whose epoch minute
 * mod `everyTicks` is 0, so every clock-aligned 5-minute window (the `problems` alarm's periods)
 * holds one read, as `mailChecksDue` spreads the mail checks (issue 14's fixed cost:
 * docs/pipeline.md "What counts as a tenant problem").
 */
export function queueDepthsDue(now: number, everyTicks = MAIL_CHECK_EVERY_TICKS): boolean {
  return Math.floor(now / 60_000) % everyTicks === 0;
}

/** Mailboxes whose ledger is read at once (each costs up to four small queries a tick). */
const MAILBOXES_AT_ONCE = 8;

/** A problem the mail checks find, one per mailbox and cause. */
export type MailProblem =
  | {
      /** A message of the mailbox is not in Gmail `stuckAfterMs` after it was listed. */
      readonly cause: "mail-stuck";
      readonly mailboxId: string;
      /** One such message (not necessarily the oldest) and where it waits. */
      readonly uidl: string;
      readonly state: LedgerState;
      readonly listedAt: number;
    }
  | {
      /** A message of the mailbox was quarantined within `quarantinedWithinMs`. */
      readonly cause: "quarantined";
      readonly mailboxId: string;
      readonly uidl: string;
      readonly quarantinedAt: number;
      readonly quarantineCode?: string;
    };

/** What the mail checks read: the ledger's yes/no query (optional for tests of the chain alone). */
export interface MailProblemDeps {
  readonly ledger?: Pick<Ledger, "findInState">;
}

/**
 * The mail problems of each configured mailbox at `now`: one `mail-stuck` if any message waits
 * in `listed`, `archived` or `importing` since before `now - stuckAfterMs`, one `quarantined` if
 * any message was quarantined at or after `now - quarantinedWithinMs`. Each is one
 * `Ledger.findInState`: on DynamoDB 0.5 read units per state asked when nothing matches, so a
 * healthy mailbox costs 2 read units a tick (3 states + 1). Without a ledger, none.
 */
export async function mailProblems(
  deps: MailProblemDeps,
  tenant: string,
  mailboxes: readonly MailboxConfig[],
  now: number,
  policy: MailProblemPolicy = DEFAULT_MAIL_PROBLEM_POLICY,
): Promise<MailProblem[]> {
  const { ledger } = deps;
  if (ledger === undefined) return [];
  const perMailbox: MailProblem[][] = [];
  for (let i = 0; i < mailboxes.length; i += MAILBOXES_AT_ONCE) {
    const batch = mailboxes.slice(i, i + MAILBOXES_AT_ONCE);
    perMailbox.push(
      ...(await Promise.all(batch.map((m) => mailboxProblems(ledger, tenant, m.id, now, policy)))),
    );
  }
  return perMailbox.flat();
}

async function mailboxProblems(
  ledger: Pick<Ledger, "findInState">,
  tenant: string,
  mailboxId: string,
  now: number,
  policy: MailProblemPolicy,
): Promise<MailProblem[]> {
  const key = { tenant, mailboxId };
  const [stuck, quarantined] = await Promise.all([
    ledger.findInState(key, NOT_IN_GMAIL_STATES, { listedBefore: now - policy.stuckAfterMs }),
    ledger.findInState(key, ["quarantined"], { quarantinedSince: now - policy.quarantinedWithinMs }),
  ]);
  const problems: MailProblem[] = [];
  if (stuck !== undefined) {
    problems.push({
      cause: "mail-stuck",
      mailboxId,
      uidl: stuck.uidl,
      state: stuck.state,
      listedAt: stuck.listedAt,
    });
  }
  if (quarantined?.quarantinedAt !== undefined) {
    problems.push({
      cause: "quarantined",
      mailboxId,
      uidl: quarantined.uidl,
      quarantinedAt: quarantined.quarantinedAt,
      ...(quarantined.quarantineCode === undefined ? {} : { quarantineCode: quarantined.quarantineCode }),
    });
  }
  return problems;
}

/**
 * The fields of the keeper's `tenant problem` log line: the problem, its times as ISO dates, and
 * `action`, what the operator does about it (the alarm mail points at these lines).
 */
export function tenantProblemLog(tenant: string, problem: TenantProblem): Record<string, unknown> {
  switch (problem.cause) {
    case "not-polled":
      return {
        ...problem,
        since: new Date(problem.since).toISOString(),
        action:
          "The POP3 server is down, refuses TLS, stays locked by another client (Gmail's own POP fetcher?) or refuses the password: see lastFailure and the list-new-messages log for this mailbox.",
      };
    case "credentials":
      return {
        ...problem,
        action: "The POP3 server refused the password: update the mailbox's password in the tenant secret.",
      };
    case "dead-letters":
      return {
        ...problem,
        action: `Read the copy-message log, fix the cause, then \`pop2gmail redrive --aws --tenant ${tenant}\`.`,
      };
    case "failed-deletes":
      return {
        ...problem,
        action:
          "Read the delete-copied log; once fixed, purge the failed-deletes queue (the next poll deletes again).",
      };
    case "mail-stuck":
      return {
        ...problem,
        listedAt: new Date(problem.listedAt).toISOString(),
        action:
          "Mail listed 15+ minutes ago is not in Gmail. Read the copy-message log for this mailbox: CREDENTIALS_REJECTED means renew the Google credentials (docs/deploy.md section 3); 429s mean another client shares the Gmail user's quota; throttles mean the account's Lambda concurrency. A first import of a large mailbox shows here until it has drained. Nothing is lost.",
      };
    case "quarantined":
      return {
        ...problem,
        quarantinedAt: new Date(problem.quarantinedAt).toISOString(),
        action: `A message was set aside (archived in S3, left on the POP3 server): \`pop2gmail quarantine list --aws --tenant ${tenant}\` names it and the reason; once fixed, \`pop2gmail quarantine retry --aws --tenant ${tenant}\`. Counted for an hour.`,
      };
  }
}
