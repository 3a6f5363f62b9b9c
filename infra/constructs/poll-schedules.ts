import { Duration } from "aws-cdk-lib";
import { Rule, RuleTargetInput, Schedule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import type { IQueue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { KEEPER_EVENT } from "../../shared/core/poll-chain";
import { POLL_BATCH_SIZE } from "../function-settings";

/**
 * What makes the lister poll (docs/lambda-handlers.md "Sub-minute polling"): one EventBridge rule
 * per tenant, not per mailbox, that runs the keeper once a minute (it polls the mailboxes due at a
 * minute or slower itself, starts and restarts the sub-minute chains and counts the tenant's
 * problems), and, only when some mailbox polls more often than once a minute, the tenant's poll
 * queue as an event source (each delayed poll message is one poll of one mailbox, which sends the
 * next). Adding a mailbox adds no resource (the first sub-minute mailbox adds the queue and its
 * mapping).
 */
export class PollSchedules extends Construct {
  readonly keeperRule: Rule;

  constructor(scope: Construct, id: string, props: { lister: IFunction; pollQueue: IQueue | undefined }) {
    super(scope, id);
    this.keeperRule = new Rule(this, "Keeper", {
      description: "pop2gmail: the keeper tick (poll chains, TenantProblems)",
      schedule: Schedule.rate(Duration.minutes(1)),
      targets: [
        new LambdaFunction(props.lister, {
          event: RuleTargetInput.fromObject(KEEPER_EVENT),
          // The next minute ticks again: a retried, late tick would only overlap it.
          retryAttempts: 0,
          maxEventAge: Duration.minutes(1),
        }),
      ],
    });
    if (props.pollQueue !== undefined) {
      props.lister.addEventSource(
        new SqsEventSource(props.pollQueue, { batchSize: POLL_BATCH_SIZE, reportBatchItemFailures: true }),
      );
    }
  }
}
