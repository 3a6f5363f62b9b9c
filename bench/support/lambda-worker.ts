/**
 * One Lambda container that stays up, for the queue benches: bundled by esbuild and run by plain
 * `node` (as `lambda-child.ts`), it imports the real function modules and invokes a handler for
 * each IPC message, as the Lambda runtime does for each event of a warm container.
 *
 *   parent -> { id, kind: "copy", event } | { id, kind: "list", mailboxId }
 *   child  -> { id, response, durationMs } | { id, error }
 */
import type { SQSEvent } from "aws-lambda";
import { benchContext } from "./lambda-context";

type Request =
  | { readonly id: number; readonly kind: "copy"; readonly event: SQSEvent }
  | { readonly id: number; readonly kind: "list"; readonly mailboxId: string };

/**
 * What-if only (never the product): `BENCH_WHATIF_CONTAINER_QUOTA_SHARE` paces Gmail per container,
 * with that share of the user's quota (1: as before issue 13; 1/n: per-mailbox shares).
 */
async function whatIfCopyHandler() {
  const share = Number(process.env.BENCH_WHATIF_CONTAINER_QUOTA_SHARE);
  const [
    { makeCopyMessageHandler },
    { createCopyMessageDeps },
    { GmailRateLimiters },
    { parseTenantConfig },
  ] = await Promise.all([
    import("../../shared/adapters/lambda/copy-message-handler"),
    import("../../shared/adapters/lambda/copy-message-deps"),
    import("../../shared/adapters/gmail/gmail-user-rate-limiter"),
    import("../../shared/config/parse-tenant-config"),
  ]);
  const { google } = parseTenantConfig(JSON.parse(process.env.TENANT_CONFIG ?? "{}"));
  const rateLimiters = new GmailRateLimiters(
    { unitsPerMinute: google.quotaUnitsPerMinute * share, maxConcurrent: google.maxConcurrentImports },
    { now: Date.now, sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) },
  );
  return { handler: makeCopyMessageHandler(createCopyMessageDeps(process.env, { gmail: { rateLimiters } })) };
}

const copy =
  process.env.BENCH_WHATIF_CONTAINER_QUOTA_SHARE === undefined
    ? import("../../functions/copy-message/handler")
    : whatIfCopyHandler();
const list = import("../../functions/list-new-messages/handler");

process.on("message", (request: Request) => {
  void (async () => {
    const start = performance.now();
    try {
      const response =
        request.kind === "copy"
          ? await (await copy).handler(request.event, benchContext("copy-message", 512, 300_000))
          : await (await list).handler(
              { mailboxId: request.mailboxId },
              benchContext("list-new-messages", 256, 300_000),
            );
      process.send?.({ id: request.id, response, durationMs: performance.now() - start });
    } catch (error) {
      process.send?.({ id: request.id, error: error instanceof Error ? error.message : String(error) });
    }
  })();
});
process.send?.({ ready: true });
