import { Duration } from "aws-cdk-lib";
import { Rule, RuleTargetInput, Schedule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { Construct } from "constructs";
import type { MailboxConfig } from "../../shared/config/tenant-config";
import { mailboxConstructId } from "../mailbox-construct-id";

/**
 * One EventBridge rule per mailbox, invoking the lister with `{"mailboxId": "<id>"}` every
 * `pollSeconds` rounded down to whole minutes, at least every minute (EventBridge's finest rate).
 * A shorter `pollSeconds` is handled by the lister repeating inside the invocation.
 */
export class PollSchedules extends Construct {
  readonly rules: Rule[];

  constructor(
    scope: Construct,
    id: string,
    props: { mailboxes: readonly MailboxConfig[]; lister: IFunction },
  ) {
    super(scope, id);
    this.rules = props.mailboxes.map(
      (mailbox) =>
        new Rule(this, mailboxConstructId("Poll", mailbox.id), {
          description: `pop2gmail: poll ${mailbox.id}`,
          schedule: Schedule.rate(Duration.minutes(Math.max(1, Math.floor(mailbox.pollSeconds / 60)))),
          targets: [
            new LambdaFunction(props.lister, {
              event: RuleTargetInput.fromObject({ mailboxId: mailbox.id }),
              // The next minute polls again: a retried, late poll would only overlap it.
              retryAttempts: 0,
              maxEventAge: Duration.minutes(1),
            }),
          ],
        }),
    );
  }
}
