import { DynamoDBClient, PutItemCommand, QueryCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CostProxies, startCostProxies } from "../../bench/support/cost-proxy";
import { createLedgerTable } from "../../shared/adapters/dynamodb/create-ledger-table";
import { type DynaliteStandIn, STAND_IN_REGION, startDynaliteStandIn } from "../fakes/aws-stand-ins";

/**
 * The DynamoDB units bench/cost.ts prices come from its proxy in front of dynalite; these are the
 * rules it applies (docs/deploy.md section 7), each checked on one call.
 */
const TABLE = "cost-proxy-ledger";
let dynalite: DynaliteStandIn;
let proxies: CostProxies;
let client: DynamoDBClient;

beforeAll(async () => {
  dynalite = await startDynaliteStandIn();
  await createLedgerTable(dynalite.dynamodb, TABLE);
  // Only DynamoDB is exercised; the other proxies point at nothing.
  proxies = await startCostProxies({
    sqs: "http://127.0.0.1:9",
    dynamodb: dynalite.endpoint,
    s3: "http://127.0.0.1:9",
    secretsManager: "http://127.0.0.1:9",
  });
  client = new DynamoDBClient({
    endpoint: proxies.env.AWS_ENDPOINT_URL_DYNAMODB,
    region: STAND_IN_REGION,
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxAttempts: 1,
  });
});

afterAll(async () => {
  client.destroy();
  await proxies.stop();
  await dynalite.stop();
});

const s = (value: string) => ({ S: value });

describe("cost proxy: DynamoDB units as DynamoDB bills them", () => {
  it("charges a write one unit per started KB of the item, and hides ConsumedCapacity from a caller that did not ask", async () => {
    // Prepare
    proxies.take();

    // Act
    const answer = await client.send(
      new PutItemCommand({ TableName: TABLE, Item: { pk: s("a"), sk: s("1"), blob: s("x".repeat(1500)) } }),
    );

    // Assess
    expect(answer.ConsumedCapacity).toBeUndefined();
    expect(proxies.take()).toMatchObject([
      { service: "dynamodb", action: "PutItem", writeUnits: 2, readUnits: 0 },
    ]);
  });

  it("adds the state index's write when an item enters it, and two when its index key changes", async () => {
    // Prepare
    proxies.take();

    // Act
    await client.send(
      new PutItemCommand({ TableName: TABLE, Item: { pk: s("b"), sk: s("1"), statePk: s("b#listed") } }),
    );
    await client.send(
      new UpdateItemCommand({
        TableName: TABLE,
        Key: { pk: s("b"), sk: s("1") },
        UpdateExpression: "SET statePk = :next",
        ExpressionAttributeValues: { ":next": s("b#copied") },
      }),
    );

    // Assess: 1 base + 1 index; then 1 base + 1 index delete + 1 index put.
    expect(proxies.take().map((r) => r.writeUnits)).toEqual([2, 3]);
  });

  it("charges a write its condition turned away the units of the item as it stood", async () => {
    // Prepare
    await client.send(
      new PutItemCommand({ TableName: TABLE, Item: { pk: s("c"), sk: s("1"), blob: s("y".repeat(2500)) } }),
    );
    proxies.take();

    // Act
    const refused = client.send(
      new PutItemCommand({
        TableName: TABLE,
        Item: { pk: s("c"), sk: s("1") },
        ConditionExpression: "attribute_not_exists(pk)",
      }),
    );

    // Assess
    await expect(refused).rejects.toThrow();
    expect(proxies.take()).toMatchObject([
      { action: "PutItem (ConditionalCheckFailedException)", writeUnits: 3 },
    ]);
  });

  it("charges a Query that finds nothing half a read unit", async () => {
    // Prepare
    proxies.take();

    // Act
    const answer = await client.send(
      new QueryCommand({
        TableName: TABLE,
        KeyConditionExpression: "pk = :pk",
        ExpressionAttributeValues: { ":pk": s("nobody") },
      }),
    );

    // Assess
    expect(answer.Items).toEqual([]);
    expect(proxies.take()).toMatchObject([{ action: "Query", readUnits: 0.5, writeUnits: 0 }]);
  });
});
