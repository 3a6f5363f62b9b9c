import { CfnOutput, Duration, Validations } from "aws-cdk-lib";
import { PolicyStatement } from "aws-cdk-lib/aws-iam";
import { type ApplicationLogLevel, type FunctionUrl, FunctionUrlAuthType } from "aws-cdk-lib/aws-lambda";
import { Construct } from "constructs";
import { secretLeaseMailboxId } from "../../shared/adapters/secrets-manager/secret-write-lock";
import { onboardingSecretOf } from "../../shared/adapters/web/onboarding-app";
import { ENV_NAMES } from "../../shared/config/env";
import { secretNamesOf } from "../../shared/config/secret-reference";
import type { TenantConfig } from "../../shared/config/tenant-config";
import { TENANT_TAG_KEY } from "../access-statements";
import { secretArn, secretGrantArns, secretNames } from "../secret-arns";
import { PipelineFunction, TENANT_CONFIG_BUNDLE_FILE } from "./pipeline-function";

/** The stack output `pop2gmail invite --url` takes on AWS. */
export const ONBOARDING_URL_OUTPUT = "OnboardingUrl";

export interface OnboardingUrlProps {
  readonly config: TenantConfig;
  /** The tenant's config as the functions read it (bundled as `TENANT_CONFIG_BUNDLE_FILE`). */
  readonly tenantConfigJson: string;
  readonly ledgerTableName: string;
  readonly ledgerStateIndexArn: string;
  readonly ledgerTableArn: string;
  readonly keyArn: string;
  readonly logLevel: ApplicationLogLevel;
}

/**
 * The onboarding pages on AWS (docs/onboarding.md): one function behind a Lambda Function URL
 * (HTTPS, no IAM auth: the signed link is the authorization, and the handler checks it before
 * anything else). Least privilege: it reads the tenant's onboarding secret and the Google secrets
 * of its OAuth mailboxes, may write only those Google secrets, reads the ledger's state index
 * (the status view), and nothing else: no POP3 password, no archive, no queue.
 */
export class OnboardingUrl extends Construct {
  readonly fn: PipelineFunction;
  readonly url: FunctionUrl;

  constructor(scope: Construct, id: string, props: OnboardingUrlProps) {
    super(scope, id);
    const { config } = props;
    // By secret name: a `name#key` reference is a key of the tenant's shared secret.
    const googleSecrets = secretNamesOf(
      config.mailboxes.filter((m) => m.gmail.auth === "oauth").map((m) => m.gmail.credentialsSecret),
    );
    this.fn = new PipelineFunction(this, "Onboarding", {
      folder: "onboarding",
      description: `pop2gmail ${config.tenant}: the onboarding pages (connect Gmail by link)`,
      memoryMiB: 256,
      // A page, or a token exchange and a check at Google (each bounded at 15 s).
      timeout: Duration.seconds(45),
      environment: {
        [ENV_NAMES.tenantConfigFile]: TENANT_CONFIG_BUNDLE_FILE,
        [ENV_NAMES.ledgerTable]: props.ledgerTableName,
      },
      tenantConfigJson: props.tenantConfigJson,
      logLevel: props.logLevel,
      asyncRetryAttempts: 0,
      asyncMaxEventAge: Duration.minutes(1),
    });
    const tagged = { StringEquals: { [`aws:ResourceTag/${TENANT_TAG_KEY}`]: config.tenant } };
    const googleArns = secretGrantArns(this, config.tenant, googleSecrets, secretNames(config).all);
    this.fn.allow(
      new PolicyStatement({
        sid: "OnboardingSecretsRead",
        actions: ["secretsmanager:GetSecretValue"],
        // The onboarding secret by name: `onboardingSecret` may be a key of the tenant secret.
        resources: [
          ...new Set([
            ...secretNamesOf([onboardingSecretOf(config, "aws")]).map((name) => secretArn(this, name)),
            ...googleArns,
          ]),
        ],
        conditions: tagged,
      }),
      new PolicyStatement({
        sid: "GoogleSecretsWrite",
        actions: ["secretsmanager:PutSecretValue"],
        resources: googleArns,
        conditions: tagged,
      }),
      new PolicyStatement({
        sid: "LedgerStatusRead",
        actions: ["dynamodb:Query"],
        resources: [props.ledgerStateIndexArn],
      }),
      // Writers of a shared secret take turns through a lease item (secret-write-lock.ts), whose
      // partition key is `<tenant>#secret:<name>`: no other item of the ledger can be written.
      new PolicyStatement({
        sid: "SecretWriteLease",
        actions: ["dynamodb:PutItem", "dynamodb:DeleteItem"],
        resources: [props.ledgerTableArn],
        // ForAllValues alone would also match a request without the key: Null false requires it.
        conditions: {
          "ForAllValues:StringLike": {
            "dynamodb:LeadingKeys": [`${config.tenant}#${secretLeaseMailboxId("*")}`],
          },
          Null: { "dynamodb:LeadingKeys": "false" },
        },
      }),
      new PolicyStatement({ sid: "TenantKeyDecrypt", actions: ["kms:Decrypt"], resources: [props.keyArn] }),
    );
    this.url = this.fn.function.addFunctionUrl({ authType: FunctionUrlAuthType.NONE });
    new CfnOutput(scope, ONBOARDING_URL_OUTPUT, {
      value: this.url.url,
      description: "Where the onboarding links point (pop2gmail invite --url)",
    });
    Validations.of(this.fn.role).acknowledge({
      id: "AwsSolutions-IAM5[Resource::*]",
      reason:
        "X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions, so AWS requires Resource '*' for them (and only them).",
    });
  }
}
