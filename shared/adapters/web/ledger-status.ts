import type { MailboxKey } from "../../core/model";
import type { Ledger } from "../../ports/ledger";
import type { MailboxStatusView } from "./onboarding-pages";

/**
 * The status view's figures from any ledger (SQLite locally, DynamoDB on AWS): imports since
 * `midnight`, the p95 of listed-to-imported over the last 1,000 imports, and the quarantined
 * entries except `hiddenCodes` (those `init --mark-existing-delivered` recorded).
 */
export async function ledgerMailboxStatus(
  ledger: Pick<Ledger, "listByState">,
  key: MailboxKey,
  options: { midnight: number; lastPoll: MailboxStatusView["lastPoll"]; hiddenCodes: readonly string[] },
): Promise<MailboxStatusView> {
  const imported = (await ledger.listByState(key, ["imported", "retained", "deleted"]))
    .filter((e) => e.importedAt !== undefined)
    .sort((a, b) => (b.importedAt ?? 0) - (a.importedAt ?? 0));
  const quarantined = (await ledger.listByState(key, ["quarantined"])).filter(
    (e) => e.quarantineCode === undefined || !options.hiddenCodes.includes(e.quarantineCode),
  );
  return {
    lastPoll: options.lastPoll,
    deliveredToday: imported.filter((e) => (e.importedAt ?? 0) >= options.midnight).length,
    delayP95Ms: nearestRank(
      imported.slice(0, 1000).map((e) => (e.importedAt ?? 0) - e.listedAt),
      95,
    ),
    quarantined: quarantined.map((e) => ({
      ...(e.quarantineCode === undefined ? {} : { code: e.quarantineCode }),
      ...(e.quarantineReason === undefined ? {} : { reason: e.quarantineReason }),
      ...(e.quarantinedAt === undefined ? {} : { at: e.quarantinedAt }),
    })),
  };
}

/** p-th percentile, nearest rank; undefined for none. */
function nearestRank(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
