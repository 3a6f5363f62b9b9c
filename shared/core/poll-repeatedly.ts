import type { MailboxConfig } from "../config/tenant-config";
import { DEFAULT_LIST_POLICY, type ListPolicy, type ListResult } from "./list-new-messages";
import { type MailboxPollResult, type PollDeps, pollInOneSession } from "./poll-in-one-session";

/**
 * Polls every `mailbox.pollSeconds` until `untilMs` (epoch ms, e.g. the invocation's deadline
 * minus a margin): EventBridge fires at most once a minute, so a mailbox with `pollSeconds` 10
 * is polled six times per invocation. Waits with the injected clock, so tests do not sleep.
 * `onPoll` sees each result as it comes (e.g. to start a delete pass when deletes are due), and
 * the whole poll (what it copied in its own session on a LOGIN-DELAY server). Each poll is
 * `pollInOneSession`; polls start no closer together than the server's login delay.
 */
export async function pollRepeatedly(
  deps: PollDeps,
  tenant: string,
  mailbox: MailboxConfig,
  options: {
    untilMs: number;
    onPoll?: (result: ListResult, poll: MailboxPollResult) => Promise<void> | void;
    shouldStop?: () => boolean;
  },
  policy: ListPolicy = DEFAULT_LIST_POLICY,
): Promise<ListResult[]> {
  const results: ListResult[] = [];
  let next = deps.clock.now();
  for (;;) {
    const poll = await pollInOneSession(deps, tenant, mailbox, {
      list: policy,
      ...(options.shouldStop === undefined ? {} : { shouldStop: options.shouldStop }),
    });
    const result: ListResult = poll.kind === "busy" ? poll : poll.listed;
    results.push(result);
    await options.onPoll?.(result, poll);
    const intervalMs = Math.max(
      mailbox.pollSeconds * 1000,
      poll.kind === "busy" ? 0 : (poll.loginDelayMs ?? 0),
    );
    // A poll slower than the interval starts the next one at once rather than piling up.
    next = Math.max(next + intervalMs, deps.clock.now());
    if (next >= options.untilMs) return results;
    const waitMs = next - deps.clock.now();
    if (waitMs > 0) await deps.clock.sleep(waitMs);
  }
}
