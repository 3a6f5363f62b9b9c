import type { TenantConfig } from "../../shared/config/tenant-config";
import type { LedgerEntry } from "../../shared/core/model";
import { releaseFromQuarantine } from "../../shared/core/release-from-quarantine";
import type { Ledger } from "../../shared/ports/ledger";
import { table } from "../output";
import { PRE_EXISTING_CODE } from "./mark-existing";

/** One quarantined message as `quarantine list|retry` shows it, local or on AWS. */
export interface QuarantineRow {
  readonly mailboxId: string;
  readonly uidl: string;
  readonly code?: string;
  readonly reason?: string;
  readonly released?: boolean;
}

/**
 * The quarantined messages of every mailbox (all but pre-existing ones, or the one `uidl`
 * names); with `retry`, each is released and handed to `onReleased`.
 */
export async function quarantinedRows(
  ledger: Ledger,
  config: Pick<TenantConfig, "tenant" | "mailboxes">,
  action: "list" | "retry",
  uidl: string | undefined,
  onReleased: (entry: LedgerEntry) => void = () => {},
): Promise<QuarantineRow[]> {
  const rows: QuarantineRow[] = [];
  for (const mailbox of config.mailboxes) {
    const key = { tenant: config.tenant, mailboxId: mailbox.id };
    for (const entry of await ledger.listByState(key, ["quarantined"])) {
      if (uidl !== undefined && entry.uidl !== uidl) continue;
      if (uidl === undefined && entry.quarantineCode === PRE_EXISTING_CODE) continue;
      const row = {
        mailboxId: mailbox.id,
        uidl: entry.uidl,
        ...(entry.quarantineCode === undefined ? {} : { code: entry.quarantineCode }),
        ...(entry.quarantineReason === undefined ? {} : { reason: entry.quarantineReason }),
      };
      if (action === "list") {
        rows.push(row);
        continue;
      }
      const released = await releaseFromQuarantine({ ledger }, { ...key, uidl: entry.uidl });
      if (released !== undefined) onReleased(released);
      rows.push({ ...row, released: released !== undefined });
    }
  }
  return rows;
}

/** Prints the rows as JSON or a table; after a retry, `releasedNote` says what happens next. */
export function printQuarantineRows(
  rows: readonly QuarantineRow[],
  action: "list" | "retry",
  json: boolean,
  releasedNote: string,
): void {
  if (json) {
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
      process.stdout.write(`released ${rows.filter((r) => r.released).length}: ${releasedNote}\n`);
    }
  }
}
