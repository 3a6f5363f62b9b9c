import { ConfigError } from "../core/errors";

/**
 * The lister's own variables (the stack sets them on list-new-messages only): the tenant's poll
 * queue and the two queues whose depth the keeper counts as problems (docs/lambda-handlers.md
 * "Sub-minute polling"). Next to `ENV_NAMES` in spirit; kept apart so the stack and the lister
 * share them without loading the lister's SDK clients.
 */
export const LISTER_ENV_NAMES = {
  pollQueueUrl: "POLL_QUEUE_URL",
  deadLetterQueueUrl: "DEAD_LETTER_QUEUE_URL",
  failedDeletesQueueUrl: "FAILED_DELETES_QUEUE_URL",
} as const;

export type ListerEnvName = (typeof LISTER_ENV_NAMES)[keyof typeof LISTER_ENV_NAMES];

/** Reads a required lister variable, failing with its name so a misdeploy is obvious. */
export function requireListerEnv(name: ListerEnvName, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name];
  if (value === undefined || value === "") {
    throw new ConfigError(name, `environment variable ${name} is not set`, {
      hint: "The CDK stack sets it on the list-new-messages function; redeploy the tenant stack.",
    });
  }
  return value;
}
