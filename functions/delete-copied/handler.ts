import { createDeleteCopiedDeps } from "../../shared/adapters/lambda/delete-copied-deps";
import { makeDeleteCopiedHandler } from "../../shared/adapters/lambda/delete-copied-handler";

/** Invoked asynchronously by the lister: `{"mailboxId": "...", "uidls": [...]}`. Built once per container. */
export const handler = makeDeleteCopiedHandler(createDeleteCopiedDeps(process.env));
