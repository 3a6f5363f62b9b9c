import { EXIT, UsageError } from "../output";
import { acquireRunLock } from "../runtime/run-lock";
import { configAndFlags, openLocalRuntime } from "./local-context";
import { printQuarantineRows, type QuarantineRow, quarantinedRows } from "./quarantine-rows";

/**
 * `pop2gmail quarantine list|retry --config FILE [--uidl U] [--json]`. `retry` releases
 * quarantined messages (all but pre-existing ones, or the one `--uidl` names) so the next
 * `run` copies them again.
 */
export async function quarantineCommand(args: readonly string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action !== "list" && action !== "retry") throw new UsageError('quarantine needs "list" or "retry"');
  const { config, values } = await configAndFlags(`quarantine ${action}`, rest, { uidl: { type: "string" } });
  const runtime = await openLocalRuntime(config, { noEventLog: true });
  try {
    const lock = action === "retry" ? await acquireRunLock(config.local.dataDir) : undefined;
    let rows: QuarantineRow[];
    try {
      const uidl = typeof values.uidl === "string" ? values.uidl : undefined;
      rows = await quarantinedRows(runtime.ledger, config, action, uidl);
    } finally {
      await lock?.release();
    }
    printQuarantineRows(rows, action, values.json === true, "the next `pop2gmail run` copies them");
    return EXIT.ok;
  } finally {
    await runtime.close();
  }
}
