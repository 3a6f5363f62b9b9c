import { type DynamoDBClient, QueryCommand } from "@aws-sdk/client-dynamodb";
import { GetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDbLedger } from "../../shared/adapters/dynamodb/dynamodb-ledger";
import { statePk } from "../../shared/adapters/dynamodb/ledger-item";
import { LEDGER_TABLE } from "../../shared/adapters/dynamodb/ledger-table";
import { LEDGER_STATES, type LedgerState, type MailboxKey } from "../../shared/core/model";
import { EXIT, table } from "../output";
import { awsContext, withAwsErrors } from "./aws-context";
import { type MailboxStatus, quarantineView } from "./status";

/**
 * One mailbox in `status --aws --json`: the fields of the local `MailboxStatus` the deployed
 * ledger can answer cheaply. Open problems and delays live in CloudWatch (docs/deploy.md section 6).
 */
export type AwsMailboxStatus = Pick<MailboxStatus, "mailboxId" | "counts" | "preExisting" | "quarantined">;

/** Approximate depth of an SQS queue (GetQueueAttributes; SQS itself says "approximate"). */
export interface QueueDepth {
  readonly url: string;
  readonly visible: number;
  readonly inFlight: number;
  readonly delayed: number;
}

/**
 * `pop2gmail status --aws --tenant T [--json]`: counts per ledger state per mailbox (a COUNT
 * Query of the `byState` index per state), queue and DLQ depth, and the quarantined messages.
 * Read-only.
 */
export async function awsStatusCommand(args: readonly string[]): Promise<number> {
  const context = await awsContext("status", args, ["tableName", "queueUrl", "deadLetterQueueUrl"]);
  try {
    const { config, resources } = context;
    const [mailboxes, queue, deadLetterQueue] = await withAwsErrors(() =>
      Promise.all([
        collectAwsStatus(context.dynamodb, resources.tableName, config.tenant, config.mailboxes),
        queueDepth(context.sqs, resources.queueUrl),
        queueDepth(context.sqs, resources.deadLetterQueueUrl),
      ]),
    );
    if (context.values.json) {
      const report = {
        tenant: config.tenant,
        stack: context.stackName,
        tableName: resources.tableName,
        mailboxes,
        queue,
        deadLetterQueue,
      };
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      return EXIT.ok;
    }
    for (const m of mailboxes) {
      process.stdout.write(`${m.mailboxId}\n`);
      process.stdout.write(
        `  ${LEDGER_STATES.map((s) => `${s} ${m.counts[s]}`).join(", ")}${m.preExisting > 0 ? ` (of those quarantined, ${m.preExisting} pre-existing)` : ""}\n`,
      );
      if (m.quarantined.length > 0) {
        process.stdout.write(
          `${table(
            ["uidl", "code", "since", "reason"],
            m.quarantined.map((q) => [q.uidl, q.code ?? "", q.at ?? "", q.reason ?? ""]),
          )}\n`,
        );
        process.stdout.write(
          `  what to do: fix the cause, then \`pop2gmail quarantine retry --aws --tenant ${config.tenant}\`\n`,
        );
      }
    }
    process.stdout.write(
      `work queue: ${queue.visible} waiting, ${queue.inFlight} in flight, ${queue.delayed} delayed\n`,
    );
    process.stdout.write(
      `dead-letter queue: ${deadLetterQueue.visible + deadLetterQueue.inFlight + deadLetterQueue.delayed} message(s)\n`,
    );
    if (deadLetterQueue.visible > 0) {
      process.stdout.write(
        `  what to do: read the copy-message log for the cause, then \`pop2gmail redrive --aws --tenant ${config.tenant}\`\n`,
      );
    }
    process.stdout.write(
      `open problems and delays: the alarm pop2gmail-${config.tenant}-problems (the list-new-messages log names each), \`pop2gmail fleet status\`, the fleet dashboard${config.dashboard === true ? ` or the dashboard pop2gmail-${config.tenant}` : ""}\n`,
    );
    return EXIT.ok;
  } finally {
    context.close();
  }
}

/** Counts and quarantined messages of every mailbox, from the tenant's ledger table. */
export async function collectAwsStatus(
  client: DynamoDBClient,
  tableName: string,
  tenant: string,
  mailboxes: readonly { readonly id: string }[],
): Promise<AwsMailboxStatus[]> {
  const ledger = new DynamoDbLedger({ client, tableName });
  return Promise.all(
    mailboxes.map(async (mailbox) => {
      const key = { tenant, mailboxId: mailbox.id };
      const perState = await Promise.all(
        LEDGER_STATES.map(async (state) => [state, await countState(client, tableName, key, state)] as const),
      );
      const counts = Object.fromEntries(perState) as Record<LedgerState, number>;
      const quarantined = await ledger.listByState(key, ["quarantined"]);
      return {
        mailboxId: mailbox.id,
        counts,
        ...quarantineView(quarantined),
      };
    }),
  );
}

/** Messages of one mailbox in one state: Select COUNT on the `byState` index, paged (1 MB per page). */
async function countState(
  client: DynamoDBClient,
  tableName: string,
  mailbox: MailboxKey,
  state: LedgerState,
): Promise<number> {
  let count = 0;
  let startKey: QueryCommand["input"]["ExclusiveStartKey"];
  do {
    const page = await client.send(
      new QueryCommand({
        TableName: tableName,
        IndexName: LEDGER_TABLE.stateIndex.name,
        Select: "COUNT",
        KeyConditionExpression: "#statePk = :statePk",
        ExpressionAttributeNames: { "#statePk": LEDGER_TABLE.stateIndex.partitionKey },
        ExpressionAttributeValues: { ":statePk": { S: statePk(mailbox, state) } },
        ...(startKey === undefined ? {} : { ExclusiveStartKey: startKey }),
      }),
    );
    count += page.Count ?? 0;
    startKey = page.LastEvaluatedKey;
  } while (startKey !== undefined);
  return count;
}

/** Visible, in-flight and delayed messages of a queue. */
export async function queueDepth(sqs: SQSClient, url: string): Promise<QueueDepth> {
  const { Attributes: a = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
      ],
    }),
  );
  return {
    url,
    visible: Number(a.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
    delayed: Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
  };
}
