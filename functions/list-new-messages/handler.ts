import { createLambdaDeps } from "../../shared/adapters/lambda/lambda-deps";
import { makeListNewMessagesHandler } from "../../shared/adapters/lambda/list-new-messages-handler";

/** EventBridge, once a minute per mailbox: `{"mailboxId": "..."}`. Dependencies are built once per container. */
export const handler = makeListNewMessagesHandler(createLambdaDeps(process.env));
