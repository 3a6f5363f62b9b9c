import { createLambdaDeps, type LambdaDeps } from "../../../shared/adapters/lambda/lambda-deps";
import type { HandlerFixture } from "../handler-harness";

/**
 * The deps `createLambdaDeps` builds from `env` (a Lambda-like environment pointing at the
 * stand-ins), with the fixture's in-memory ports in place of all but the `real` ones: the copier
 * tests that need one real adapter (the SQS work queue, the S3 archive) and nothing else.
 */
export function depsWithRealPorts(
  f: HandlerFixture,
  env: NodeJS.ProcessEnv,
  real: readonly ("queue" | "archive")[],
): LambdaDeps {
  return createLambdaDeps(env, {
    aws: { credentials: { accessKeyId: "test", secretAccessKey: "test" } },
    clock: f.clock,
    logger: f.powertools.logger,
    metrics: f.powertools.metrics,
    deleteInvoker: { invoke: async () => {} },
    decorate: (built) => ({
      ...built,
      ledger: f.ledger,
      sink: f.sink,
      pop3: f.pop3,
      leases: f.leases,
      ...(real.includes("queue") ? {} : { queue: f.queue }),
      ...(real.includes("archive") ? {} : { archive: f.archive }),
    }),
  });
}
