import { makeDeleteCopiedHandler } from "../../shared/adapters/lambda/delete-copied-handler";
import { createLambdaDeps } from "../../shared/adapters/lambda/lambda-deps";

/** Invoked asynchronously by the lister: `{"mailboxId": "...", "uidls": [...]}`. Built once per container. */
export const handler = makeDeleteCopiedHandler(createLambdaDeps(process.env));
