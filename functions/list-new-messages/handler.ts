import { createListNewMessagesDeps } from "../../shared/adapters/lambda/list-new-messages-deps";
import { makeListerHandler } from "../../shared/adapters/lambda/list-new-messages-handler";

/**
 * Poll messages from the tenant's poll queue (SQS event source), the keeper tick from the
 * tenant's schedule (once a minute), or a direct `{"mailboxId": "..."}` poll
 * (docs/lambda-handlers.md "Sub-minute polling"). Dependencies are built once per container.
 */
export const handler = makeListerHandler(createListNewMessagesDeps(process.env));
