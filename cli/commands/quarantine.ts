import { releaseFromQuarantine } from "../../shared/core/release-from-quarantine";
import { EXIT, table, UsageError } from "../output";
import { createLocalRuntime } from "../runtime/local-runtime";
import { acquireRunLock } from "../runtime/run-lock";
import { configAndFlags } from "./local-context";
import { PRE_EXISTING_CODE } from "./mark-existing";

/**
 * `pop2gmail quarantine list|retry --config FILE [--uidl U] [--json]`. `retry` releases
 * quarantined messages (all but pre-existing ones, or the one `--uidl` names) so the next
 * `run` copies them again.
 */
export async function quarantineCommand(args: readonly string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action !== "list" && action !== "retry") throw new UsageError('quarantine needs "list" or "retry"');
  const { config, values } = await configAndFlags(`quarantine ${action}`, rest, { uidl: { type: "string" } });
  const runtime = createLocalRuntime(config, { noEventLog: true });
  try {
    const rows: { mailboxId: string; uidl: string; code?: string; reason?: string; released?: boolean }[] =
      [];
    const lock = action === "retry" ? await acquireRunLock(config.local.dataDir) : undefined;
    try {
      for (const mailbox of config.mailboxes) {
        const key = { tenant: config.tenant, mailboxId: mailbox.id };
        for (const entry of await runtime.ledger.listByState(key, ["quarantined"])) {
          if (values.uidl !== undefined && entry.uidl !== values.uidl) continue;
          if (values.uidl === undefined && entry.quarantineCode === PRE_EXISTING_CODE) continue;
          const row = {
            mailboxId: mailbox.id,
            uidl: entry.uidl,
            ...(entry.quarantineCode === undefined ? {} : { code: entry.quarantineCode }),
            ...(entry.quarantineReason === undefined ? {} : { reason: entry.quarantineReason }),
          };
          if (action === "retry") {
            const released = await releaseFromQuarantine(
              { ledger: runtime.ledger },
              { ...key, uidl: entry.uidl },
            );
            rows.push({ ...row, released: released !== undefined });
          } else {
            rows.push(row);
          }
        }
      }
    } finally {
      await lock?.release();
    }
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
        process.stdout.write(
          `released ${rows.filter((r) => r.released).length}: the next \`pop2gmail run\` copies them\n`,
        );
      }
    }
    return EXIT.ok;
  } finally {
    await runtime.close();
  }
}
