import type { MailboxConfig } from "../config/tenant-config";
import {
  DEFAULT_LIST_POLICY,
  type ListDeps,
  type ListPolicy,
  type ListResult,
  listNewMessages,
} from "./list-new-messages";

/**
 * Polls every `mailbox.pollSeconds` until `untilMs` (epoch ms, e.g. the invocation's deadline
 * minus a margin): EventBridge fires at most once a minute, so a mailbox with `pollSeconds` 10
 * is polled six times per invocation. Waits with the injected clock, so tests do not sleep.
 * `onPoll` sees each result as it comes (e.g. to start a delete pass when deletes are due).
 */
export async function pollRepeatedly(
  deps: ListDeps,
  tenant: string,
  mailbox: MailboxConfig,
  options: { untilMs: number; onPoll?: (result: ListResult) => Promise<void> | void },
  policy: ListPolicy = DEFAULT_LIST_POLICY,
): Promise<ListResult[]> {
  const results: ListResult[] = [];
  const intervalMs = mailbox.pollSeconds * 1000;
  let next = deps.clock.now();
  for (;;) {
    const result = await listNewMessages(deps, tenant, mailbox, policy);
    results.push(result);
    await options.onPoll?.(result);
    // A poll slower than the interval starts the next one at once rather than piling up.
    next = Math.max(next + intervalMs, deps.clock.now());
    if (next >= options.untilMs) return results;
    const waitMs = next - deps.clock.now();
    if (waitMs > 0) await deps.clock.sleep(waitMs);
  }
}
