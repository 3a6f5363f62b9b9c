import { RemovalPolicy, Stack } from "aws-cdk-lib";
import { AccountRootPrincipal, PolicyDocument, PolicyStatement } from "aws-cdk-lib/aws-iam";
import { Key } from "aws-cdk-lib/aws-kms";
import { Construct } from "constructs";

/** Key actions that make every archived message unreadable: only the break-glass role may. */
export const KEY_DESTRUCTIVE_ACTIONS = ["kms:ScheduleKeyDeletion", "kms:DisableKey"] as const;

/** The role allowed to disable or delete a tenant key, unless `-c breakGlassRoleName=` names another. */
export const DEFAULT_BREAK_GLASS_ROLE_NAME = "pop2gmail-break-glass";

/**
 * The tenant's own KMS key: encrypts the archive bucket, the ledger table, the queues and the
 * alarm topic. One key per tenant, so a customer's data can be cut off (or handed over) alone.
 *
 * The key policy lets the account administer the key through IAM as usual (CloudFormation
 * updates it, roles get their grants), except disabling it or scheduling its deletion: that
 * would make the archive unreadable, so only the named break-glass role may, and that role still
 * needs an IAM policy allowing it. The alarms add their CloudWatch statement (TenantAlarms).
 */
export class TenantKey extends Construct {
  readonly key: Key;

  constructor(scope: Construct, id: string, props: { tenant: string; breakGlassRoleName: string }) {
    super(scope, id);
    const stack = Stack.of(this);
    const breakGlassRoleArn = stack.formatArn({
      service: "iam",
      region: "",
      resource: "role",
      resourceName: props.breakGlassRoleName,
    });
    this.key = new Key(this, "Key", {
      description: `pop2gmail ${props.tenant}: archive, ledger, queues and alarm topic`,
      alias: `alias/pop2gmail/${props.tenant}`,
      enableKeyRotation: true,
      // Deleting the key would make the archive unreadable: never as a side effect of a stack delete.
      removalPolicy: RemovalPolicy.RETAIN,
      policy: new PolicyDocument({
        statements: [
          new PolicyStatement({
            sid: "AccountAdministersTheKeyExceptDisablingOrDeletingIt",
            principals: [new AccountRootPrincipal()],
            notActions: [...KEY_DESTRUCTIVE_ACTIONS],
            resources: ["*"],
          }),
          // A condition rather than the role as principal: a key policy naming a role that does
          // not exist (yet) is rejected by KMS, and the break-glass role is created by hand.
          new PolicyStatement({
            sid: "OnlyTheBreakGlassRoleMayDisableOrDeleteTheKey",
            principals: [new AccountRootPrincipal()],
            actions: [...KEY_DESTRUCTIVE_ACTIONS],
            resources: ["*"],
            conditions: { ArnEquals: { "aws:PrincipalArn": breakGlassRoleArn } },
          }),
        ],
      }),
    });
  }
}
