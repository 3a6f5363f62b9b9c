/**
 * The idle-poll cost of a mailbox keeping 1k-200k messages on the server (issue 14 item 3): wall
 * time, CPU ms, ledger calls, DynamoDB requests, consumed capacity and snapshot bytes read, on the
 * SQLite ledger (a file, as the local runtime uses it) and on DynamoDB (dynalite). Also what one
 * new message costs to write (shards written, write units).
 *
 *   npx tsx bench/idle-poll.ts [--sizes 1000,10000,50000,200000] [--polls 5]
 *
 * The server listing comes from the in-memory POP3 source (no network). On dynalite the message
 * entries stay in memory: an idle poll reads only the snapshot, and 200,000 conditional puts to
 * the stand-in would take minutes. dynalite runs in this process, so its CPU is in the CPU figure.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { createLedgerTable } from "../shared/adapters/dynamodb/create-ledger-table";
import { DynamoDbLedger } from "../shared/adapters/dynamodb/dynamodb-ledger";
import { SqliteLedger } from "../shared/adapters/local/sqlite-ledger";
import type { Ledger } from "../shared/ports/ledger";
import { startDynaliteStandIn, uniqueName } from "../test/fakes/aws-stand-ins";
import { largeMailbox, SnapshotsElsewhere } from "../test/unit/core/support/large-mailbox";

interface Row {
  readonly ledger: string;
  readonly kept: number;
  readonly shards: number;
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly ledgerCalls: number;
  readonly dynamoRequests: number;
  readonly readUnits: number;
  readonly bytesRead: number;
  readonly newMessageShardWrites: number;
  readonly newMessageWriteUnits: number;
}

/** Sums DynamoDB requests and consumed capacity (ReturnConsumedCapacity=TOTAL on every request). */
function meterDynamoDb(client: DynamoDBClient) {
  const meter = { requests: 0, readUnits: 0, writeUnits: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as Record<string, unknown>;
      input.ReturnConsumedCapacity = "TOTAL";
      meter.requests++;
      const result = await next(args);
      const consumed = (result.output as { ConsumedCapacity?: unknown }).ConsumedCapacity;
      for (const c of Array.isArray(consumed) ? consumed : consumed === undefined ? [] : [consumed]) {
        const units = c as {
          CapacityUnits?: number;
          ReadCapacityUnits?: number;
          WriteCapacityUnits?: number;
        };
        if (units.ReadCapacityUnits !== undefined || units.WriteCapacityUnits !== undefined) {
          meter.readUnits += units.ReadCapacityUnits ?? 0;
          meter.writeUnits += units.WriteCapacityUnits ?? 0;
        } else if (/Put|Update|Delete|Write/.test(context.commandName ?? "")) {
          meter.writeUnits += units.CapacityUnits ?? 0;
        } else {
          meter.readUnits += units.CapacityUnits ?? 0;
        }
      }
      return result;
    },
    { step: "initialize", name: "meterDynamoDb" },
  );
  return meter;
}

/** Counts the snapshot bytes every getSnapshotShards returns. */
function countBytes(store: Ledger): { bytes: number } {
  const counter = { bytes: 0 };
  const read = store.getSnapshotShards.bind(store);
  store.getSnapshotShards = async (mailbox) => {
    const shards = await read(mailbox);
    for (const s of shards.values()) counter.bytes += s.body.byteLength;
    return shards;
  };
  return counter;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

async function measure(
  ledger: string,
  store: Ledger,
  kept: number,
  polls: number,
  meter?: { requests: number; readUnits: number; writeUnits: number },
): Promise<Row> {
  const bytes = countBytes(store);
  const box = await largeMailbox(store, kept);
  await box.poll(); // warm
  const walls: number[] = [];
  const cpus: number[] = [];
  box.ledger.reset();
  bytes.bytes = 0;
  const before = { ...(meter ?? { requests: 0, readUnits: 0, writeUnits: 0 }) };
  for (let i = 0; i < polls; i++) {
    const cpu = process.cpuUsage();
    const start = performance.now();
    const result = await box.poll();
    walls.push(performance.now() - start);
    const used = process.cpuUsage(cpu);
    cpus.push((used.user + used.system) / 1000);
    if (result.kind !== "listed" || !result.idle) throw new Error(`poll ${i} of ${kept} was not idle`);
  }
  const idleCalls = box.ledger.total / polls;
  const after = meter ?? { requests: 0, readUnits: 0, writeUnits: 0 };
  const row = {
    dynamoRequests: (after.requests - before.requests) / polls,
    readUnits: (after.readUnits - before.readUnits) / polls,
  };
  const idleBytes = bytes.bytes / polls;
  // One new message: which shards are written, and what that costs.
  box.h.pop3.add(new Uint8Array(Buffer.from("Subject: new\r\n\r\nnew\r\n")), "fresh-one");
  box.ledger.reset();
  const writeBefore = meter?.writeUnits ?? 0;
  await box.poll();
  const shards = (await store.getSnapshotShards(box.h.key)).size;
  return {
    ledger,
    kept,
    shards,
    wallMs: median(walls),
    cpuMs: median(cpus),
    ledgerCalls: idleCalls,
    dynamoRequests: row.dynamoRequests,
    readUnits: row.readUnits,
    bytesRead: idleBytes,
    newMessageShardWrites: box.ledger.calls.get("putSnapshot") ?? 0,
    newMessageWriteUnits: (meter?.writeUnits ?? 0) - writeBefore,
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const option = (name: string) => {
    const i = args.indexOf(name);
    return i === -1 ? undefined : args[i + 1];
  };
  const sizes = (option("--sizes") ?? "1000,10000,50000,200000").split(",").map(Number);
  const polls = Number(option("--polls") ?? "5");
  console.log(
    `load average at start: ${loadavg()
      .map((n) => n.toFixed(2))
      .join(" ")}`,
  );
  const rows: Row[] = [];
  const dir = mkdtempSync(join(tmpdir(), "idle-poll-"));
  const dynalite = await startDynaliteStandIn();
  try {
    const tableName = uniqueName("ledger");
    await createLedgerTable(dynalite.dynamodb, tableName);
    for (const kept of sizes) {
      const sqlite = new SqliteLedger({ path: join(dir, `ledger-${kept}.sqlite`) });
      rows.push(await measure("SQLite (file)", sqlite, kept, polls));
      const client = dynalite.newClient();
      const meter = meterDynamoDb(client);
      const dynamo = new SnapshotsElsewhere(new DynamoDbLedger({ client, tableName }));
      rows.push(await measure("DynamoDB (dynalite)", dynamo, kept, polls, meter));
      console.log(JSON.stringify(rows.slice(-2)));
    }
  } finally {
    await dynalite.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(
    `load average at end: ${loadavg()
      .map((n) => n.toFixed(2))
      .join(" ")}`,
  );
  console.log(
    "| ledger | kept | shards | wall ms | CPU ms | ledger calls | DynamoDB requests | RCU | KB read | new message: shards written | WCU |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const r of rows) {
    const dynamo = r.ledger.startsWith("DynamoDB");
    console.log(
      `| ${r.ledger} | ${r.kept.toLocaleString("en")} | ${r.shards} | ${r.wallMs.toFixed(0)} | ${r.cpuMs.toFixed(0)} | ${r.ledgerCalls} | ${dynamo ? r.dynamoRequests : "-"} | ${dynamo ? r.readUnits : "-"} | ${(r.bytesRead / 1024).toFixed(0)} | ${r.newMessageShardWrites} | ${dynamo ? r.newMessageWriteUnits : "-"} |`,
    );
  }
}

await main();
