import { SQSClient } from "@aws-sdk/client-sqs";
import { ENV_NAMES, requireEnv } from "../../config/env";
import { SqsWorkQueue } from "../sqs/sqs-work-queue";
import type { LambdaBase } from "./lambda-base";

/** The SQS work queue (`WORK_QUEUE_URL`) and its client: the lister fills it, the copier re-sends postponed jobs. */
export function createWorkQueueDeps(base: LambdaBase): {
  readonly sqs: SQSClient;
  readonly queue: SqsWorkQueue;
} {
  const sqs = new SQSClient(base.sdkClientSettings("SQS"));
  return {
    sqs,
    // The function's clock dates a FIFO job's `notBefore`, the clock the copier compares it with
    // (docs/pipeline.md, "One mailbox, one copier on AWS").
    queue: new SqsWorkQueue({
      client: sqs,
      queueUrl: requireEnv(ENV_NAMES.workQueueUrl, base.env),
      now: () => base.clock.now(),
    }),
  };
}
