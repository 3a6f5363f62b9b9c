import { createCopyMessageDeps } from "../../shared/adapters/lambda/copy-message-deps";
import { makeCopyMessageHandler } from "../../shared/adapters/lambda/copy-message-handler";

/** SQS work queue, partial batch responses. Dependencies are built once per container. */
export const handler = makeCopyMessageHandler(createCopyMessageDeps(process.env));
