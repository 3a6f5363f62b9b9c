import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type {
  PollChainItem,
  PollChains,
  PollEnd,
  PollFailureKind,
  PollMessage,
} from "../../ports/poll-chains";
import { awsErrorName, mapAwsError } from "../aws/map-aws-error";
import { LEDGER_TABLE } from "./ledger-table";
import { callLedgerTable, ledgerTableContext } from "./ledger-table-call";

/** How a `DynamoDbPollChains` is built: an SDK client and the ledger table. */
export interface DynamoDbPollChainsOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
}

/** The sort key prefix of chain items; the partition key is the bare tenant id (see `LEDGER_TABLE`). */
const CHAIN_SORT_PREFIX = "poll-chain#";

const FAILURE_KINDS: readonly PollFailureKind[] = ["busy", "credentials", "retryable", "error"];

/** Attribute names of a chain item, all written through `#names`. */
const NAMES = {
  "#pk": LEDGER_TABLE.partitionKey,
  "#chain": "chain",
  "#seq": "seq",
  "#nextPollAt": "nextPollAt",
  "#pollUntil": "pollUntil",
  "#mailboxId": "mailboxId",
  "#firstStartedAt": "firstStartedAt",
  "#lastSucceededAt": "lastSucceededAt",
  "#lastPolledAt": "lastPolledAt",
  "#lastFailure": "lastFailure",
  "#lastFailureCode": "lastFailureCode",
} as const;

type Name = keyof typeof NAMES;

/** The names an expression uses, and only those (DynamoDB refuses unused ones). */
function namesOf(...expressions: string[]): Record<string, string> {
  const text = expressions.join(" ");
  return Object.fromEntries(
    (Object.keys(NAMES) as Name[]).filter((n) => new RegExp(`${n}\\b`).test(text)).map((n) => [n, NAMES[n]]),
  );
}

/**
 * The poll chains in the tenant's ledger table (docs/pipeline.md "Poll chains"): one item per
 * mailbox under partition key `<tenant>` (no `#`, so it is no mailbox's partition) and sort key
 * `poll-chain#<mailboxId>`, so the keeper reads all of them with one Query. Every write is one
 * conditional UpdateItem on what its writer saw, so a stale message, a duplicate delivery and a
 * keeper racing a poll each lose cleanly.
 */
export class DynamoDbPollChains implements PollChains {
  private readonly documents: DynamoDBDocumentClient;
  private readonly tableName: string;

  constructor(options: DynamoDbPollChainsOptions) {
    this.documents = DynamoDBDocumentClient.from(options.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.tableName = options.tableName;
  }

  /** One strongly consistent Query (paged by 1 MB: a few thousand mailboxes a page). */
  async list(tenant: string): Promise<PollChainItem[]> {
    const items: PollChainItem[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await callLedgerTable(this.tableName, "Query", () =>
        this.documents.send(
          new QueryCommand({
            TableName: this.tableName,
            KeyConditionExpression: "#pk = :pk AND begins_with(#sk, :prefix)",
            ExpressionAttributeNames: { "#pk": LEDGER_TABLE.partitionKey, "#sk": LEDGER_TABLE.sortKey },
            ExpressionAttributeValues: { ":pk": tenant, ":prefix": CHAIN_SORT_PREFIX },
            ConsistentRead: true,
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      for (const item of page.Items ?? []) {
        const parsed = itemToChain(item);
        if (parsed !== undefined) items.push(parsed);
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return items;
  }

  async start(
    tenant: string,
    mailboxId: string,
    chain: string,
    now: number,
    seen: PollChainItem | undefined,
    dueAt: number = now,
  ): Promise<boolean> {
    const update =
      "SET #chain = :chain, #seq = :zero, #nextPollAt = :due, #mailboxId = :mailboxId, #firstStartedAt = if_not_exists(#firstStartedAt, :now) REMOVE #pollUntil";
    const values: Record<string, unknown> = {
      ":chain": chain,
      ":zero": 0,
      ":now": now,
      ":due": dueAt,
      ":mailboxId": mailboxId,
    };
    let condition = "attribute_not_exists(#pk)";
    if (seen !== undefined) {
      condition = `#chain = :seenChain AND #seq = :seenSeq AND ${seen.pollUntil === undefined ? "attribute_not_exists(#pollUntil)" : "#pollUntil = :seenUntil"}`;
      values[":seenChain"] = seen.chain;
      values[":seenSeq"] = seen.seq;
      if (seen.pollUntil !== undefined) values[":seenUntil"] = seen.pollUntil;
    }
    return this.conditionalUpdate(tenant, mailboxId, update, condition, values);
  }

  async take(
    tenant: string,
    message: PollMessage,
    now: number,
    pollUntil: number,
  ): Promise<PollChainItem | undefined> {
    const update = "SET #pollUntil = :until";
    const condition =
      "#chain = :chain AND #seq = :seq AND (attribute_not_exists(#pollUntil) OR #pollUntil < :now)";
    try {
      const result = await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: chainKey(tenant, message.mailboxId),
          UpdateExpression: update,
          ConditionExpression: condition,
          ExpressionAttributeNames: namesOf(update, condition),
          ExpressionAttributeValues: {
            ":until": pollUntil,
            ":chain": message.chain,
            ":seq": message.seq,
            ":now": now,
          },
          ReturnValues: "ALL_NEW",
        }),
      );
      return result.Attributes === undefined ? undefined : itemToChain(result.Attributes);
    } catch (error) {
      if (awsErrorName(error) === "ConditionalCheckFailedException") return undefined;
      throw mapAwsError(error, ledgerTableContext(this.tableName, "UpdateItem"));
    }
  }

  async finish(tenant: string, message: PollMessage, pollUntil: number, end: PollEnd): Promise<boolean> {
    const sets = ["#seq = :next", "#nextPollAt = :nextPollAt", "#lastPolledAt = :at"];
    const removes = ["#pollUntil"];
    const values: Record<string, unknown> = {
      ":next": message.seq + 1,
      ":nextPollAt": end.nextPollAt,
      ":at": end.at,
      ":chain": message.chain,
      ":seq": message.seq,
      ":until": pollUntil,
    };
    recordOutcome(end, sets, removes, values);
    const update = `SET ${sets.join(", ")} REMOVE ${removes.join(", ")}`;
    const condition = "#chain = :chain AND #seq = :seq AND #pollUntil = :until";
    return this.conditionalUpdate(tenant, message.mailboxId, update, condition, values);
  }

  async amend(
    tenant: string,
    message: PollMessage,
    recorded: PollEnd,
    end: PollEnd,
    succeededBefore: number | undefined,
  ): Promise<boolean> {
    const sets = ["#nextPollAt = :nextPollAt", "#lastPolledAt = :at"];
    const removes: string[] = [];
    const values: Record<string, unknown> = {
      ":nextPollAt": end.nextPollAt,
      ":at": end.at,
      ":chain": message.chain,
      ":next": message.seq + 1,
      ":recordedAt": recorded.at,
    };
    recordOutcome(end, sets, removes, values);
    if (end.failure !== undefined) {
      // The success recorded at the session's end did not hold: the one before it stands.
      if (succeededBefore === undefined) removes.push("#lastSucceededAt");
      else {
        sets.push("#lastSucceededAt = :before");
        values[":before"] = succeededBefore;
      }
    }
    const update = `SET ${sets.join(", ")}${removes.length > 0 ? ` REMOVE ${removes.join(", ")}` : ""}`;
    const condition =
      "#chain = :chain AND #seq = :next AND attribute_not_exists(#pollUntil) AND #lastPolledAt = :recordedAt";
    return this.conditionalUpdate(tenant, message.mailboxId, update, condition, values);
  }

  /** One strongly consistent GetItem of the chain item's `pollUntil`. */
  async heldUntil(tenant: string, mailboxId: string): Promise<number | undefined> {
    const result = await callLedgerTable(this.tableName, "GetItem", () =>
      this.documents.send(
        new GetCommand({
          TableName: this.tableName,
          Key: chainKey(tenant, mailboxId),
          ProjectionExpression: "#pollUntil",
          ExpressionAttributeNames: { "#pollUntil": NAMES["#pollUntil"] },
          ConsistentRead: true,
        }),
      ),
    );
    const until = result.Item?.pollUntil;
    return typeof until === "number" ? until : undefined;
  }

  private async conditionalUpdate(
    tenant: string,
    mailboxId: string,
    update: string,
    condition: string,
    values: Record<string, unknown>,
  ): Promise<boolean> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: chainKey(tenant, mailboxId),
          UpdateExpression: update,
          ConditionExpression: condition,
          ExpressionAttributeNames: namesOf(update, condition),
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (error) {
      if (awsErrorName(error) === "ConditionalCheckFailedException") return false;
      throw mapAwsError(error, ledgerTableContext(this.tableName, "UpdateItem"));
    }
  }
}

/** The outcome's part of a finish or amend: the success time, or the failure and its code. */
function recordOutcome(
  end: PollEnd,
  sets: string[],
  removes: string[],
  values: Record<string, unknown>,
): void {
  if (end.failure === undefined) {
    sets.push("#lastSucceededAt = :at");
    removes.push("#lastFailure", "#lastFailureCode");
    return;
  }
  sets.push("#lastFailure = :kind");
  values[":kind"] = end.failure.kind;
  if (end.failure.code === undefined) removes.push("#lastFailureCode");
  else {
    sets.push("#lastFailureCode = :code");
    values[":code"] = end.failure.code;
  }
}

/** Primary key of a mailbox's chain item. */
export function chainKey(tenant: string, mailboxId: string): Record<string, string> {
  return {
    [LEDGER_TABLE.partitionKey]: tenant,
    [LEDGER_TABLE.sortKey]: `${CHAIN_SORT_PREFIX}${mailboxId}`,
  };
}

/** A chain item read back; undefined for an item under the prefix that is not one (never written by us). */
function itemToChain(item: Record<string, unknown>): PollChainItem | undefined {
  const { mailboxId, chain, seq, nextPollAt, firstStartedAt } = item;
  if (
    typeof mailboxId !== "string" ||
    typeof chain !== "string" ||
    typeof seq !== "number" ||
    typeof nextPollAt !== "number" ||
    typeof firstStartedAt !== "number"
  ) {
    return undefined;
  }
  const number = (name: string) => (typeof item[name] === "number" ? { [name]: item[name] } : {});
  const failure = FAILURE_KINDS.find((kind) => kind === item.lastFailure);
  return {
    mailboxId,
    chain,
    seq,
    nextPollAt,
    firstStartedAt,
    ...number("pollUntil"),
    ...number("lastSucceededAt"),
    ...number("lastPolledAt"),
    ...(failure === undefined ? {} : { lastFailure: failure }),
    ...(typeof item.lastFailureCode === "string" ? { lastFailureCode: item.lastFailureCode } : {}),
  } as PollChainItem;
}
