import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand } from "@aws-sdk/lib-dynamodb";
import type { MailboxKey } from "../../core/model";
import type { SessionSlots } from "../../ports/session-leases";
import { mapAwsError } from "../aws/map-aws-error";
import { leaseItemKey } from "./ledger-item";

/**
 * A strongly consistent look at one of `DynamoDbLedger`'s lease items, for a chain poll's hold
 * (shared/core/chain-session-leases.ts): free when there is no item or its lease has expired
 * (the same test as `DynamoDbLedger.acquire`).
 */
export class DynamoDbSessionSlots implements SessionSlots {
  private readonly documents: DynamoDBDocumentClient;

  constructor(
    private readonly options: { readonly client: DynamoDBClient; readonly tableName: string; now(): number },
  ) {
    this.documents = DynamoDBDocumentClient.from(options.client);
  }

  async slotFree(mailbox: MailboxKey, slot: number): Promise<boolean> {
    try {
      const result = await this.documents.send(
        new GetCommand({
          TableName: this.options.tableName,
          Key: leaseItemKey(mailbox, slot),
          ProjectionExpression: "#expiresAtMs",
          ExpressionAttributeNames: { "#expiresAtMs": "expiresAtMs" },
          ConsistentRead: true,
        }),
      );
      const expiresAtMs = result.Item?.expiresAtMs;
      return typeof expiresAtMs !== "number" || expiresAtMs <= this.options.now();
    } catch (error) {
      throw mapAwsError(error, {
        service: "ledger",
        action: "dynamodb:GetItem",
        resource: this.options.tableName,
      });
    }
  }
}
