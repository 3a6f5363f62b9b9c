import { createListNewMessagesDeps } from "../../shared/adapters/lambda/list-new-messages-deps";
import { makeListNewMessagesHandler } from "../../shared/adapters/lambda/list-new-messages-handler";

/** EventBridge, once a minute per mailbox: `{"mailboxId": "..."}`. Dependencies are built once per container. */
export const handler = makeListNewMessagesHandler(createListNewMessagesDeps(process.env));
