import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLedgerTable } from "../../shared/adapters/dynamodb/create-ledger-table";
import { DynamoDbLedger } from "../../shared/adapters/dynamodb/dynamodb-ledger";
import { DEFAULT_KEEPER_POLICY, type KeeperDeps, keeperTick } from "../../shared/core/poll-chain";
import { type DynaliteStandIn, startDynaliteStandIn, uniqueName } from "../fakes/aws-stand-ins";
import { TestClock } from "../fakes/in-memory-clock";
import { InMemoryPollChains, RecordingPollQueue } from "../fakes/in-memory-poll-chains";
import { mailboxConfig, TENANT } from "../unit/core/support/harness";

/*
 * The keeper's mail checks (shared/core/tenant-problems.ts) on DynamoDbLedger and dynalite: what
 * they find, and the read units they cost (each mailbox's at one tick in five), as DynamoDB reports them (ReturnConsumedCapacity).
 */

/** The mailbox's mail checked at this tick whatever its minute (the turns: tenant-problems.test.ts). */
const EVERY_TICK = { ...DEFAULT_KEEPER_POLICY, mailChecksEveryTicks: 1 };

let dynalite: DynaliteStandIn;
let tableName: string;

beforeAll(async () => {
  dynalite = await startDynaliteStandIn();
  tableName = uniqueName("keeper");
  await createLedgerTable(dynalite.dynamodb, tableName);
});

afterAll(async () => {
  await dynalite?.stop();
});

/**
 * Asks DynamoDB for the consumed capacity of every Query and sums it, charging a Query that finds
 * nothing 0.5 units (eventually consistent) as DynamoDB does and dynalite does not: the rule of
 * bench/support/cost-proxy.ts.
 */
function readUnits(client: DynamoDBClient): { units(): number; queries(): number } {
  let units = 0;
  let queries = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== "QueryCommand") return next(args);
      queries++;
      (args.input as { ReturnConsumedCapacity?: string }).ReturnConsumedCapacity = "TOTAL";
      const result = await next(args);
      const consumed = (result.output as { ConsumedCapacity?: { CapacityUnits?: number } }).ConsumedCapacity;
      const reported = consumed?.CapacityUnits ?? Number.NaN;
      units += reported === 0 ? 0.5 : reported;
      return result;
    },
    { step: "initialize", name: "readUnits" },
  );
  return { units: () => units, queries: () => queries };
}

function keeperOn(client: DynamoDBClient, clock: TestClock): KeeperDeps {
  let ids = 0;
  return {
    chains: new InMemoryPollChains(),
    pollQueue: new RecordingPollQueue(),
    clock,
    ledger: new DynamoDbLedger({ client, tableName }),
    newChainId: () => `c${++ids}`,
    random: () => 0,
    problemQueueDepths: async () => ({ deadLetters: 0, failedDeletes: 0 }),
  };
}

describe("keeper mail checks on DynamoDbLedger (dynalite)", () => {
  it("costs 2 read units per healthy mailbox in five ticks: four eventually consistent queries that find nothing, at the tick that checks it", async () => {
    // Prepare: five mailboxes, each with 30 messages already in Gmail (imported) and none waiting
    const client = dynalite.newClient();
    const clock = new TestClock();
    const mailboxes = Array.from({ length: 5 }, (_, i) =>
      mailboxConfig({ id: `healthy${i}-${tableName}@acme.it` }),
    );
    const ledger = new DynamoDbLedger({ client, tableName });
    for (const m of mailboxes) {
      const listings = Array.from({ length: 30 }, (_, n) => ({
        tenant: TENANT,
        mailboxId: m.id,
        uidl: `u${n}`,
        listedSize: 100_000,
        listedAt: clock.now(),
      }));
      await ledger.createListed(listings);
      for (const l of listings)
        await ledger.transition(l, ["listed"], "imported", { importedAt: clock.now() });
    }
    clock.advance(60 * 60_000);
    const meter = readUnits(client);
    // Act: one tick a minute for five minutes (each mailbox's mail is checked at one of them)
    const deps = keeperOn(client, clock);
    const problems = [];
    for (let minute = 0; minute < 5; minute++) {
      problems.push(...(await keeperTick(deps, TENANT, mailboxes)).problems);
      clock.advance(60_000);
    }
    // Assess
    expect(problems.filter((p) => p.cause === "mail-stuck" || p.cause === "quarantined")).toEqual([]);
    expect(meter.queries()).toBe(4 * mailboxes.length);
    expect(meter.units()).toBe(2 * mailboxes.length);
  });

  it("finds a mailbox whose message waits 16 minutes behind a page of fresh ones, at a few read units", async () => {
    // Prepare: 120 messages listed now (uidls sort first), one listed 16 minutes ago
    const client = dynalite.newClient();
    const clock = new TestClock();
    const mailbox = mailboxConfig({ id: `stuck-${tableName}@acme.it` });
    const ledger = new DynamoDbLedger({ client, tableName });
    await ledger.createListed([
      { tenant: TENANT, mailboxId: mailbox.id, uidl: "zz-old", listedSize: 10, listedAt: clock.now() },
    ]);
    clock.advance(16 * 60_000);
    await ledger.createListed(
      Array.from({ length: 120 }, (_, n) => ({
        tenant: TENANT,
        mailboxId: mailbox.id,
        uidl: `a${n}`,
        listedSize: 10,
        listedAt: clock.now(),
      })),
    );
    const meter = readUnits(client);
    // Act
    const result = await keeperTick(keeperOn(client, clock), TENANT, [mailbox], EVERY_TICK);
    // Assess
    expect(result.problems.filter((p) => p.cause === "mail-stuck")).toEqual([
      {
        cause: "mail-stuck",
        mailboxId: mailbox.id,
        uidl: "zz-old",
        state: "listed",
        listedAt: clock.now() - 16 * 60_000,
      },
    ]);
    // 3 pages of at most 50 listed entries (~300 B each: 1.5 units a page) and the empty
    // quarantined query (0.5); archived and importing are not asked once listed holds a match.
    expect(meter.queries()).toBe(4);
    expect(meter.units()).toBeLessThanOrEqual(5);
  });
});
