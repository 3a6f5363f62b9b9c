import * as z from "zod";
import { ProtocolError } from "../../core/errors";
import { isLedgerId } from "../../core/message-identity";
import type { CopyJob } from "../../core/model";

const copyJobSchema = z.object({
  tenant: z.string().min(1),
  mailboxId: z.string().min(1),
  // A ledger id (docs/pipeline.md "Message identity"): a UIDL, maybe with a generation or content part.
  uidl: z
    .string()
    .refine(isLedgerId, "a ledger id is a UIDL (printable ASCII), maybe with a space-separated suffix"),
  listedSize: z.number().int().nonnegative(),
  listedAt: z.number().int().nonnegative(),
});

/**
 * Parses an SQS message body into a `CopyJob`. A body that is not JSON or not a job throws a
 * non-retryable `ProtocolError` naming the offending fields (never echoing the body), so the copy
 * handler can drop it instead of retrying it into the DLQ forever. Unknown fields are ignored,
 * so a newer lister can add fields without breaking an older copier.
 */
export function parseCopyJob(body: string): CopyJob {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (cause) {
    throw new ProtocolError("queue", "work queue message body is not JSON", { cause });
  }
  const result = copyJobSchema.safeParse(json);
  if (!result.success) {
    const problems = result.error.issues
      .map((issue) => `${issue.path.join(".") || "(body)"}: ${issue.message}`)
      .join("; ");
    throw new ProtocolError("queue", `work queue message body is not a copy job: ${problems}`, {
      cause: result.error,
    });
  }
  return result.data;
}

/**
 * The body `SqsWorkQueue` sends for a job: plain JSON of the job's fields, plus `notBefore`
 * (epoch ms) for a delayed job on a FIFO queue, which has no per-message delay.
 */
export function serializeCopyJob(job: CopyJob, notBefore?: number): string {
  const { tenant, mailboxId, uidl, listedSize, listedAt } = job;
  return JSON.stringify({
    tenant,
    mailboxId,
    uidl,
    listedSize,
    listedAt,
    ...(notBefore === undefined ? {} : { notBefore }),
  });
}

const notBeforeSchema = z.object({ notBefore: z.number().int().nonnegative().optional() });

/**
 * When a delivered job is due (epoch ms), if its sender delayed it on a queue without
 * per-message delays; undefined for a job due at once. A body that is no copy job is undefined
 * here too (`parseCopyJob` reports it).
 */
export function notBeforeOf(body: string): number | undefined {
  try {
    const result = notBeforeSchema.safeParse(JSON.parse(body));
    return result.success ? result.data.notBefore : undefined;
  } catch {
    return undefined;
  }
}
