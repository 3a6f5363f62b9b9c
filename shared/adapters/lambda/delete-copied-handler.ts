import type { Context } from "aws-lambda";
import * as z from "zod";
import { deleteCopiedInOwnSession } from "../../core/delete-copied";
import { CredentialsError, ProtocolError } from "../../core/errors";
import { isLedgerId } from "../../core/message-identity";
import type { DeleteCopiedDeps } from "./delete-copied-deps";
import { describe } from "./describe-error";
import { invocationScope } from "./lambda-base";

// Ledger ids (docs/pipeline.md "Message identity"): a UIDL, maybe with a generation or content part.
const deleteEventSchema = z.object({
  mailboxId: z.string().min(1),
  uidls: z.array(z.string().refine(isLedgerId)).optional(),
});

/** What one delete pass did. */
export type DeleteCopiedResult =
  | {
      readonly outcome: "deleted";
      readonly mailboxId: string;
      readonly deleted: number;
      readonly committed: boolean;
    }
  | { readonly outcome: "busy"; readonly mailboxId: string }
  | { readonly outcome: "credentials-broken"; readonly mailboxId: string };

/**
 * The delete-copied function, invoked asynchronously by the lister with `{mailboxId, uidls}`
 * (without `uidls`: every imported/retained message of the mailbox is considered). One POP3
 * session; DELE only what the ledger shows archived and imported and due; `deleted` is written
 * only after QUIT's `+OK` (RFC 1939 §6). Busy and broken credentials are returned, not thrown:
 * the next poll asks again. Other errors are thrown, so Lambda's async retry runs once more.
 */
export function makeDeleteCopiedHandler(
  deps: DeleteCopiedDeps,
): (event: unknown, context: Context) => Promise<DeleteCopiedResult> {
  return async (event, context) => {
    deps.logger.addContext(context);
    try {
      const parsed = deleteEventSchema.safeParse(event);
      if (!parsed.success) {
        throw new ProtocolError(
          "queue",
          'delete-copied event must be {"mailboxId": "...", "uidls"?: [...]}',
          {
            cause: parsed.error,
          },
        );
      }
      const mailbox = deps.mailbox(parsed.data.mailboxId);
      const pipeline = { ...deps.pipeline, ...invocationScope(context) };
      try {
        const outcome = await deleteCopiedInOwnSession(
          pipeline,
          deps.config.tenant,
          mailbox,
          parsed.data.uidls === undefined ? {} : { uidls: parsed.data.uidls },
        );
        if (outcome.kind === "busy") return { outcome: "busy", mailboxId: mailbox.id };
        deps.logger.info("delete pass done", {
          mailboxId: mailbox.id,
          deleted: outcome.deleted,
          committed: outcome.committed,
        });
        return {
          outcome: "deleted",
          mailboxId: mailbox.id,
          deleted: outcome.deleted,
          committed: outcome.committed,
        };
      } catch (error) {
        if (error instanceof CredentialsError)
          return { outcome: "credentials-broken", mailboxId: mailbox.id };
        throw error;
      }
    } catch (error) {
      deps.logger.error("delete-copied failed", { error: describe(error) });
      throw error;
    } finally {
      deps.telemetry.flush();
    }
  };
}
