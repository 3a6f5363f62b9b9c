import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLedgerTable } from "../../shared/adapters/dynamodb/create-ledger-table";
import { DynamoDbLedger } from "../../shared/adapters/dynamodb/dynamodb-ledger";
import { MAX_SNAPSHOT_SHARD_BYTES } from "../../shared/ports/ledger";
import {
  countDynamoDbCalls,
  type DynaliteStandIn,
  startDynaliteStandIn,
  uniqueName,
} from "../fakes/aws-stand-ins";
import { largeMailbox, SnapshotsElsewhere } from "../unit/core/support/large-mailbox";

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

describe("a mailbox keeping 40,000 messages on the server, snapshot on DynamoDB (dynalite)", () => {
  it("stores the snapshot in items under 400 KB and polls idle with one Query and no write", async () => {
    // Prepare
    const client = dynalite.newClient();
    const store = new SnapshotsElsewhere(new DynamoDbLedger({ client, tableName }));
    const box = await largeMailbox(store, 40_000);
    const counter = countDynamoDbCalls(client);
    box.ledger.reset();

    // Act
    const idle = await box.poll();

    // Assess
    expect(idle).toMatchObject({ kind: "listed", idle: true, onServer: 40_000, newMessages: 0 });
    expect(Object.fromEntries(box.ledger.calls)).toEqual({ getSnapshotShards: 1 });
    expect(counter.byOperation()).toEqual({ Query: 1 });
    const shards = await store.getSnapshotShards(box.h.key);
    expect(shards.size).toBeGreaterThan(1);
    for (const shard of shards.values()) {
      expect(shard.body.byteLength).toBeLessThanOrEqual(MAX_SNAPSHOT_SHARD_BYTES);
    }
    counter.detach();
  }, 180_000);
});
