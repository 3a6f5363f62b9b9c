import { CreateTableCommand, type DynamoDBClient, waitUntilTableExists } from "@aws-sdk/client-dynamodb";
import { mapAwsError } from "../aws/map-aws-error";
import { LEDGER_TABLE } from "./ledger-table";

/**
 * Creates the ledger table with the schema the CDK stack deploys (keys and the `byState` index
 * from `LEDGER_TABLE`, index projection ALL, on-demand billing) and waits until it is ACTIVE.
 * For tests and the local stand-ins; in AWS the tenant stack owns the table. The TTL attribute is
 * left to the stack (dynalite does not implement UpdateTimeToLive).
 */
export async function createLedgerTable(client: DynamoDBClient, tableName: string): Promise<void> {
  const { partitionKey, sortKey, stateIndex } = LEDGER_TABLE;
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [
          { AttributeName: partitionKey, AttributeType: "S" },
          { AttributeName: sortKey, AttributeType: "S" },
          { AttributeName: stateIndex.partitionKey, AttributeType: "S" },
        ],
        KeySchema: [
          { AttributeName: partitionKey, KeyType: "HASH" },
          { AttributeName: sortKey, KeyType: "RANGE" },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: stateIndex.name,
            KeySchema: [
              { AttributeName: stateIndex.partitionKey, KeyType: "HASH" },
              { AttributeName: stateIndex.sortKey, KeyType: "RANGE" },
            ],
            Projection: { ProjectionType: "ALL" },
          },
        ],
      }),
    );
    await waitUntilTableExists(
      { client, maxWaitTime: 60, minDelay: 1, maxDelay: 2 },
      { TableName: tableName },
    );
  } catch (error) {
    throw mapAwsError(error, { service: "ledger", action: "dynamodb:CreateTable", resource: tableName });
  }
}
