import { DynamoDbLedger } from "../../shared/adapters/dynamodb/dynamodb-ledger";
import { SqsWorkQueue } from "../../shared/adapters/sqs/sqs-work-queue";
import type { CopyJob } from "../../shared/core/model";
import { EXIT, UsageError } from "../output";
import { awsContext, withAwsErrors } from "./aws-context";
import { printQuarantineRows, type QuarantineRow, quarantinedRows } from "./quarantine-rows";

/**
 * `pop2gmail quarantine list|retry --aws --tenant T [--uidl U] [--json]`, on the tenant's
 * DynamoDB ledger. `retry` releases the messages (all but pre-existing ones, or the one `--uidl`
 * names) and sends their copy jobs to the work queue, so they are copied within a minute instead
 * of waiting for the next poll. Output and exit codes as `quarantine list|retry --config FILE`.
 */
export async function awsQuarantineCommand(args: readonly string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action !== "list" && action !== "retry") throw new UsageError('quarantine needs "list" or "retry"');
  const needs = action === "retry" ? (["tableName", "queueUrl"] as const) : (["tableName"] as const);
  const context = await awsContext(`quarantine ${action}`, rest, needs, { uidl: { type: "string" } });
  try {
    const { config, values } = context;
    const ledger = new DynamoDbLedger({ client: context.dynamodb, tableName: context.resources.tableName });
    const jobs: CopyJob[] = [];
    let rows: QuarantineRow[] = [];
    await withAwsErrors(async () => {
      const uidl = typeof values.uidl === "string" ? values.uidl : undefined;
      rows = await quarantinedRows(ledger, config, action, uidl, (released) => {
        const { tenant, mailboxId, uidl, listedSize, listedAt } = released;
        jobs.push({ tenant, mailboxId, uidl, listedSize, listedAt });
      });
      // Released entries are `archived` or `listed`, the states the copier takes a job for.
      if (jobs.length > 0) {
        await new SqsWorkQueue({ client: context.sqs, queueUrl: context.resources.queueUrl }).enqueue(jobs);
      }
    });
    printQuarantineRows(rows, action, values.json === true, "their copy jobs are on the work queue");
    return EXIT.ok;
  } finally {
    context.close();
  }
}
