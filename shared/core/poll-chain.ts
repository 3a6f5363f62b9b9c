import type { MailboxConfig } from "../config/tenant-config";
import type { Clock } from "../ports/clock";
import type {
  PollChainItem,
  PollChains,
  PollFailureKind,
  PollMessage,
  PollQueue,
} from "../ports/poll-chains";
import { type MailProblem, type MailProblemDeps, mailProblems } from "./tenant-problems";

/*
 * Sub-minute polling on AWS without a Lambda that waits (docs/pipeline.md "Poll chains"): each
 * mailbox has one chain of delayed poll messages. A message makes the lister poll once and send
 * the next one, delayed by the mailbox's interval; the chain item in the ledger table says which
 * message is live. A keeper, run once a minute by the tenant's one schedule, restarts a chain
 * whose message went missing and counts the tenant's problems.
 */

/** What the tenant's one schedule sends the lister once a minute: run the keeper tick. */
export const KEEPER_EVENT = { keeper: true } as const;

/** SQS's longest per-message timer (DelaySeconds). */
export const MAX_POLL_DELAY_SECONDS = 900;

/** The ports a chain step and the keeper use. */
export interface PollChainDeps {
  readonly chains: PollChains;
  readonly pollQueue: PollQueue;
  readonly clock: Clock;
}

/** How one poll went, as the chain records it. */
export type ChainPollOutcome =
  | { readonly kind: "succeeded"; readonly loginDelaySeconds?: number }
  | { readonly kind: "failed"; readonly failure: PollFailureKind; readonly code?: string };

/** What one poll message did. */
export type ChainStepResult =
  /** The message was live: the mailbox was polled and the next message sent. */
  | {
      readonly kind: "polled";
      readonly outcome: ChainPollOutcome;
      readonly nextSeq: number;
      readonly delaySeconds: number;
    }
  /** The chain moved on during the poll (the keeper restarted it): no next message from here. */
  | { readonly kind: "superseded"; readonly outcome: ChainPollOutcome }
  /** A duplicate or stale message, or the mailbox's poll is still running: nothing done. */
  | { readonly kind: "skipped" };

/**
 * The delay before the next poll: `pollSeconds`, or the server's LOGIN-DELAY when longer (a
 * session sooner would be refused, RFC 2449 §6.8), at most SQS's 900 s.
 */
export function nextPollDelaySeconds(mailbox: MailboxConfig, outcome: ChainPollOutcome): number {
  const loginDelay = outcome.kind === "succeeded" ? (outcome.loginDelaySeconds ?? 0) : 0;
  return Math.min(MAX_POLL_DELAY_SECONDS, Math.max(mailbox.pollSeconds, Math.ceil(loginDelay)));
}

/**
 * Handles one poll message: takes the chain (a conditional write on chain + seq, so a duplicate
 * delivery, a stale chain's message or a second message while the poll runs is a no-op), polls
 * once, records the outcome and sends the next message. Whatever the poll did (listed, busy,
 * failed, or threw) the next message is sent, so a chain never dies of a poll error; `poll` is
 * expected to map its errors, and anything it throws is recorded as an `error` failure.
 * `pollUntil` (epoch ms) is when this invocation is surely dead (its deadline plus a margin):
 * a redelivered message may take the chain again after it.
 */
export async function runChainStep(
  deps: PollChainDeps,
  tenant: string,
  mailbox: MailboxConfig,
  message: PollMessage,
  pollUntil: number,
  poll: () => Promise<ChainPollOutcome>,
): Promise<ChainStepResult> {
  const taken = await deps.chains.take(tenant, message, deps.clock.now(), pollUntil);
  if (taken === undefined) return { kind: "skipped" };
  let outcome: ChainPollOutcome;
  try {
    outcome = await poll();
  } catch (error) {
    outcome = { kind: "failed", failure: "error", code: codeOf(error) };
  }
  const delaySeconds = nextPollDelaySeconds(mailbox, outcome);
  const at = deps.clock.now();
  const finished = await deps.chains.finish(tenant, message, pollUntil, {
    at,
    nextPollAt: at + delaySeconds * 1000,
    ...(outcome.kind === "failed"
      ? { failure: { kind: outcome.failure, ...(outcome.code === undefined ? {} : { code: outcome.code }) } }
      : {}),
  });
  if (!finished) return { kind: "superseded", outcome };
  const next: PollMessage = { mailboxId: message.mailboxId, chain: message.chain, seq: message.seq + 1 };
  await deps.pollQueue.send(next, delaySeconds);
  return { kind: "polled", outcome, nextSeq: next.seq, delaySeconds };
}

/** Timing rules of the keeper. */
export interface KeeperPolicy {
  /** A chain whose live message is this late (past `nextPollAt`) is taken as lost. */
  readonly lostAfterMs: number;
  /** The least time without a successful poll that counts as a problem (doubled pollSeconds if longer). */
  readonly notPolledFloorMs: number;
}

/**
 * One keeper tick a minute: a message is lost when it is a minute late. Restarting a chain that
 * was only late is harmless: the late message becomes stale (docs/pipeline.md "Poll chains").
 */
export const DEFAULT_KEEPER_POLICY: KeeperPolicy = { lostAfterMs: 60_000, notPolledFloorMs: 10 * 60_000 };

/** One open problem of the tenant, as counted in `TenantProblems`. */
export type TenantProblem =
  | {
      readonly cause: "not-polled";
      readonly mailboxId: string;
      /** Since when no poll succeeded (the chain's first start when none ever did), epoch ms. */
      readonly since: number;
      readonly lastFailure?: PollFailureKind;
      readonly lastFailureCode?: string;
    }
  | { readonly cause: "credentials"; readonly mailboxId: string; readonly lastFailureCode?: string }
  | { readonly cause: "dead-letters" | "failed-deletes"; readonly messages: number }
  /** Mail not in Gmail 15 minutes after listing, or quarantined within the hour (tenant-problems.ts). */
  | MailProblem;

/** What a keeper tick did and found. */
export interface KeeperResult {
  /** Mailboxes whose chain was (re)started. */
  readonly started: readonly string[];
  /** Mailboxes whose chain could not be restarted (the error), to be retried next tick. */
  readonly startFailed: readonly { readonly mailboxId: string; readonly error: unknown }[];
  readonly problems: readonly TenantProblem[];
}

/** The keeper's ports: the chain ports, fresh chain ids and the two queues whose depth is a problem. */
export interface KeeperDeps extends PollChainDeps, MailProblemDeps {
  newChainId(): string;
  /**
   * In [0, 1): spreads the first poll of a mailbox that never had a chain over its `pollSeconds`
   * (default `Math.random`), so a deploy of many mailboxes on one POP3 server does not poll them
   * all in the same second, ever after.
   */
  random?(): number;
  /** Messages in the copy dead-letter queue and the failed-deletes queue (ApproximateNumberOfMessages). */
  problemQueueDepths(): Promise<{ readonly deadLetters: number; readonly failedDeletes: number }>;
}

/**
 * The keeper tick: reads every chain item (one call), restarts each configured mailbox's chain
 * that has none or whose live message is lost (a new chain id, written only if the item is still
 * as read, then its first message: due at once after a loss, spread over `pollSeconds` for a
 * mailbox that never had a chain), and counts the tenant's problems: mailboxes not
 * polled successfully for max(10 min, 2 x pollSeconds), mailboxes whose last poll met a
 * credentials error, the mail problems of shared/core/tenant-problems.ts (mail stuck 15 minutes
 * after listing, a quarantine within the hour), and one each for a non-empty dead-letter and
 * failed-deletes queue (METRIC.tenantProblems). Items of mailboxes no longer configured are left
 * alone: their messages are dropped by the lister, so the chain ends.
 */
export async function keeperTick(
  deps: KeeperDeps,
  tenant: string,
  mailboxes: readonly MailboxConfig[],
  policy: KeeperPolicy = DEFAULT_KEEPER_POLICY,
): Promise<KeeperResult> {
  const items = new Map((await deps.chains.list(tenant)).map((item) => [item.mailboxId, item]));
  const now = deps.clock.now();
  const started: string[] = [];
  const startFailed: { mailboxId: string; error: unknown }[] = [];
  const problems: TenantProblem[] = [];
  for (const mailbox of mailboxes) {
    const item = items.get(mailbox.id);
    if (isLost(item, now, policy)) {
      try {
        const chain = deps.newChainId();
        // A restart polls at once (its mailbox is overdue); a first start is spread out.
        const delaySeconds =
          item === undefined
            ? Math.floor(
                (deps.random?.() ?? Math.random()) * Math.min(mailbox.pollSeconds, MAX_POLL_DELAY_SECONDS),
              )
            : 0;
        if (await deps.chains.start(tenant, mailbox.id, chain, now, item, now + delaySeconds * 1000)) {
          await deps.pollQueue.send({ mailboxId: mailbox.id, chain, seq: 0 }, delaySeconds);
          started.push(mailbox.id);
        }
      } catch (error) {
        startFailed.push({ mailboxId: mailbox.id, error });
      }
    }
    if (item === undefined) continue;
    const since = item.lastSucceededAt ?? item.firstStartedAt;
    if (now - since > Math.max(policy.notPolledFloorMs, 2 * mailbox.pollSeconds * 1000)) {
      problems.push({
        cause: "not-polled",
        mailboxId: mailbox.id,
        since,
        ...(item.lastFailure === undefined ? {} : { lastFailure: item.lastFailure }),
        ...(item.lastFailureCode === undefined ? {} : { lastFailureCode: item.lastFailureCode }),
      });
    }
    if (item.lastFailure === "credentials") {
      problems.push({
        cause: "credentials",
        mailboxId: mailbox.id,
        ...(item.lastFailureCode === undefined ? {} : { lastFailureCode: item.lastFailureCode }),
      });
    }
  }
  problems.push(...(await mailProblems(deps, tenant, mailboxes, now)));
  const depths = await deps.problemQueueDepths();
  if (depths.deadLetters > 0) problems.push({ cause: "dead-letters", messages: depths.deadLetters });
  if (depths.failedDeletes > 0) problems.push({ cause: "failed-deletes", messages: depths.failedDeletes });
  return { started, startFailed, problems };
}

/** No chain yet, a poll that outlived its invocation, or a live message a minute overdue. */
function isLost(item: PollChainItem | undefined, now: number, policy: KeeperPolicy): boolean {
  if (item === undefined) return true;
  if (item.pollUntil !== undefined) return now > item.pollUntil;
  return now > item.nextPollAt + policy.lostAfterMs;
}

function codeOf(error: unknown): string {
  if (typeof error === "object" && error !== null && "code" in error && typeof error.code === "string") {
    return error.code;
  }
  return "UNEXPECTED";
}
