import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLedgerTable } from "../../shared/adapters/dynamodb/create-ledger-table";
import { DynamoDbLedger } from "../../shared/adapters/dynamodb/dynamodb-ledger";
import { DynamoDbPollChains } from "../../shared/adapters/dynamodb/dynamodb-poll-chains";
import { DynamoDbSessionSlots } from "../../shared/adapters/dynamodb/dynamodb-session-slots";
import { parsePollMessage, SqsPollQueue, visibleMessages } from "../../shared/adapters/sqs/sqs-poll-queue";
import { ProtocolError } from "../../shared/core/errors";
import { describeChainSessionLeasesContract } from "../contract/chain-session-leases-contract";
import { describePollChainsContract } from "../contract/poll-chains-contract";
import {
  type DynaliteStandIn,
  type FauxqsStandIn,
  startDynaliteStandIn,
  startFauxqsStandIn,
  uniqueName,
} from "../fakes/aws-stand-ins";
import { InMemoryPollChains } from "../fakes/in-memory-poll-chains";
import { receiveBatch } from "../fakes/sqs-queue-driver";

let dynalite: DynaliteStandIn;
let fauxqs: FauxqsStandIn;
const tableName = uniqueName("chains");

beforeAll(async () => {
  dynalite = await startDynaliteStandIn();
  fauxqs = await startFauxqsStandIn();
  await createLedgerTable(dynalite.dynamodb, tableName);
}, 30_000);

afterAll(async () => {
  await fauxqs?.stop();
  await dynalite?.stop();
});

describePollChainsContract("InMemoryPollChains", () => new InMemoryPollChains());
describePollChainsContract(
  "DynamoDbPollChains on dynalite",
  () => new DynamoDbPollChains({ client: dynalite.dynamodb, tableName }),
);

describeChainSessionLeasesContract(
  "DynamoDbPollChains, DynamoDbLedger and DynamoDbSessionSlots on dynalite",
  (now) => ({
    chains: new DynamoDbPollChains({ client: dynalite.dynamodb, tableName }),
    leases: new DynamoDbLedger({ client: dynalite.dynamodb, tableName, now }),
    slots: new DynamoDbSessionSlots({ client: dynalite.dynamodb, tableName, now }),
  }),
);

describe("DynamoDbPollChains in the ledger table", () => {
  it("keeps chain items out of every mailbox's partition and out of the byState index", async () => {
    // Prepare
    const chains = new DynamoDbPollChains({ client: dynalite.dynamodb, tableName });
    const ledger = new DynamoDbLedger({ client: dynalite.dynamodb, tableName });
    await chains.start("acme", "info@acme.it", "c1", 1_000, undefined);
    // Act
    const listed = await ledger.listByState({ tenant: "acme", mailboxId: "info@acme.it" }, ["listed"]);
    const shards = await ledger.getSnapshotShards({ tenant: "acme", mailboxId: "info@acme.it" });
    // Assess
    expect(listed).toEqual([]);
    expect(shards.size).toBe(0);
    expect(await chains.list("acme")).toHaveLength(1);
  });
});

describe("SqsPollQueue on fauxqs", () => {
  it("sends the poll message with its per-message DelaySeconds: delayed, not visible", async () => {
    // Prepare
    const queueUrl = await fauxqs.createQueue(uniqueName("poll"));
    const queue = new SqsPollQueue(fauxqs.sqs, queueUrl);
    // Act
    await queue.send({ mailboxId: "info@acme.it", chain: "c1", seq: 3 }, 10);
    await queue.send({ mailboxId: "sales@acme.it", chain: "c2", seq: 0 }, 0);
    const { Attributes } = await fauxqs.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ["ApproximateNumberOfMessagesDelayed"],
      }),
    );
    const visible = await receiveBatch(fauxqs.sqs, queueUrl);
    // Assess
    expect(Attributes?.ApproximateNumberOfMessagesDelayed).toBe("1");
    expect(visible.map((m) => parsePollMessage(m.Body ?? ""))).toEqual([
      { mailboxId: "sales@acme.it", chain: "c2", seq: 0 },
    ]);
  });

  it("counts a queue's visible messages and refuses a body that is no poll message", async () => {
    // Prepare
    const queueUrl = await fauxqs.createQueue(uniqueName("dlq"));
    const queue = new SqsPollQueue(fauxqs.sqs, queueUrl);
    await queue.send({ mailboxId: "a", chain: "c", seq: 0 }, 0);
    await queue.send({ mailboxId: "b", chain: "c", seq: 0 }, 0);
    // Act
    const count = await visibleMessages(fauxqs.sqs, queueUrl);
    // Assess
    expect(count).toBe(2);
    expect(() => parsePollMessage("{")).toThrow(ProtocolError);
    expect(() => parsePollMessage('{"mailboxId":"a","chain":"c"}')).toThrow(ProtocolError);
  });
});
