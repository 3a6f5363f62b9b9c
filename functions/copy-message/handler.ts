import { makeCopyMessageHandler } from "../../shared/adapters/lambda/copy-message-handler";
import { createLambdaDeps } from "../../shared/adapters/lambda/lambda-deps";

/** SQS work queue, partial batch responses. Dependencies are built once per container. */
export const handler = makeCopyMessageHandler(createLambdaDeps(process.env));
