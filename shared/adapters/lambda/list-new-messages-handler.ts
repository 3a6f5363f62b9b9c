import type { Context } from "aws-lambda";
import * as z from "zod";
import { CredentialsError, Pop2GmailError, ProtocolError } from "../../core/errors";
import type { ListResult } from "../../core/list-new-messages";
import { type MailboxPollResult, pollInOneSession } from "../../core/poll-in-one-session";
import { pollRepeatedly } from "../../core/poll-repeatedly";
import { describe } from "./describe-error";
import { invocationScope } from "./lambda-base";
import type { ListNewMessagesDeps } from "./list-new-messages-deps";

/** The EventBridge rule's constant input: `{"mailboxId": "info@acme.it"}`. */
const listEventSchema = z.object({ mailboxId: z.string().min(1) });

/** What one invocation did, returned for tests and the Lambda console (EventBridge ignores it). */
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

/** Timing of the repeated polls inside one invocation (pollSeconds < 60). */
export interface ListHandlerOptions {
  /** Polls start only within this window after the invocation began (EventBridge fires every 60 s). */
  readonly windowMs: number;
  /** Kept free before the function's timeout for the last poll to finish. */
  readonly timeoutMarginMs: number;
}

export const DEFAULT_LIST_HANDLER_OPTIONS: ListHandlerOptions = { windowMs: 55_000, timeoutMarginMs: 20_000 };

/**
 * The list-new-messages function (EventBridge, once a minute per mailbox). With `pollSeconds`
 * below 60 it polls repeatedly until ~55 s have passed, so the next invocation takes over; else
 * it polls once. When a poll reports deletes due, it starts delete-copied asynchronously with
 * those UIDLs (each UIDL once per invocation).
 *
 * Errors: a busy mailbox is a normal outcome. A `CredentialsError` was already reported by the
 * core (one `credentials-broken` event -> `CredentialsBroken` metric and alarm) and is returned,
 * not thrown: the schedule tries again next minute, and repeating a wrong password within the
 * same minute only risks the provider locking the account. A retryable error (timeout, dropped
 * connection, throttling) is logged and returned for the same reason: the next tick is the
 * retry, and the per-mailbox `PollSucceeded` alarm notices when polls keep failing. Anything
 * else (TLS, configuration, permissions, a bug) is thrown, so Lambda's `Errors` metric shows it;
 * the rule has `retryAttempts: 0`, so a throw never doubles a poll.
 */
export function makeListNewMessagesHandler(
  deps: ListNewMessagesDeps,
  options: ListHandlerOptions = DEFAULT_LIST_HANDLER_OPTIONS,
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
      const mailbox = deps.mailbox(parsed.data.mailboxId);
      const pipeline = { ...deps.pipeline, ...invocationScope(context) };
      const tenant = deps.config.tenant;
      const sentForDelete = new Set<string>();
      let deletePasses = 0;
      let copiedInSession = 0;
      const onPoll = async (result: ListResult, poll: MailboxPollResult) => {
        // docs/pipeline.md "Login delay and UTF8": such a poll copied and deleted in its session.
        if (poll.kind === "listed" && poll.inSession !== undefined) {
          copiedInSession += poll.inSession.outcomes.filter((o) => o.kind === "copied").length;
          return;
        }
        if (result.kind !== "listed" || result.deletesDue === 0) return;
        const uidls = result.dueUidls.filter((uidl) => !sentForDelete.has(uidl));
        if (uidls.length === 0) return;
        try {
          await deps.deleteInvoker().invoke({ mailboxId: mailbox.id, uidls });
          for (const uidl of uidls) sentForDelete.add(uidl);
          deletePasses++;
        } catch (error) {
          // The next poll reports them due again; a lost delete pass only delays the delete.
          deps.logger.warn("could not start delete-copied", {
            mailboxId: mailbox.id,
            messages: uidls.length,
            error: describe(error),
          });
        }
      };
      let results: ListResult[];
      const copyPorts = deps.copyPorts;
      const polling = copyPorts === undefined ? pipeline : { ...pipeline, copyPorts: () => copyPorts() };
      // A poll that copies (LOGIN-DELAY) starts no copy it cannot finish before the margin.
      const shouldStop = () => context.getRemainingTimeInMillis() < options.timeoutMarginMs;
      try {
        if (mailbox.pollSeconds < 60) {
          const start = pipeline.clock.now();
          const budget = Math.min(
            options.windowMs,
            context.getRemainingTimeInMillis() - options.timeoutMarginMs,
          );
          results = await pollRepeatedly(polling, tenant, mailbox, {
            untilMs: start + budget,
            onPoll,
            shouldStop,
          });
        } else {
          const poll = await pollInOneSession(polling, tenant, mailbox, { shouldStop });
          const result: ListResult = poll.kind === "busy" ? poll : poll.listed;
          await onPoll(result, poll);
          results = [result];
        }
      } catch (error) {
        if (error instanceof CredentialsError)
          return { outcome: "credentials-broken", mailboxId: mailbox.id };
        if (error instanceof Pop2GmailError && error.retryable) {
          deps.logger.warn("poll failed; the next scheduled poll retries", {
            mailboxId: mailbox.id,
            error: describe(error),
          });
          return { outcome: "failed", mailboxId: mailbox.id, code: error.code };
        }
        throw error;
      }
      const listed = results.filter((r) => r.kind === "listed");
      if (listed.length === 0) return { outcome: "busy", mailboxId: mailbox.id, polls: results.length };
      return {
        outcome: "listed",
        mailboxId: mailbox.id,
        polls: results.length,
        newMessages: listed.reduce((sum, r) => sum + r.newMessages, 0),
        deletePasses,
        ...(copiedInSession > 0 ? { copiedInSession } : {}),
      };
    } catch (error) {
      deps.logger.error("list-new-messages failed", { error: describe(error) });
      throw error;
    } finally {
      deps.telemetry.flush();
    }
  };
}
