import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { LedgerConflictError, ServiceRequestError } from "../../core/errors";
import type { LedgerEntry, LedgerState, MailboxKey, MessageKey } from "../../core/model";
import {
  type Ledger,
  type LedgerEntryFilter,
  type LedgerUpdate,
  MAX_SNAPSHOT_SHARD_BYTES,
  type MailboxSnapshot,
  passesLedgerFilter,
} from "../../ports/ledger";
import type { SessionLease, SessionLeases } from "../../ports/session-leases";
import { awsErrorName, mapAwsError } from "../aws/map-aws-error";
import {
  entryToItem,
  itemToEntry,
  leaseItemKey,
  mailboxPk,
  messageItemKey,
  SNAPSHOT_SORT_KEY,
  settableFields,
  snapshotItemKey,
  snapshotShardOf,
  statePk,
} from "./ledger-item";
import { LEDGER_TABLE } from "./ledger-table";
import { callLedgerTable, ledgerTableContext } from "./ledger-table-call";

/** How a `DynamoDbLedger` is built: an SDK client, the table, and a clock for leases. */
export interface DynamoDbLedgerOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** Epoch ms; injected so lease expiry is testable without waiting. Default `Date.now`. */
  readonly now?: () => number;
  /** Conditional puts in flight at once in `createListed`. Default 8. */
  readonly createConcurrency?: number;
}

/**
 * Items `findInState` reads per page (DynamoDB's `Limit`, counted before the filter): about 50 KB
 * of ~1 KB entries, at most ~7 read units, when the first page already holds a match.
 */
const FIND_PAGE_ITEMS = 50;

// Lease items carry a TTL well past their expiry so DynamoDB sweeps leases of crashed holders.
const LEASE_TTL_MARGIN_SECONDS = 3600;

/**
 * The ledger on DynamoDB: one item per message, and per mailbox one snapshot item and one item
 * per session slot (layout in `ledger-item.ts`). Every state change is a conditional write, so
 * two workers racing on one message cannot both win; the loser gets `LedgerConflictError`.
 *
 * Reads of single items are strongly consistent. `listByState` reads the `byState` index, which
 * DynamoDB keeps eventually consistent: a transition a few ms old may not show there yet.
 */
export class DynamoDbLedger implements Ledger, SessionLeases {
  private readonly documents: DynamoDBDocumentClient;
  private readonly tableName: string;
  private readonly now: () => number;
  private readonly createConcurrency: number;

  constructor(options: DynamoDbLedgerOptions) {
    this.documents = DynamoDBDocumentClient.from(options.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.tableName = options.tableName;
    this.now = options.now ?? Date.now;
    this.createConcurrency = options.createConcurrency ?? 8;
  }

  /** Reads one entry (strongly consistent); undefined when the UIDL was never listed. */
  async get(key: MessageKey): Promise<LedgerEntry | undefined> {
    const result = await callLedgerTable(this.tableName, "GetItem", () =>
      this.documents.send(
        new GetCommand({ TableName: this.tableName, Key: messageItemKey(key), ConsistentRead: true }),
      ),
    );
    return result.Item === undefined ? undefined : itemToEntry(result.Item);
  }

  /**
   * One conditional PutItem per entry (BatchWriteItem cannot carry a condition), a few in flight
   * at once. A UIDL that already exists fails its condition and is simply not returned.
   */
  async createListed(entries: readonly Omit<LedgerEntry, "state" | "attempts">[]): Promise<LedgerEntry[]> {
    const created: (LedgerEntry | undefined)[] = new Array(entries.length);
    let next = 0;
    const worker = async () => {
      while (next < entries.length) {
        const index = next++;
        const entry: LedgerEntry = { ...(entries[index] as LedgerEntry), state: "listed", attempts: 0 };
        created[index] = (await this.putIfAbsent(entry)) ? entry : undefined;
      }
    };
    const workers = Math.min(this.createConcurrency, entries.length);
    await Promise.all(Array.from({ length: workers }, worker));
    return created.filter((entry): entry is LedgerEntry => entry !== undefined);
  }

  /** A conditional UpdateItem: `#state IN (:from...)`; keeps the index key `statePk` in step. */
  async transition(
    key: MessageKey,
    from: readonly LedgerState[],
    to: LedgerState,
    update: LedgerUpdate = {},
  ): Promise<LedgerEntry> {
    if (from.length === 0) throw new LedgerConflictError(`no source state given for ${key.uidl} -> ${to}`);
    const names: Record<string, string> = { "#pk": LEDGER_TABLE.partitionKey, "#state": "state" };
    const values: Record<string, unknown> = {
      ":to": to,
      ":statePk": statePk(key, to),
    };
    const assignments = ["#state = :to", `${LEDGER_TABLE.stateIndex.partitionKey} = :statePk`];
    settableFields(update).forEach(([field, value], i) => {
      names[`#f${i}`] = field;
      values[`:f${i}`] = value;
      assignments.push(`#f${i} = :f${i}`);
    });
    const fromPlaceholders = from.map((state, i) => {
      values[`:from${i}`] = state;
      return `:from${i}`;
    });
    try {
      const result = await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: messageItemKey(key),
          UpdateExpression: `SET ${assignments.join(", ")}`,
          ConditionExpression: `attribute_exists(#pk) AND #state IN (${fromPlaceholders.join(", ")})`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: "ALL_NEW",
        }),
      );
      return itemToEntry(result.Attributes ?? {});
    } catch (error) {
      if (awsErrorName(error) === "ConditionalCheckFailedException") {
        throw new LedgerConflictError(
          `ledger entry ${key.tenant}/${key.mailboxId}/${key.uidl} is missing or not in ${from.join("|")} (wanted ${to})`,
          { cause: error },
        );
      }
      throw mapAwsError(error, ledgerTableContext(this.tableName, "UpdateItem"));
    }
  }

  /** Atomic `ADD attempts :1` on an existing entry; a missing entry is a conflict. */
  async recordAttempt(key: MessageKey): Promise<number> {
    try {
      const result = await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: messageItemKey(key),
          UpdateExpression: "ADD attempts :one",
          ConditionExpression: "attribute_exists(#pk)",
          ExpressionAttributeNames: { "#pk": LEDGER_TABLE.partitionKey },
          ExpressionAttributeValues: { ":one": 1 },
          ReturnValues: "UPDATED_NEW",
        }),
      );
      return Number(result.Attributes?.attempts ?? 0);
    } catch (error) {
      if (awsErrorName(error) === "ConditionalCheckFailedException") {
        throw new LedgerConflictError(`ledger entry ${key.tenant}/${key.mailboxId}/${key.uidl} is missing`, {
          cause: error,
        });
      }
      throw mapAwsError(error, ledgerTableContext(this.tableName, "UpdateItem"));
    }
  }

  /** One paged Query of the `byState` index per state, run side by side. */
  /**
   * The UIDL's own item (GetItem) and the items whose sort key continues it with a space (a Query
   * on the table's key, `begins_with`), so `UIDL12` is never mistaken for a generation of `UIDL1`.
   */
  async listByServerUidl(mailbox: MailboxKey, serverUidl: string): Promise<LedgerEntry[]> {
    const own = await this.get({ ...mailbox, uidl: serverUidl });
    const entries: LedgerEntry[] = own === undefined ? [] : [own];
    const prefix = messageItemKey({ ...mailbox, uidl: `${serverUidl} ` })[LEDGER_TABLE.sortKey] as string;
    for (const item of await this.queryPrefix(mailbox, prefix)) entries.push(itemToEntry(item));
    return entries;
  }

  /** Every item of the mailbox's partition whose sort key starts with `prefix` (paged). */
  private async queryPrefix(
    mailbox: MailboxKey,
    prefix: string,
    consistentRead = true,
  ): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await callLedgerTable(this.tableName, "Query", () =>
        this.documents.send(
          new QueryCommand({
            TableName: this.tableName,
            KeyConditionExpression: "#pk = :pk AND begins_with(#sk, :prefix)",
            ExpressionAttributeNames: { "#pk": LEDGER_TABLE.partitionKey, "#sk": LEDGER_TABLE.sortKey },
            ExpressionAttributeValues: { ":pk": mailboxPk(mailbox), ":prefix": prefix },
            ConsistentRead: consistentRead,
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      items.push(...(page.Items ?? []));
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return items;
  }

  async listByState(mailbox: MailboxKey, states: readonly LedgerState[]): Promise<LedgerEntry[]> {
    const perState = await Promise.all([...new Set(states)].map((state) => this.queryState(mailbox, state)));
    return perState.flat();
  }

  /**
   * Per state, the `byState` index (eventually consistent, so 0.5 read units per 4 KB read, and
   * 0.5 for a page that finds nothing) in pages of `FIND_PAGE_ITEMS` with the time test as a
   * filter, stopping at the first page that holds a match. A filter does not lower what a page
   * costs, the page size bounds it: a mailbox with nothing in `states` costs 0.5 units per state,
   * one with a match about 0.5 units per 4 KB of its first page (docs/pipeline.md "What counts as
   * a tenant problem"). The states are asked one after the other, and the first match ends it.
   */
  async findInState(
    mailbox: MailboxKey,
    states: readonly LedgerState[],
    where: LedgerEntryFilter,
  ): Promise<LedgerEntry | undefined> {
    const [attribute, operator, value] =
      "listedBefore" in where
        ? (["listedAt", "<", where.listedBefore] as const)
        : (["quarantinedAt", ">=", where.quarantinedSince] as const);
    const filter = {
      expression: `#at ${operator} :at`,
      names: { "#at": attribute },
      values: { ":at": value },
    };
    for (const state of new Set(states)) {
      for await (const page of this.stateIndexPages(mailbox, state, { filter, limit: FIND_PAGE_ITEMS })) {
        const found = page.find((entry) => passesLedgerFilter(entry, where));
        if (found !== undefined) return found;
      }
    }
    return undefined;
  }

  /** The mailbox's snapshot item (strongly consistent), or undefined before the first write. */
  async getSnapshot(mailbox: MailboxKey): Promise<MailboxSnapshot | undefined> {
    const result = await callLedgerTable(this.tableName, "GetItem", () =>
      this.documents.send(
        new GetCommand({ TableName: this.tableName, Key: snapshotItemKey(mailbox), ConsistentRead: true }),
      ),
    );
    const item = result.Item;
    if (item === undefined) return undefined;
    const body = item.body;
    return {
      version: Number(item.version),
      body: body instanceof Uint8Array ? body : new Uint8Array(),
    };
  }

  /**
   * Every snapshot shard in one eventually consistent Query on the mailbox's partition
   * (`begins_with(sk, "snapshot")`), paged by DynamoDB's 1 MB: 1 request up to ~65,000 identities,
   * 3 at 200,000 (docs/pipeline.md "Why the snapshot").
   */
  async getSnapshotShards(mailbox: MailboxKey): Promise<Map<number, MailboxSnapshot>> {
    const shards = new Map<number, MailboxSnapshot>();
    // Eventually consistent: half the read units. The snapshot is a cache, each shard's write is
    // conditional on its version, and a stale shard costs extra reads, never a wrong step
    // (docs/pipeline.md "Why the snapshot").
    for (const item of await this.queryPrefix(mailbox, SNAPSHOT_SORT_KEY, false)) {
      const shard = snapshotShardOf(String(item[LEDGER_TABLE.sortKey]));
      if (Number.isNaN(shard)) continue;
      const body = item.body;
      shards.set(shard, {
        version: Number(item.version),
        body: body instanceof Uint8Array ? body : new Uint8Array(),
      });
    }
    return shards;
  }

  /**
   * Conditional PutItem of one shard on its stored version. A DynamoDB item holds at most 400 KB,
   * so the core shards the snapshot (`MAX_SNAPSHOT_SHARD_BYTES`); a larger body fails with a
   * non-retryable `ServiceRequestError`.
   */
  async putSnapshot(
    mailbox: MailboxKey,
    body: Uint8Array,
    expectedVersion: number | undefined,
    shard = 0,
  ): Promise<void> {
    if (body.byteLength > MAX_SNAPSHOT_SHARD_BYTES) {
      // The limit every ledger keeps (below the 400 KB item, key and version included).
      throw new ServiceRequestError(
        "ledger",
        "ItemTooLarge",
        `snapshot shard of ${body.byteLength} bytes is above the ${MAX_SNAPSHOT_SHARD_BYTES}-byte limit`,
      );
    }
    const condition =
      expectedVersion === undefined
        ? {
            ConditionExpression: "attribute_not_exists(#pk)",
            ExpressionAttributeNames: { "#pk": LEDGER_TABLE.partitionKey },
          }
        : {
            ConditionExpression: "#version = :expected",
            ExpressionAttributeNames: { "#version": "version" },
            ExpressionAttributeValues: { ":expected": expectedVersion },
          };
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...snapshotItemKey(mailbox, shard), body, version: (expectedVersion ?? 0) + 1 },
          ...condition,
        }),
      );
    } catch (error) {
      if (awsErrorName(error) === "ConditionalCheckFailedException") {
        throw new LedgerConflictError(
          `snapshot shard ${shard} of ${mailbox.tenant}/${mailbox.mailboxId} is no longer at version ${expectedVersion ?? "none"}`,
          { cause: error },
        );
      }
      throw mapAwsError(error, ledgerTableContext(this.tableName, "PutItem"));
    }
  }

  /**
   * Tries slots 0..slots-1 in order with a conditional put that succeeds when the slot is free or
   * its lease has expired. With the default of one slot this is a single call.
   */
  async acquire(
    mailbox: MailboxKey,
    slots: number,
    holder: string,
    leaseMs: number,
  ): Promise<SessionLease | undefined> {
    const now = this.now();
    const expiresAtMs = now + leaseMs;
    for (let slot = 0; slot < slots; slot++) {
      try {
        await this.documents.send(
          new PutCommand({
            TableName: this.tableName,
            Item: {
              ...leaseItemKey(mailbox, slot),
              holder,
              expiresAtMs,
              [LEDGER_TABLE.ttlAttribute]: Math.ceil(expiresAtMs / 1000) + LEASE_TTL_MARGIN_SECONDS,
            },
            ConditionExpression: "attribute_not_exists(#pk) OR #expiresAtMs <= :now",
            ExpressionAttributeNames: { "#pk": LEDGER_TABLE.partitionKey, "#expiresAtMs": "expiresAtMs" },
            ExpressionAttributeValues: { ":now": now },
          }),
        );
        return { slot, holder };
      } catch (error) {
        if (awsErrorName(error) !== "ConditionalCheckFailedException") {
          throw mapAwsError(error, ledgerTableContext(this.tableName, "PutItem"));
        }
      }
    }
    return undefined;
  }

  /** Deletes the lease item only while `holder` still owns it. */
  async release(mailbox: MailboxKey, lease: SessionLease): Promise<void> {
    try {
      await this.documents.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: leaseItemKey(mailbox, lease.slot),
          ConditionExpression: "#holder = :holder",
          ExpressionAttributeNames: { "#holder": "holder" },
          ExpressionAttributeValues: { ":holder": lease.holder },
        }),
      );
    } catch (error) {
      if (awsErrorName(error) !== "ConditionalCheckFailedException") {
        throw mapAwsError(error, ledgerTableContext(this.tableName, "DeleteItem"));
      }
    }
  }

  private async putIfAbsent(entry: LedgerEntry): Promise<boolean> {
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: entryToItem(entry),
          ConditionExpression: "attribute_not_exists(#pk)",
          ExpressionAttributeNames: { "#pk": LEDGER_TABLE.partitionKey },
        }),
      );
      return true;
    } catch (error) {
      if (awsErrorName(error) === "ConditionalCheckFailedException") return false;
      throw mapAwsError(error, ledgerTableContext(this.tableName, "PutItem"));
    }
  }

  private async queryState(mailbox: MailboxKey, state: LedgerState): Promise<LedgerEntry[]> {
    const entries: LedgerEntry[] = [];
    for await (const page of this.stateIndexPages(mailbox, state)) entries.push(...page);
    return entries;
  }

  /**
   * The mailbox's entries in one state from the `byState` index, a page at a time (DynamoDB's 1 MB,
   * or `Limit` items before `filter`), so a caller can stop early.
   */
  private async *stateIndexPages(
    mailbox: MailboxKey,
    state: LedgerState,
    narrow: {
      readonly filter?: {
        readonly expression: string;
        readonly names: Record<string, string>;
        readonly values: Record<string, unknown>;
      };
      readonly limit?: number;
    } = {},
  ): AsyncGenerator<LedgerEntry[]> {
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await callLedgerTable(this.tableName, "Query", () =>
        this.documents.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: LEDGER_TABLE.stateIndex.name,
            KeyConditionExpression: "#statePk = :statePk",
            FilterExpression: narrow.filter?.expression,
            ExpressionAttributeNames: {
              "#statePk": LEDGER_TABLE.stateIndex.partitionKey,
              ...narrow.filter?.names,
            },
            ExpressionAttributeValues: { ":statePk": statePk(mailbox, state), ...narrow.filter?.values },
            Limit: narrow.limit,
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      yield (page.Items ?? []).map(itemToEntry);
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
  }
}
