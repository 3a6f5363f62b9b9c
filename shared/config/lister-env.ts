import { ENV_NAMES } from "./env";

/**
 * The lister's own variables, a view of `ENV_NAMES` (where they are defined and read): the
 * tenant's poll queue and the two queues whose depth the keeper counts as problems
 * (docs/lambda-handlers.md "Sub-minute polling"). Kept for the callers that name them so.
 */
export const LISTER_ENV_NAMES = {
  pollQueueUrl: ENV_NAMES.pollQueueUrl,
  deadLetterQueueUrl: ENV_NAMES.deadLetterQueueUrl,
  failedDeletesQueueUrl: ENV_NAMES.failedDeletesQueueUrl,
} as const;
