import { RemovalPolicy } from "aws-cdk-lib";
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from "aws-cdk-lib/aws-dynamodb";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { Construct } from "constructs";
import { LEDGER_TABLE } from "../../shared/adapters/dynamodb/ledger-table";

/**
 * The tenant's ledger: one item per (mailbox, UIDL) with its state. Keys and index come from
 * `LEDGER_TABLE`, the same constant `DynamoDbLedger` uses, so the two cannot drift.
 */
export class LedgerTable extends Construct {
  readonly table: Table;

  constructor(scope: Construct, id: string, props: { key: IKey }) {
    super(scope, id);
    const { partitionKey, sortKey, stateIndex, ttlAttribute } = LEDGER_TABLE;
    this.table = new Table(this, "Table", {
      partitionKey: { name: partitionKey, type: AttributeType.STRING },
      sortKey: { name: sortKey, type: AttributeType.STRING },
      // A mailbox costs a few requests a minute: on-demand is cheaper than any provisioned floor.
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: props.key,
      timeToLiveAttribute: ttlAttribute,
      // The ledger is what proves a message may be deleted from POP3: never lose it by accident.
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: stateIndex.name,
      partitionKey: { name: stateIndex.partitionKey, type: AttributeType.STRING },
      sortKey: { name: stateIndex.sortKey, type: AttributeType.STRING },
      projectionType: ProjectionType.ALL,
    });
  }

  /** The ARN of the `byState` index, for IAM statements that name it exactly. */
  get stateIndexArn(): string {
    return `${this.table.tableArn}/index/${LEDGER_TABLE.stateIndex.name}`;
  }
}
