import { mapAwsError } from "../aws/map-aws-error";

/** Where a ledger-table call failed, for the mapped error (`mapAwsError`). */
export function ledgerTableContext(tableName: string, operation: string) {
  return { service: "ledger" as const, action: `dynamodb:${operation}`, resource: tableName };
}

/** One call on the ledger table, its AWS error mapped with the table and operation named. */
export async function callLedgerTable<T>(
  tableName: string,
  operation: string,
  send: () => Promise<T>,
): Promise<T> {
  try {
    return await send();
  } catch (error) {
    throw mapAwsError(error, ledgerTableContext(tableName, operation));
  }
}
