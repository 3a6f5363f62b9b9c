import { DynamoDbLedger } from "../../shared/adapters/dynamodb/dynamodb-ledger";
import { SqsWorkQueue } from "../../shared/adapters/sqs/sqs-work-queue";
import type { CopyJob } from "../../shared/core/model";
import { releaseFromQuarantine } from "../../shared/core/release-from-quarantine";
import { EXIT, table, UsageError } from "../output";
import { awsContext, withAwsErrors } from "./aws-context";
import { PRE_EXISTING_CODE } from "./mark-existing";

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
    const rows: { mailboxId: string; uidl: string; code?: string; reason?: string; released?: boolean }[] =
      [];
    const jobs: CopyJob[] = [];
    await withAwsErrors(async () => {
      for (const mailbox of config.mailboxes) {
        const key = { tenant: config.tenant, mailboxId: mailbox.id };
        for (const entry of await ledger.listByState(key, ["quarantined"])) {
          if (values.uidl !== undefined && entry.uidl !== values.uidl) continue;
          if (values.uidl === undefined && entry.quarantineCode === PRE_EXISTING_CODE) continue;
          const row = {
            mailboxId: mailbox.id,
            uidl: entry.uidl,
            ...(entry.quarantineCode === undefined ? {} : { code: entry.quarantineCode }),
            ...(entry.quarantineReason === undefined ? {} : { reason: entry.quarantineReason }),
          };
          if (action === "retry") {
            const released = await releaseFromQuarantine({ ledger }, { ...key, uidl: entry.uidl });
            if (released !== undefined) {
              const { tenant, mailboxId, uidl, listedSize, listedAt } = released;
              jobs.push({ tenant, mailboxId, uidl, listedSize, listedAt });
            }
            rows.push({ ...row, released: released !== undefined });
          } else {
            rows.push(row);
          }
        }
      }
      // Released entries are `archived` or `listed`, the states the copier takes a job for.
      if (jobs.length > 0) {
        await new SqsWorkQueue({ client: context.sqs, queueUrl: context.resources.queueUrl }).enqueue(jobs);
      }
    });
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ action, messages: rows }, null, 2)}\n`);
    } else if (rows.length === 0) {
      process.stdout.write("no quarantined messages\n");
    } else {
      process.stdout.write(
        `${table(
          ["mailbox", "uidl", "code", "reason"],
          rows.map((r) => [r.mailboxId, r.uidl, r.code ?? "", r.reason ?? ""]),
        )}\n`,
      );
      if (action === "retry") {
        process.stdout.write(`released ${jobs.length}: their copy jobs are on the work queue\n`);
      }
    }
    return EXIT.ok;
  } finally {
    context.close();
  }
}
