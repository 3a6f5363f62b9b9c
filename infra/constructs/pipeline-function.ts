import { fileURLToPath } from "node:url";
import { type Duration, RemovalPolicy } from "aws-cdk-lib";
import { type IGrantable, PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Architecture, Runtime } from "aws-cdk-lib/aws-lambda";
import { NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import { LogGroup } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { LOG_RETENTION_DAYS } from "../function-settings";

/** The repository root, so bundling works from any working directory (CLI, vitest). */
const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface PipelineFunctionProps {
  /** Folder under `functions/` holding `handler.ts`. */
  readonly folder: string;
  readonly description: string;
  readonly memoryMiB: number;
  readonly timeout: Duration;
  readonly environment: Readonly<Record<string, string>>;
  /** Retries of asynchronous invocations (EventBridge, the lister's invoke). */
  readonly asyncRetryAttempts: number;
  /** How long an asynchronous event may wait (throttled) before Lambda drops it. */
  readonly asyncMaxEventAge: Duration;
}

/**
 * One pipeline Lambda: `functions/<folder>/handler.ts` bundled locally by esbuild (no Docker),
 * nodejs22.x on arm64, its own log group with retention, and its own role that starts with
 * nothing but writing to that log group; the stack adds exactly the data access it needs.
 */
export class PipelineFunction extends Construct implements IGrantable {
  readonly function: NodejsFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: PipelineFunctionProps) {
    super(scope, id);
    this.logGroup = new LogGroup(this, "Logs", {
      retention: LOG_RETENTION_DAYS,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // Our own role instead of the AWSLambdaBasicExecutionRole managed policy, which may write
    // to every log group in the account (cdk-nag AwsSolutions-IAM4).
    this.role = new Role(this, "Role", {
      assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
      description: `pop2gmail ${props.folder}`,
    });
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: "WriteOwnLogGroup",
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        // The log group's Arn attribute ends in ":*", which covers its log streams only.
        resources: [this.logGroup.logGroupArn],
      }),
    );
    this.function = new NodejsFunction(this, "Function", {
      entry: `${PROJECT_ROOT}functions/${props.folder}/handler.ts`,
      handler: "handler",
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
      description: props.description,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memoryMiB,
      timeout: props.timeout,
      role: this.role,
      logGroup: this.logGroup,
      environment: { ...props.environment },
      retryAttempts: props.asyncRetryAttempts,
      maxEventAge: props.asyncMaxEventAge,
      bundling: {
        minify: true,
        sourceMap: true,
        // ESM output so handlers may use top-level await while building their dependencies;
        // the banner gives bundled CommonJS dependencies a `require`.
        format: OutputFormat.ESM,
        mainFields: ["module", "main"],
        banner:
          "import { createRequire as __createRequire } from 'node:module';const require = __createRequire(import.meta.url);",
        target: "node22",
        forceDockerBundling: false,
        // @aws-sdk/* stays external (the default for nodejs22.x): the runtime ships it, which
        // keeps bundles small and cold starts short.
      },
    });
  }

  get grantPrincipal() {
    return this.role.grantPrincipal;
  }

  /** Adds statements to this function's role. */
  allow(...statements: PolicyStatement[]): void {
    for (const statement of statements) this.role.addToPrincipalPolicy(statement);
  }
}
