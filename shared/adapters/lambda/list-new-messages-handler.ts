import type { Context, SQSBatchItemFailure, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import * as z from "zod";
import type { MailboxConfig } from "../../config/tenant-config";
import { type ChainHold, chainHeldLeases } from "../../core/chain-session-leases";
import { ConfigError, CredentialsError, Pop2GmailError, ProtocolError } from "../../core/errors";
import type { ListResult } from "../../core/list-new-messages";
import {
  type ChainPollOutcome,
  duePollsOnly,
  type KeeperDeps,
  keeperTick,
  runChainStep,
  runKeeperPolls,
} from "../../core/poll-chain";
import { type MailboxPollResult, pollInOneSession } from "../../core/poll-in-one-session";
import { tenantProblemLog } from "../../core/tenant-problems";
import type { SessionLeases, SessionSlots } from "../../ports/session-leases";
import { parsePollMessage } from "../sqs/sqs-poll-queue";
import { describe } from "./describe-error";
import { invocationScope, LEASE_MARGIN_MS } from "./lambda-base";
import type { ListNewMessagesDeps } from "./list-new-messages-deps";

/** A direct poll of one mailbox: `{"mailboxId": "info@acme.it"}` (an operator's or a test's invocation). */
const listEventSchema = z.object({ mailboxId: z.string().min(1) });

export { KEEPER_EVENT } from "../../core/poll-chain";

const keeperEventSchema = z.object({ keeper: z.literal(true) });

/** What one poll returned, for tests and the Lambda console. */
export type ListNewMessagesResult =
  | {
      readonly outcome: "listed";
      readonly mailboxId: string;
      readonly polls: number;
      readonly newMessages: number;
      /** Async delete-copied invocations started. */
      readonly deletePasses: number;
      /** Copied in the poll's own session: only for a server that announces LOGIN-DELAY. */
      readonly copiedInSession?: number;
    }
  | { readonly outcome: "busy"; readonly mailboxId: string; readonly polls: number }
  | { readonly outcome: "credentials-broken"; readonly mailboxId: string }
  | { readonly outcome: "failed"; readonly mailboxId: string; readonly code: string };

/** What a keeper tick did. */
export interface KeeperTickResult {
  readonly outcome: "kept";
  /** Chains (re)started. */
  readonly started: number;
  /** The `TenantProblems` value emitted. */
  readonly problems: number;
  /** Mailboxes polled every minute or slower that this tick polled. */
  readonly polled: number;
}

type KeeperTickDue = Awaited<ReturnType<typeof keeperTick>>["due"];

/** The chain ports of the lister, built on first use (only chain and keeper events need them). */
export interface ListerChainDeps extends ListNewMessagesDeps {
  chainPorts(): KeeperDeps;
  /** The lease slots a chain poll checks after taking its chain (`chainHeldLeases`). */
  sessionSlots(): SessionSlots;
}

/**
 * Polls the keeper's tick runs at once (different mailboxes, one POP3 session each): bounds the
 * sockets and memory of one 256 MB invocation; 200 mailboxes at ~0.1-0.2 s a poll take a few
 * seconds a tick.
 */
export const KEEPER_POLL_CONCURRENCY = 8;

/** Kept free before the function's timeout: a poll that copies (LOGIN-DELAY) starts no copy it cannot finish. */
const TIMEOUT_MARGIN_MS = 20_000;

/**
 * One poll of one mailbox, and what it started: when the poll reports deletes due, delete-copied
 * is invoked asynchronously with those UIDLs.
 *
 * Errors: a busy mailbox is a normal outcome. A `CredentialsError` was already reported by the
 * core (one `credentials-broken` event -> `CredentialsBroken` metric) and is returned, not thrown:
 * repeating a wrong password soon only risks the provider locking the account. A retryable error
 * (timeout, dropped connection, throttling) is logged and returned: the next poll is the retry.
 * Anything else (TLS, configuration, permissions, a bug) is thrown.
 */
async function pollOnce(
  deps: ListNewMessagesDeps,
  mailbox: MailboxConfig,
  context: Context,
  leases?: SessionLeases,
): Promise<{ result: ListNewMessagesResult; loginDelaySeconds?: number }> {
  const pipeline = {
    ...deps.pipeline,
    ...invocationScope(context),
    // A chain poll's session is held by its chain item (shared/core/chain-session-leases.ts).
    ...(leases === undefined ? {} : { leases }),
  };
  const copyPorts = deps.copyPorts;
  const polling = copyPorts === undefined ? pipeline : { ...pipeline, copyPorts: () => copyPorts() };
  const shouldStop = () => context.getRemainingTimeInMillis() < TIMEOUT_MARGIN_MS;
  let poll: MailboxPollResult;
  try {
    poll = await pollInOneSession(polling, deps.config.tenant, mailbox, { shouldStop });
  } catch (error) {
    if (error instanceof CredentialsError)
      return { result: { outcome: "credentials-broken", mailboxId: mailbox.id } };
    if (error instanceof Pop2GmailError && error.retryable) {
      deps.logger.warn("poll failed; the next poll retries", {
        mailboxId: mailbox.id,
        error: describe(error),
      });
      return { result: { outcome: "failed", mailboxId: mailbox.id, code: error.code } };
    }
    throw error;
  }
  if (poll.kind === "busy") return { result: { outcome: "busy", mailboxId: mailbox.id, polls: 1 } };
  const loginDelay = poll.loginDelayMs === undefined ? {} : { loginDelaySeconds: poll.loginDelayMs / 1000 };
  // docs/pipeline.md "Login delay and UTF8": such a poll copied and deleted in its session.
  const copiedInSession = poll.inSession?.outcomes.filter((o) => o.kind === "copied").length ?? 0;
  const deletePasses = poll.inSession === undefined ? await startDeletePass(deps, mailbox, poll.listed) : 0;
  return {
    result: {
      outcome: "listed",
      mailboxId: mailbox.id,
      polls: 1,
      newMessages: poll.listed.newMessages,
      deletePasses,
      ...(copiedInSession > 0 ? { copiedInSession } : {}),
    },
    ...loginDelay,
  };
}

/** Starts delete-copied for the due UIDLs; 1 when it did. A lost pass only delays the delete. */
async function startDeletePass(
  deps: ListNewMessagesDeps,
  mailbox: MailboxConfig,
  result: ListResult,
): Promise<number> {
  if (result.kind !== "listed" || result.deletesDue === 0 || result.dueUidls.length === 0) return 0;
  try {
    await deps.deleteInvoker().invoke({ mailboxId: mailbox.id, uidls: result.dueUidls });
    return 1;
  } catch (error) {
    // The next poll reports them due again.
    deps.logger.warn("could not start delete-copied", {
      mailboxId: mailbox.id,
      messages: result.dueUidls.length,
      error: describe(error),
    });
    return 0;
  }
}

/**
 * A direct invocation `{"mailboxId": "..."}`: one poll, whatever `pollSeconds` says (the poll
 * chains pace the polls, not this invocation). Errors as `pollOnce`; an event that is not this
 * shape or names another tenant's mailbox is thrown.
 */
export function makeListNewMessagesHandler(
  deps: ListNewMessagesDeps,
): (event: unknown, context: Context) => Promise<ListNewMessagesResult> {
  return async (event, context) => {
    deps.logger.addContext(context);
    try {
      const parsed = listEventSchema.safeParse(event);
      if (!parsed.success) {
        throw new ProtocolError("queue", 'list-new-messages event must be {"mailboxId": "..."}', {
          cause: parsed.error,
        });
      }
      return (await pollOnce(deps, deps.mailbox(parsed.data.mailboxId), context)).result;
    } catch (error) {
      deps.logger.error("list-new-messages failed", { error: describe(error) });
      throw error;
    } finally {
      deps.telemetry.flush();
    }
  };
}

/** The chain's view of a poll's result. */
function chainOutcome(
  result: ListNewMessagesResult,
  loginDelaySeconds: number | undefined,
): ChainPollOutcome {
  switch (result.outcome) {
    case "listed":
      return { kind: "succeeded", ...(loginDelaySeconds === undefined ? {} : { loginDelaySeconds }) };
    case "busy":
      return { kind: "failed", failure: "busy" };
    case "credentials-broken":
      return { kind: "failed", failure: "credentials" };
    case "failed":
      return { kind: "failed", failure: "retryable", code: result.code };
  }
}

/**
 * The poll queue's event source (docs/lambda-handlers.md "Sub-minute polling"): each record is
 * one poll message `{mailboxId, chain, seq}`; records of one batch run at once (they name
 * different mailboxes, or are duplicates the chain item turns away). Each takes the mailbox's
 * chain, polls once and sends the next message (`runChainStep`). A record is returned for SQS to
 * redeliver only when the chain item could not be read or written; a body that is no poll message
 * or names a mailbox no longer configured is dropped (that chain ends).
 */
export function makePollChainHandler(
  deps: ListerChainDeps,
): (event: SQSEvent, context: Context) => Promise<SQSBatchResponse> {
  return async (event, context) => {
    deps.logger.addContext(context);
    try {
      const failures = await Promise.all(event.Records.map((record) => pollRecord(deps, record, context)));
      return { batchItemFailures: failures.filter((f) => f !== undefined) };
    } finally {
      deps.telemetry.flush();
    }
  };
}

async function pollRecord(
  deps: ListerChainDeps,
  record: SQSRecord,
  context: Context,
): Promise<SQSBatchItemFailure | undefined> {
  let mailbox: MailboxConfig;
  let message: ReturnType<typeof parsePollMessage>;
  try {
    message = parsePollMessage(record.body);
    mailbox = deps.mailbox(message.mailboxId);
  } catch (error) {
    if (!(error instanceof ProtocolError || error instanceof ConfigError)) throw error;
    deps.logger.warn("poll message dropped", { messageId: record.messageId, error: describe(error) });
    return undefined;
  }
  const ports = deps.chainPorts();
  // When this invocation is surely dead: its deadline plus a margin (as session leases do).
  const pollUntil = ports.clock.now() + context.getRemainingTimeInMillis() + LEASE_MARGIN_MS;
  try {
    const step = await runChainStep(ports, deps.config.tenant, mailbox, message, pollUntil, (hold) =>
      chainPoll(deps, mailbox, context, hold),
    );
    if (step.kind === "skipped") {
      deps.logger.debug("poll message is a duplicate or stale, or the mailbox's poll is running", {
        mailboxId: mailbox.id,
        chain: message.chain,
        seq: message.seq,
      });
    }
    return undefined;
  } catch (error) {
    // The chain item could not be read or written, or the next message not sent: SQS delivers
    // this one again after its visibility timeout (a no-op if the chain moved on), and the
    // keeper restarts the chain a minute after its next poll was due.
    deps.logger.error("poll chain step failed", { mailboxId: mailbox.id, error: describe(error) });
    return { itemIdentifier: record.messageId };
  }
}

/** One poll of a chain step, its session held by the chain item; errors logged and rethrown. */
async function chainPoll(
  deps: ListerChainDeps,
  mailbox: MailboxConfig,
  context: Context,
  hold: ChainHold,
): Promise<ChainPollOutcome> {
  try {
    const leases = chainHeldLeases(deps.sessionSlots(), hold);
    const { result, loginDelaySeconds } = await pollOnce(deps, mailbox, context, leases);
    return chainOutcome(result, loginDelaySeconds);
  } catch (error) {
    deps.logger.error("poll failed; the chain polls again after pollSeconds", {
      mailboxId: mailbox.id,
      error: describe(error),
    });
    throw error;
  }
}

/**
 * The keeper tick, once a minute from the tenant's one schedule (`KEEPER_EVENT`): restarts every
 * chain that has none or whose message was lost, logs one line per open problem naming the
 * mailbox and cause, and emits `TenantProblems` once (0 when healthy). When the problem queues
 * cannot be read, nothing is emitted and the invocation fails: a missing datapoint is the alarm.
 */
export function makeKeeperHandler(
  deps: ListerChainDeps,
): (event: unknown, context: Context) => Promise<KeeperTickResult> {
  return async (_event, context) => {
    deps.logger.addContext(context);
    try {
      const tickAt = deps.chainPorts().clock.now();
      let result: Awaited<ReturnType<typeof keeperTick>>;
      try {
        result = await keeperTick(deps.chainPorts(), deps.config.tenant, deps.config.mailboxes);
      } catch (error) {
        // No datapoint this minute (the alarm); the mailboxes this tick polls are polled all the same.
        await pollDueAnyway(deps, tickAt, context);
        throw error;
      }
      for (const mailboxId of result.started) deps.logger.info("poll chain started", { mailboxId });
      for (const { mailboxId, error } of result.startFailed) {
        deps.logger.error("poll chain could not be started; the next tick retries", {
          mailboxId,
          error: describe(error),
        });
      }
      for (const problem of result.problems) {
        deps.logger.warn("tenant problem", tenantProblemLog(deps.config.tenant, problem));
      }
      deps.telemetry.tenantProblems(result.problems.length);
      // Published before the due polls run: a long poll (a LOGIN-DELAY server copying in its
      // session) must not hold back or lose the minute's datapoint, whose absence is the alarm.
      deps.telemetry.flush();
      const polled = await runDuePolls(deps, result.due, tickAt, context);
      return {
        outcome: "kept",
        started: result.started.length,
        problems: result.problems.length,
        polled,
      };
    } catch (error) {
      deps.logger.error("keeper tick failed", { error: describe(error) });
      throw error;
    } finally {
      deps.telemetry.flush();
    }
  };
}

/** The due polls of a tick whose problem count failed; a failure to read them is logged. */
async function pollDueAnyway(deps: ListerChainDeps, tickAt: number, context: Context): Promise<void> {
  try {
    const due = await duePollsOnly(deps.chainPorts(), deps.config.tenant, deps.config.mailboxes);
    await runDuePolls(deps, due, tickAt, context);
  } catch (error) {
    deps.logger.error("the keeper's due polls could not be read; the next tick polls", {
      error: describe(error),
    });
  }
}

/**
 * The polls of mailboxes polled every minute or slower that are due at this tick
 * (docs/pipeline.md "Poll chains on AWS"), `KEEPER_POLL_CONCURRENCY` at a time, none started once
 * the invocation's timeout margin is reached. Returns how many polled.
 */
async function runDuePolls(
  deps: ListerChainDeps,
  due: KeeperTickDue,
  tickAt: number,
  context: Context,
): Promise<number> {
  if (due.length === 0) return 0;
  const ports = deps.chainPorts();
  const results = await runKeeperPolls(
    ports,
    deps.config.tenant,
    due,
    {
      tickAt,
      pollUntil: ports.clock.now() + context.getRemainingTimeInMillis() + LEASE_MARGIN_MS,
      concurrency: KEEPER_POLL_CONCURRENCY,
      mayStart: () => context.getRemainingTimeInMillis() >= TIMEOUT_MARGIN_MS,
    },
    (mailbox, hold) => chainPoll(deps, mailbox, context, hold),
  );
  for (const { mailboxId, result } of results) {
    if (result.kind === "failed") {
      deps.logger.error("poll chain step failed; a later tick polls again", {
        mailboxId,
        error: describe(result.error),
      });
    }
  }
  return results.filter((r) => r.result.kind === "polled").length;
}

/**
 * The list-new-messages function's one entry point: an SQS event from the poll queue, the
 * keeper event from the tenant's schedule, or a direct `{"mailboxId"}` poll.
 */
export function makeListerHandler(
  deps: ListerChainDeps,
): (
  event: unknown,
  context: Context,
) => Promise<SQSBatchResponse | KeeperTickResult | ListNewMessagesResult> {
  const chain = makePollChainHandler(deps);
  const keeper = makeKeeperHandler(deps);
  const direct = makeListNewMessagesHandler(deps);
  return (event, context) => {
    if (isSqsEvent(event)) return chain(event, context);
    if (keeperEventSchema.safeParse(event).success) return keeper(event, context);
    return direct(event, context);
  };
}

function isSqsEvent(event: unknown): event is SQSEvent {
  return (
    typeof event === "object" &&
    event !== null &&
    "Records" in event &&
    Array.isArray(event.Records) &&
    event.Records.every(
      (r: unknown) =>
        typeof r === "object" && r !== null && "eventSource" in r && r.eventSource === "aws:sqs",
    )
  );
}
