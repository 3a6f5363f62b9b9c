import {
  BatchWriteItemCommand,
  type DynamoDBClient,
  ScanCommand,
  type ScanCommandOutput,
} from "@aws-sdk/client-dynamodb";
import { LEDGER_TABLE } from "../../../shared/adapters/dynamodb/ledger-table";

type Item = NonNullable<ScanCommandOutput["Items"]>[number];

/** Every item of the ledger table as stored (entries, snapshots, leases), read with a Scan. */
export async function scanLedgerItems(client: DynamoDBClient, tableName: string): Promise<Item[]> {
  const items: Item[] = [];
  let start: Item | undefined;
  do {
    const page: ScanCommandOutput = await client.send(
      new ScanCommand({ TableName: tableName, ...(start === undefined ? {} : { ExclusiveStartKey: start }) }),
    );
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start !== undefined);
  return items;
}

/**
 * Deletes every item of the ledger table (a restored backup, a new disk, an operator's mistake:
 * issue 10 item 6) and returns how many there were.
 */
export async function emptyLedgerTable(client: DynamoDBClient, tableName: string): Promise<number> {
  const { partitionKey, sortKey } = LEDGER_TABLE;
  const items = await scanLedgerItems(client, tableName);
  for (let offset = 0; offset < items.length; offset += 25) {
    let requests = items.slice(offset, offset + 25).map((item) => ({
      DeleteRequest: { Key: { [partitionKey]: item[partitionKey], [sortKey]: item[sortKey] } as Item },
    }));
    while (requests.length > 0) {
      const answer = await client.send(
        new BatchWriteItemCommand({ RequestItems: { [tableName]: requests } }),
      );
      requests = (answer.UnprocessedItems?.[tableName] ?? []).flatMap((r) =>
        r.DeleteRequest?.Key === undefined ? [] : [{ DeleteRequest: { Key: r.DeleteRequest.Key } }],
      );
    }
  }
  return items.length;
}
