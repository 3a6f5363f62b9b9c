import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { DynamoDBClient, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLedgerTable } from "../../shared/adapters/dynamodb/create-ledger-table";
import { DynamoDbLedger } from "../../shared/adapters/dynamodb/dynamodb-ledger";
import { LEDGER_TABLE } from "../../shared/adapters/dynamodb/ledger-table";
import { ServiceRequestError, TransientError } from "../../shared/core/errors";
import { describeLedgerContract, newMailbox } from "../contract/ledger-contract";
import { describeSessionLeasesContract } from "../contract/session-leases-contract";
import {
  countDynamoDbCalls,
  type DynaliteStandIn,
  STAND_IN_REGION,
  startDynaliteStandIn,
  uniqueName,
} from "../fakes/aws-stand-ins";

let dynalite: DynaliteStandIn;
let tableName: string;

beforeAll(async () => {
  dynalite = await startDynaliteStandIn();
  tableName = uniqueName("ledger");
  await createLedgerTable(dynalite.dynamodb, tableName);
});

afterAll(async () => {
  await dynalite?.stop();
});

describeLedgerContract(
  "DynamoDbLedger on dynalite",
  () => new DynamoDbLedger({ client: dynalite.dynamodb, tableName }),
);

describeSessionLeasesContract(
  "DynamoDbLedger on dynalite",
  (now) => new DynamoDbLedger({ client: dynalite.dynamodb, tableName, now }),
);

describe("DynamoDbLedger on dynalite: storage layout and cost", () => {
  it("writes message items under the key schema the CDK stack deploys", async () => {
    // Prepare
    const ledger = new DynamoDbLedger({ client: dynalite.dynamodb, tableName });
    const mailbox = newMailbox();
    await ledger.createListed([{ ...mailbox, uidl: "u#1", listedSize: 5, listedAt: 6 }]);
    // Act
    await ledger.transition({ ...mailbox, uidl: "u#1" }, ["listed"], "archived");
    const raw = await dynalite.dynamodb.send(
      new GetItemCommand({
        TableName: tableName,
        Key: { pk: { S: `acme#${mailbox.mailboxId}` }, sk: { S: "msg#u#1" } },
      }),
    );
    // Assess
    expect(raw.Item?.[LEDGER_TABLE.stateIndex.partitionKey]).toEqual({
      S: `acme#${mailbox.mailboxId}#archived`,
    });
    expect(raw.Item?.state).toEqual({ S: "archived" });
  });

  it("costs one DynamoDB call per get, transition, attempt, snapshot read and single-slot lease", async () => {
    // Prepare
    const client = dynalite.newClient();
    const counter = countDynamoDbCalls(client);
    const ledger = new DynamoDbLedger({ client, tableName });
    const mailbox = newMailbox();
    const key = { ...mailbox, uidl: "one" };
    await ledger.createListed([{ ...key, listedSize: 1, listedAt: 1 }]);
    counter.reset();
    // Act
    await ledger.get(key);
    await ledger.transition(key, ["listed"], "archived");
    await ledger.recordAttempt(key);
    await ledger.getSnapshot(mailbox);
    await ledger.acquire(mailbox, 1, "me", 1000);
    // Assess
    expect(counter.byOperation()).toEqual({ GetItem: 2, UpdateItem: 2, PutItem: 1 });
    expect(counter.total()).toBe(5);
  });

  it("creates N new entries with N conditional puts and nothing else", async () => {
    // Prepare
    const client = dynalite.newClient();
    const counter = countDynamoDbCalls(client);
    const ledger = new DynamoDbLedger({ client, tableName });
    const mailbox = newMailbox();
    const listings = Array.from({ length: 20 }, (_, i) => ({
      ...mailbox,
      uidl: `m${i}`,
      listedSize: i,
      listedAt: i,
    }));
    // Act
    const created = await ledger.createListed(listings);
    // Assess
    expect(created).toHaveLength(20);
    expect(counter.byOperation()).toEqual({ PutItem: 20 });
  });

  it("refuses a snapshot above DynamoDB's 400 KB item limit with a non-retryable error", async () => {
    // Prepare
    const ledger = new DynamoDbLedger({ client: dynalite.dynamodb, tableName });
    const mailbox = newMailbox();
    // Act
    const attempt = ledger.putSnapshot(mailbox, new Uint8Array(401 * 1024), undefined);
    // Assess
    await expect(attempt).rejects.toBeInstanceOf(ServiceRequestError);
    await expect(attempt).rejects.toMatchObject({ retryable: false, service: "ledger" });
  });

  it("reports an unreachable DynamoDB as a retryable TransientError", async () => {
    // Prepare
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const client = new DynamoDBClient({
      endpoint: `http://127.0.0.1:${port}`,
      region: STAND_IN_REGION,
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
      maxAttempts: 1,
    });
    const ledger = new DynamoDbLedger({ client, tableName });
    // Act
    const attempt = ledger.get({ ...newMailbox(), uidl: "x" });
    // Assess
    try {
      await expect(attempt).rejects.toBeInstanceOf(TransientError);
      await expect(attempt).rejects.toMatchObject({ retryable: true, service: "ledger" });
    } finally {
      client.destroy();
    }
  });

  it("reports a missing table as a non-retryable error naming the table", async () => {
    // Prepare
    const ledger = new DynamoDbLedger({ client: dynalite.dynamodb, tableName: "no-such-table" });
    // Act
    const attempt = ledger.get({ ...newMailbox(), uidl: "x" });
    // Assess
    await expect(attempt).rejects.toMatchObject({
      code: "SERVICE_REQUEST_REJECTED",
      retryable: false,
      message: expect.stringContaining("no-such-table"),
    });
  });
});
