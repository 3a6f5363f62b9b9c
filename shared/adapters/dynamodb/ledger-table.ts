/**
 * The ledger table's key schema, shared by `DynamoDbLedger` and the CDK stack so the two cannot
 * drift. One table per tenant; items:
 * - message:  pk = `<tenant>#<mailboxId>`, sk = `msg#<uidl>`
 * - snapshot: pk = `<tenant>#<mailboxId>`, sk = `snapshot`
 * - lease:    pk = `<tenant>#<mailboxId>`, sk = `lease#<slot>`
 * The `byState` index (pk `statePk` = `<tenant>#<mailboxId>#<state>`) lists a mailbox's
 * messages in one state without a scan. `expiresAt` (epoch seconds) is the TTL attribute.
 */
export const LEDGER_TABLE = {
  partitionKey: "pk",
  sortKey: "sk",
  stateIndex: { name: "byState", partitionKey: "statePk", sortKey: "sk" },
  ttlAttribute: "expiresAt",
} as const;
