import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { MemoryWorkQueue } from "../../shared/adapters/local/memory-work-queue";
import { Pop2GmailError } from "../../shared/core/errors";
import { gmailCopyOf, withPrefix } from "../../shared/core/gmail-copy";
import { EXIT, Progress, UsageError } from "../output";
import { configAndFlags, openLocalRuntime } from "./local-context";

/** One archived message found for replay. */
interface ReplayItem {
  readonly key: string;
  readonly mailboxId: string;
  readonly uidl: string;
  readonly lastModified: number;
}

/**
 * `pop2gmail replay --config FILE --since DATE [--include-without-message-id] [--json]`:
 * re-imports archived messages newer than DATE into Gmail from the archived bytes. Gmail merges a
 * re-import with the message of the same Message-ID; a message without one that the ledger shows
 * in Gmail already is skipped (a second import would be a second copy, DESIGN.md invariant 3)
 * unless `--include-without-message-id` says the operator knows it is gone from Gmail.
 */
export async function replayCommand(args: readonly string[]): Promise<number> {
  const { config, values } = await configAndFlags("replay", args, {
    since: { type: "string" },
    "include-without-message-id": { type: "boolean" },
  });
  if (typeof values.since !== "string") throw new UsageError("replay needs --since DATE (e.g. 2026-11-01)");
  const since = Date.parse(values.since);
  if (Number.isNaN(since))
    throw new UsageError(
      `--since ${values.since} is not a date`,
      "Give an ISO date such as 2026-11-01 or 2026-11-01T08:00:00Z.",
    );
  const runtime = await openLocalRuntime(config);
  try {
    const items: ReplayItem[] = [];
    for await (const object of runtime.archive.list(`${config.tenant}/`)) {
      if (object.lastModified < since) continue;
      const parsed = parseKey(object.key);
      if (parsed !== undefined) items.push({ ...parsed, key: object.key, lastModified: object.lastModified });
    }
    items.sort((a, b) => a.lastModified - b.lastModified);
    const sink = runtime.pipeline(new MemoryWorkQueue(runtime.clock)).sink;
    const progress = new Progress("replaying", items.length);
    const result = {
      found: items.length,
      imported: 0,
      skipped: [] as { uidl: string; why: string }[],
      failed: [] as { uidl: string; code: string; message: string }[],
    };
    for (const item of items) {
      const mailbox = config.mailboxes.find((m) => m.id === item.mailboxId);
      const entry = await runtime.ledger.get({
        tenant: config.tenant,
        mailboxId: item.mailboxId,
        uidl: item.uidl,
      });
      if (mailbox === undefined) {
        result.skipped.push({ uidl: item.uidl, why: `mailbox ${item.mailboxId} is not in the config` });
      } else if (
        entry?.messageIdHeader === undefined &&
        entry?.gmailId !== undefined &&
        !values["include-without-message-id"]
      ) {
        result.skipped.push({
          uidl: item.uidl,
          why: "no Message-ID and already in Gmail: a re-import would make a second copy",
        });
      } else {
        try {
          const path = runtime.archive.pathOf(item.key);
          const size = (await stat(path)).size;
          // The same Gmail copy the pipeline sends (trace line, and a Message-ID for a message
          // without one), so Gmail merges the replay with the copy it holds (docs/pipeline.md).
          const copy = gmailCopyOf({
            tenant: config.tenant,
            mailboxId: item.mailboxId,
            uidl: item.uidl,
            sha256: entry?.sha256 ?? (await sha256OfFile(path)),
            ...(entry?.messageIdHeader === undefined ? {} : { messageIdHeader: entry.messageIdHeader }),
          });
          await sink.import({
            mailbox,
            uidl: item.uidl,
            size: copy.prefix.byteLength + size,
            messageIdHeader: copy.messageIdHeader,
            traceId: copy.traceId,
            open: async () => withPrefix(copy.prefix, await runtime.archive.open(item.key)),
          });
          result.imported++;
        } catch (error) {
          if (!(error instanceof Pop2GmailError)) throw error;
          result.failed.push({ uidl: item.uidl, code: error.code, message: error.message });
          // Broken credentials fail every message alike: say it once.
          if (!error.retryable && error.code === "CREDENTIALS_REJECTED") {
            progress.finish();
            throw error;
          }
        }
      }
      progress.tick(item.uidl.slice(0, 12));
    }
    progress.finish();
    if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else {
      process.stdout.write(
        `replayed ${result.imported} of ${result.found} archived messages since ${new Date(since).toISOString()}\n`,
      );
      for (const s of result.skipped) process.stdout.write(`  skipped ${s.uidl}: ${s.why}\n`);
      for (const f of result.failed) process.stdout.write(`  FAILED ${f.uidl}: ${f.message} [${f.code}]\n`);
    }
    return result.failed.length === 0 ? EXIT.ok : EXIT.failure;
  } finally {
    await runtime.close();
  }
}

/** SHA-256 (hex) of a file, streamed. */
async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** `<tenant>/<mailbox id, encoded>/<uidl, encoded>.eml` -> mailbox id and UIDL. */
function parseKey(key: string): { mailboxId: string; uidl: string } | undefined {
  const [, mailbox, file] = key.split("/");
  if (mailbox === undefined || file === undefined || !file.endsWith(".eml")) return undefined;
  try {
    return { mailboxId: decodeURIComponent(mailbox), uidl: decodeURIComponent(file.slice(0, -4)) };
  } catch {
    return undefined;
  }
}
