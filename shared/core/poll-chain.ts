import type { MailboxConfig } from "../config/tenant-config";
import type { Clock } from "../ports/clock";
import type {
  PollChainItem,
  PollChains,
  PollEnd,
  PollFailureKind,
  PollMessage,
  PollQueue,
} from "../ports/poll-chains";
import type { ChainHold } from "./chain-session-leases";
import {
  MAIL_CHECK_EVERY_TICKS,
  type MailProblem,
  type MailProblemDeps,
  mailChecksDue,
  mailProblems,
  queueDepthsDue,
} from "./tenant-problems";

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

/** The keeper's tick: the tenant's one schedule runs it every minute. */
export const KEEPER_TICK_MS = 60_000;

/**
 * Whether a mailbox is polled by a chain of poll messages (`pollSeconds` below the keeper's
 * minute); the others are polled by the keeper's tick itself (docs/pipeline.md "Poll chains on
 * AWS"), so a tenant without a sub-minute mailbox needs no poll queue.
 */
export function chainedPolls(mailbox: MailboxConfig): boolean {
  return mailbox.pollSeconds * 1000 < KEEPER_TICK_MS;
}

/** Whether the tenant needs a poll queue: some mailbox polls more often than once a minute. */
export function usesPollQueue(mailboxes: readonly MailboxConfig[]): boolean {
  return mailboxes.some(chainedPolls);
}

/**
 * The interval of a mailbox the keeper polls: `pollSeconds` rounded UP to whole keeper ticks
 * (60 s -> 1 minute, 61-120 s -> 2, 300 s -> 5), so it is never polled more often than asked.
 */
export function keeperPollIntervalMs(mailbox: MailboxConfig): number {
  return Math.max(1, Math.ceil((mailbox.pollSeconds * 1000) / KEEPER_TICK_MS)) * KEEPER_TICK_MS;
}

/**
 * Whether the keeper's tick at `now` polls a keeper-polled mailbox whose next poll is due at
 * `nextPollAt` (the last poll's tick + `keeperPollIntervalMs`): from half a tick before, so a
 * tick early or late by up to 30 s neither skips nor doubles a poll.
 */
export function dueAtTick(nextPollAt: number, now: number): boolean {
  return now >= nextPollAt - KEEPER_TICK_MS / 2;
}

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

/** How a chain step runs. */
export interface ChainStepOptions {
  /**
   * Set when the keeper runs the poll (a mailbox polled every minute or slower): the tick's time.
   * The next poll is due at the tick + `keeperPollIntervalMs` (or after a longer login delay) and
   * is the keeper's: no message is sent.
   */
  readonly keeperTickAt?: number;
}

/**
 * Handles one poll message: takes the chain (a conditional write on chain + seq, so a duplicate
 * delivery, a stale chain's message or a second message while the poll runs is a no-op), polls
 * once, records the outcome and sends the next message. Whatever the poll did (listed, busy,
 * failed, or threw) the next message is sent, so a chain never dies of a poll error; `poll` is
 * expected to map its errors, and anything it throws is recorded as an `error` failure.
 * `pollUntil` (epoch ms) is when this invocation is surely dead (its deadline plus a margin):
 * a redelivered message may take the chain again after it.
 *
 * The take is also the poll's session lease on the mailbox's last slot (`chainHeldLeases`,
 * docs/pipeline.md "Why leases"): `poll` gets the hold, whose `end` (the session's release)
 * records the poll as a success at once, so an idle poll writes twice (take, finish). When the
 * outcome then differs (a failure, a login delay past pollSeconds) the record is amended.
 * A mailbox polled every minute or slower gets no next message: the keeper's tick polls it when
 * due (`options.keeperTickAt`, `keeperTick`).
 */
export async function runChainStep(
  deps: PollChainDeps,
  tenant: string,
  mailbox: MailboxConfig,
  message: PollMessage,
  pollUntil: number,
  poll: (hold: ChainHold) => Promise<ChainPollOutcome>,
  options: ChainStepOptions = {},
): Promise<ChainStepResult> {
  const taken = await deps.chains.take(tenant, message, deps.clock.now(), pollUntil);
  if (taken === undefined) return { kind: "skipped" };
  const endOf = (outcome: ChainPollOutcome, at: number): PollEnd => ({
    at,
    nextPollAt: nextPollAt(mailbox, outcome, at, options.keeperTickAt),
    ...(outcome.kind === "failed"
      ? { failure: { kind: outcome.failure, ...(outcome.code === undefined ? {} : { code: outcome.code }) } }
      : {}),
  });
  let recorded: { readonly end: PollEnd; readonly finished: boolean } | undefined;
  let ending: Promise<void> | undefined;
  const hold: ChainHold = {
    end() {
      ending ??= (async () => {
        const end = endOf({ kind: "succeeded" }, deps.clock.now());
        recorded = { end, finished: await deps.chains.finish(tenant, message, pollUntil, end) };
      })();
      return ending;
    },
  };
  let outcome: ChainPollOutcome;
  try {
    outcome = await poll(hold);
  } catch (error) {
    outcome = { kind: "failed", failure: "error", code: codeOf(error) };
  }
  const delaySeconds = nextPollDelaySeconds(mailbox, outcome);
  let finished: boolean;
  if (recorded === undefined) {
    finished = await deps.chains.finish(tenant, message, pollUntil, endOf(outcome, deps.clock.now()));
  } else if (!recorded.finished) {
    finished = false;
  } else {
    finished = true;
    const end = endOf(outcome, recorded.end.at);
    if (end.failure !== undefined || end.nextPollAt !== recorded.end.nextPollAt) {
      // Recorded as a success at the end of the session; the poll turned out otherwise.
      await deps.chains.amend(tenant, message, recorded.end, end, taken.lastSucceededAt);
    }
  }
  if (!finished) return { kind: "superseded", outcome };
  const next: PollMessage = { mailboxId: message.mailboxId, chain: message.chain, seq: message.seq + 1 };
  if (options.keeperTickAt !== undefined || !chainedPolls(mailbox)) {
    return { kind: "polled", outcome, nextSeq: next.seq, delaySeconds: 0 };
  }
  await deps.pollQueue.send(next, delaySeconds);
  return { kind: "polled", outcome, nextSeq: next.seq, delaySeconds };
}

/**
 * When the next poll is due: a chained poll's message waits `nextPollDelaySeconds` from the end
 * of the poll; a keeper-run poll is due `keeperPollIntervalMs` after its tick, or after a longer
 * login delay from the end of the poll.
 */
function nextPollAt(
  mailbox: MailboxConfig,
  outcome: ChainPollOutcome,
  at: number,
  keeperTickAt: number | undefined,
): number {
  if (keeperTickAt === undefined) return at + nextPollDelaySeconds(mailbox, outcome) * 1000;
  const loginDelayMs = outcome.kind === "succeeded" ? Math.ceil(outcome.loginDelaySeconds ?? 0) * 1000 : 0;
  return Math.max(keeperTickAt + keeperPollIntervalMs(mailbox), at + loginDelayMs);
}

/** Timing rules of the keeper. */
export interface KeeperPolicy {
  /** A chain whose live message is this late (past `nextPollAt`) is taken as lost. */
  readonly lostAfterMs: number;
  /** The least time without a successful poll that counts as a problem (doubled pollSeconds if longer). */
  readonly notPolledFloorMs: number;
  /** Each mailbox's mail checks run at one tick in this many (`mailChecksDue`, tenant-problems.ts). */
  readonly mailChecksEveryTicks: number;
  /** The two problem queues' depth is read at one tick in this many (`queueDepthsDue`, tenant-problems.ts). */
  readonly queueDepthsEveryTicks: number;
}

/**
 * One keeper tick a minute: a message is lost when it is a minute late. Restarting a chain that
 * was only late is harmless: the late message becomes stale (docs/pipeline.md "Poll chains").
 */
export const DEFAULT_KEEPER_POLICY: KeeperPolicy = {
  lostAfterMs: 60_000,
  notPolledFloorMs: 10 * 60_000,
  mailChecksEveryTicks: MAIL_CHECK_EVERY_TICKS,
  queueDepthsEveryTicks: MAIL_CHECK_EVERY_TICKS,
};

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
  /** Polls of mailboxes polled every minute or slower that are due at this tick (`runKeeperPolls`). */
  readonly due: readonly KeeperPoll[];
}

/** A poll the keeper's tick runs: the mailbox and its chain's live message. */
export interface KeeperPoll {
  readonly mailbox: MailboxConfig;
  readonly message: PollMessage;
}

/** How the keeper runs its due polls. */
export interface KeeperPollOptions {
  /** The tick's time (`clock.now()` when `keeperTick` read the chains). */
  readonly tickAt: number;
  /** When this invocation is surely dead (its deadline plus a margin), as in `runChainStep`. */
  readonly pollUntil: number;
  /** Polls at once at most (different mailboxes; each one POP3 session). */
  readonly concurrency: number;
  /** False when no poll should start any more (the invocation's time is running out). */
  readonly mayStart: () => boolean;
}

/**
 * Runs the keeper's due polls (docs/pipeline.md "Poll chains on AWS"), `concurrency` at a time,
 * each a `runChainStep` of the chain's live message with `keeperTickAt`, so the take keeps them
 * from overlapping a poll still running from an earlier tick or a message still queued. A poll
 * whose chain step throws (the chain item could not be written) is reported with the error; its
 * chain is taken again at a later tick once its `pollUntil` has passed.
 */
export async function runKeeperPolls(
  deps: PollChainDeps,
  tenant: string,
  due: readonly KeeperPoll[],
  options: KeeperPollOptions,
  poll: (mailbox: MailboxConfig, hold: ChainHold) => Promise<ChainPollOutcome>,
): Promise<{ mailboxId: string; result: ChainStepResult | { kind: "failed"; error: unknown } }[]> {
  const results: { mailboxId: string; result: ChainStepResult | { kind: "failed"; error: unknown } }[] = [];
  let next = 0;
  const worker = async () => {
    while (next < due.length && options.mayStart()) {
      const { mailbox, message } = due[next++]!;
      try {
        const result = await runChainStep(
          deps,
          tenant,
          mailbox,
          message,
          options.pollUntil,
          (hold) => poll(mailbox, hold),
          { keeperTickAt: options.tickAt },
        );
        results.push({ mailboxId: mailbox.id, result });
      } catch (error) {
        results.push({ mailboxId: mailbox.id, result: { kind: "failed", error } });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, due.length)) }, worker));
  return results;
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
 * after listing, a quarantine within the hour; each mailbox's at one tick in
 * `mailChecksEveryTicks`), and one each for a non-empty dead-letter and
 * failed-deletes queue (METRIC.tenantProblems; their depth read at one tick in
 * `queueDepthsEveryTicks`). Items of mailboxes no longer configured are left
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
  const due: KeeperPoll[] = [];
  for (const mailbox of mailboxes) {
    const item = items.get(mailbox.id);
    const poll = keeperPollOf(mailbox, item, now);
    if (poll !== undefined) due.push(poll);
    if (chainedPolls(mailbox) ? isLost(item, now, policy) : item === undefined) {
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
          if (chainedPolls(mailbox)) {
            await deps.pollQueue.send({ mailboxId: mailbox.id, chain, seq: 0 }, delaySeconds);
          }
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
  // Mail checks for ~1/5 of the mailboxes a tick (each mailbox once in 5), the rest every tick.
  const mailChecked = mailboxes.filter((m) => mailChecksDue(m.id, now, policy.mailChecksEveryTicks));
  problems.push(...(await mailProblems(deps, tenant, mailChecked, now)));
  // The queues' depth at one tick in five: 2 SQS requests a minute were most of the keeper's cost.
  if (queueDepthsDue(now, policy.queueDepthsEveryTicks)) {
    const depths = await deps.problemQueueDepths();
    if (depths.deadLetters > 0) problems.push({ cause: "dead-letters", messages: depths.deadLetters });
    if (depths.failedDeletes > 0) problems.push({ cause: "failed-deletes", messages: depths.failedDeletes });
  }
  return { started, startFailed, problems, due };
}

/**
 * The poll this tick runs for `mailbox`, if any: one polled every minute or slower, whose chain
 * item is due (`dueAtTick`) and not held by a poll still running. No message is lost for such a
 * mailbox; a poll that died is taken over once its pollUntil has passed (docs/pipeline.md "Poll
 * chains on AWS").
 */
function keeperPollOf(
  mailbox: MailboxConfig,
  item: PollChainItem | undefined,
  now: number,
): KeeperPoll | undefined {
  if (chainedPolls(mailbox) || item === undefined) return undefined;
  const running = item.pollUntil !== undefined && now <= item.pollUntil;
  if (running || !dueAtTick(item.nextPollAt, now)) return undefined;
  return { mailbox, message: { mailboxId: mailbox.id, chain: item.chain, seq: item.seq } };
}

/**
 * The keeper's due polls alone (`keeperTick`'s `due`), for a tick whose problem count failed: the
 * mailboxes are polled all the same, while the missing datapoint raises the alarm.
 */
export async function duePollsOnly(
  deps: Pick<PollChainDeps, "chains" | "clock">,
  tenant: string,
  mailboxes: readonly MailboxConfig[],
): Promise<KeeperPoll[]> {
  const items = new Map((await deps.chains.list(tenant)).map((item) => [item.mailboxId, item]));
  const now = deps.clock.now();
  return mailboxes.flatMap((mailbox) => keeperPollOf(mailbox, items.get(mailbox.id), now) ?? []);
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
