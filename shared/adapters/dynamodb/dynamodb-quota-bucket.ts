import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { Clock } from "../../ports/clock";
import { awsErrorName } from "../aws/map-aws-error";
import {
  GMAIL_QUOTA_UNITS,
  type QuotaBucket,
  type RateLimitSettings,
} from "../gmail/gmail-user-rate-limiter";
import { QuotaTokenBucket } from "../gmail/quota-token-bucket";
import { LEDGER_TABLE } from "./ledger-table";

/** Where the quota items live: the tenant's ledger table. */
export interface DynamoDbQuotaBucketOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly tenant: string;
  readonly clock: Clock;
}

/** Quota items outlive their last use by a day, then DynamoDB's TTL sweeps them. */
const QUOTA_TTL_SECONDS = 86_400;

/**
 * One Gmail user's quota as a token bucket in DynamoDB, shared by every copier container of the
 * tenant (docs/lambda-handlers.md, "Gmail pacing on AWS"): Gmail counts a user's units across all
 * callers, so containers that each paced themselves would together exceed it.
 *
 * The item (pk `<tenant>#gmail#<user>`, sk `quota`; a mailbox's pk has one `#`, so it cannot
 * collide) holds the tokens left at `at` (epoch ms) and a Retry-After `heldUntil`. A take reads
 * it (strongly consistent), refills by the time passed, and if enough units are there writes the
 * rest back on condition that `at` is still what it read: of two containers racing, one wins and
 * the other reads again. Too few units: it sleeps until they would be there. Two requests per
 * import (a read and a write), more under contention. A DynamoDB fault is not a Gmail fault: that
 * take falls back to this container's own bucket, and Gmail's 429 stays the backstop.
 */
export class DynamoDbQuotaBucket implements QuotaBucket {
  readonly #documents: DynamoDBDocumentClient;
  readonly #tableName: string;
  readonly #key: Record<string, string>;
  readonly #unitsPerMs: number;
  /** Units a new item starts with, and the most one take may cost. */
  readonly #capacity: number;
  /** The most units the item holds: `capacity` plus the slack (see `forUser`). */
  readonly #ceiling: number;
  readonly #clock: Clock;
  readonly #local: QuotaTokenBucket;
  /** This container's own Retry-After hold, in force before the item's write lands. */
  #heldUntil = 0;
  /** Takes of this container, one at a time in arrival order (as `QuotaTokenBucket` serves them). */
  #turn: Promise<void> = Promise.resolve();

  constructor(
    options: DynamoDbQuotaBucketOptions,
    user: string,
    unitsPerMinute: number,
    capacity: number,
    slack = 0,
  ) {
    this.#documents = DynamoDBDocumentClient.from(options.client);
    this.#tableName = options.tableName;
    this.#key = {
      [LEDGER_TABLE.partitionKey]: `${options.tenant}#gmail#${user.toLowerCase()}`,
      [LEDGER_TABLE.sortKey]: "quota",
    };
    this.#unitsPerMs = unitsPerMinute / 60_000;
    this.#capacity = capacity;
    this.#ceiling = capacity + slack;
    this.#clock = options.clock;
    this.#local = new QuotaTokenBucket(unitsPerMinute, capacity, options.clock);
  }

  /**
   * The factory `GmailRateLimiters` takes (`QuotaBucketFactory`), for one tenant's table. The item
   * may hold one import's units beyond the limiter's burst: the containers reach it a round trip
   * or two after it refills, and without the slack the units of that gap would be lost (measured:
   * 3.6 of 4 imports/s with five containers, bench/README.md). It lets through at most one import
   * more than the quota in any minute; Gmail's 429 is the backstop.
   */
  static forUser(
    options: DynamoDbQuotaBucketOptions,
    user: string,
    settings: RateLimitSettings,
    capacity: number,
  ): DynamoDbQuotaBucket {
    return new DynamoDbQuotaBucket(
      options,
      user,
      settings.unitsPerMinute,
      capacity,
      GMAIL_QUOTA_UNITS.import,
    );
  }

  /**
   * Resolves once `units` have been taken. A container's takes wait their turn, first come first
   * served: one of them at a time reads and writes the item, the rest wait here, not on DynamoDB.
   */
  take(units: number): Promise<void> {
    const taken = this.#turn.then(() => this.#takeShared(units));
    this.#turn = taken.catch(() => undefined);
    return taken;
  }

  async #takeShared(units: number): Promise<void> {
    // A cost above the burst could never be paid in one go; cap it so it still goes through.
    const cost = Math.min(units, this.#capacity);
    for (;;) {
      let state: { tokens: number; at: number | undefined; heldUntil: number };
      try {
        state = await this.#read();
      } catch {
        return this.#local.take(units);
      }
      const now = this.#clock.now();
      const heldUntil = Math.max(state.heldUntil, this.#heldUntil);
      if (now < heldUntil) {
        await this.#clock.sleep(heldUntil - now);
        continue;
      }
      const available = Math.min(
        this.#ceiling,
        state.tokens + Math.max(0, now - (state.at ?? now)) * this.#unitsPerMs,
      );
      if (available < cost) {
        await this.#clock.sleep(Math.max(1, Math.ceil((cost - available) / this.#unitsPerMs)));
        continue;
      }
      try {
        await this.#documents.send(
          new UpdateCommand({
            TableName: this.#tableName,
            Key: this.#key,
            UpdateExpression: "SET tokens = :tokens, #at = :now, #ttl = :ttl",
            ConditionExpression: state.at === undefined ? "attribute_not_exists(#at)" : "#at = :at",
            ExpressionAttributeNames: { "#at": "at", "#ttl": LEDGER_TABLE.ttlAttribute },
            ExpressionAttributeValues: {
              ":tokens": available - cost,
              ":now": now,
              ":ttl": Math.ceil(now / 1000) + QUOTA_TTL_SECONDS,
              ...(state.at === undefined ? {} : { ":at": state.at }),
            },
          }),
        );
        return;
      } catch (error) {
        // Another container took units since the read: read again.
        if (awsErrorName(error) === "ConditionalCheckFailedException") continue;
        return this.#local.take(units);
      }
    }
  }

  /** Records the hold for every container (only ever moved later); never rejects. */
  async holdUntil(epochMs: number): Promise<void> {
    this.#heldUntil = Math.max(this.#heldUntil, epochMs);
    this.#local.holdUntil(epochMs);
    try {
      await this.#documents.send(
        new UpdateCommand({
          TableName: this.#tableName,
          Key: this.#key,
          UpdateExpression: "SET heldUntil = :until, #ttl = :ttl",
          ConditionExpression: "attribute_not_exists(heldUntil) OR heldUntil < :until",
          ExpressionAttributeNames: { "#ttl": LEDGER_TABLE.ttlAttribute },
          ExpressionAttributeValues: {
            ":until": epochMs,
            ":ttl": Math.ceil(epochMs / 1000) + QUOTA_TTL_SECONDS,
          },
        }),
      );
    } catch {
      // A later hold is already there, or DynamoDB failed: this container holds back anyway.
    }
  }

  async #read(): Promise<{ tokens: number; at: number | undefined; heldUntil: number }> {
    const { Item } = await this.#documents.send(
      new GetCommand({ TableName: this.#tableName, Key: this.#key, ConsistentRead: true }),
    );
    const at = typeof Item?.at === "number" ? Item.at : undefined;
    return {
      tokens: at === undefined ? this.#capacity : Number(Item?.tokens ?? this.#capacity),
      at,
      heldUntil: typeof Item?.heldUntil === "number" ? Item.heldUntil : 0,
    };
  }
}
