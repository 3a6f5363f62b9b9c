import { RemovalPolicy } from "aws-cdk-lib";
import { PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Key } from "aws-cdk-lib/aws-kms";
import { Construct } from "constructs";

/**
 * The tenant's own KMS key: encrypts the archive bucket, the ledger table, both queues and the
 * alarm topic. One key per tenant, so a customer's data can be cut off (or handed over) alone.
 */
export class TenantKey extends Construct {
  readonly key: Key;

  constructor(scope: Construct, id: string, props: { tenant: string }) {
    super(scope, id);
    this.key = new Key(this, "Key", {
      description: `pop2gmail ${props.tenant}: archive, ledger, queues and alarm topic`,
      alias: `alias/pop2gmail/${props.tenant}`,
      enableKeyRotation: true,
      // Deleting the key would make the archive unreadable: never as a side effect of a stack delete.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // CloudWatch alarms publish to the KMS-encrypted topic as the CloudWatch service, which
    // needs the key; in a key policy "*" means "this key".
    this.key.addToResourcePolicy(
      new PolicyStatement({
        sid: "AllowCloudWatchAlarmsToPublishToTheEncryptedTopic",
        principals: [new ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["kms:Decrypt", "kms:GenerateDataKey*"],
        resources: ["*"],
      }),
    );
  }
}
