import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Duration, RemovalPolicy, Stage } from "aws-cdk-lib";
import { type IGrantable, PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import {
  type ApplicationLogLevel,
  Architecture,
  type IDestination,
  LoggingFormat,
  type RecursiveLoop,
  Runtime,
  SystemLogLevel,
  Tracing,
} from "aws-cdk-lib/aws-lambda";
import { type BundlingOptions, NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import { LogGroup } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { LOG_RETENTION_DAYS } from "../function-settings";

/** The repository root, so bundling works from any working directory (CLI, vitest). */
const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/**
 * How esbuild bundles each function (bench/bundle-size.ts measures exactly these options).
 *
 * The AWS SDK is bundled, not left to the runtime's copy: bench/README.md ("Lambda bundles and
 * cold start") measured a bundled handler importing 100-170 ms faster than one that loads the
 * runtime's unbundled `@aws-sdk/*` packages, and it pins the SDK to the versions the tests ran
 * with. The runtime's SDK is a version we do not choose, and lib-storage and lib-dynamodb are
 * not guaranteed to be in it. The price is bundle size
 * (copy-message stays under 1 MB only without Google's auth library, below).
 *
 * Source maps stay (the stack sets `--enable-source-maps`, so logged stack traces name our
 * files), but without `sourcesContent`: Node parses the map at load, and the embedded sources
 * tripled its size and cost up to ~150 ms of cold start; file and line need only the mappings.
 */
export const FUNCTION_BUNDLING = {
  minify: true,
  sourceMap: true,
  sourcesContent: false,
  // ESM output so handlers may use top-level await while building their dependencies;
  // the banner gives bundled CommonJS dependencies a `require`.
  format: OutputFormat.ESM,
  mainFields: ["module", "main"],
  banner:
    "import { createRequire as __createRequire } from 'node:module';const require = __createRequire(import.meta.url);",
  target: "node24",
  bundleAwsSDK: true,
  // Only `fetch-blob` asks for it, and only on a Node without a global ReadableStream (never on
  // nodejs24.x): left out, the bundle loses 61 KB and the require in that branch never runs.
  externalModules: ["web-streams-polyfill"],
  // The Gmail client without Google's auth library: see infra/bundling/google-auth-library-stub.ts.
  // esbuild resolves the path from the project root, where CDK runs it.
  esbuildArgs: { "--alias": "google-auth-library=./infra/bundling/google-auth-library-stub.ts" },
} satisfies BundlingOptions;

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
  /** Where Lambda sends an asynchronous invocation that failed all its attempts. */
  readonly onFailure?: IDestination;
  /** The lowest level the function logs (Lambda's JSON log format filters below it). */
  readonly logLevel: ApplicationLogLevel;
  /**
   * The validated tenant config as JSON, bundled with the code as `TENANT_CONFIG_BUNDLE_FILE`
   * (the function finds it through `TENANT_CONFIG_FILE`, shared/config/env.ts). Not in the
   * environment: Lambda's 4 KB there held only 5-10 mailboxes (docs/deploy.md, section 2).
   */
  readonly tenantConfigJson?: string;
  /** X-Ray tracing (default Active); the lister turns it off (docs/deploy.md section 7). */
  readonly tracing?: Tracing;
  /**
   * Lambda's recursive loop detection (default Terminate). The lister allows recursion: its poll
   * chain is lister -> poll queue -> lister (docs/lambda-handlers.md "Sub-minute polling").
   */
  readonly recursiveLoop?: RecursiveLoop;
}

/** The name of the tenant config file in each function's bundle. */
export const TENANT_CONFIG_BUNDLE_FILE = "tenant-config.json";

/** A path as one shell word (CDK runs local bundling commands with `bash -c`). */
function shellWord(path: string): string {
  return `'${path.replaceAll("'", `'"'"'`)}'`;
}

/**
 * Writes `json` under the app's output folder, named by its hash, and returns the bundling hook
 * that copies it into the bundle. The hash in the path also keys CDK's bundling cache, which is
 * shared by the stacks of one app: without it two tenants' lister bundles would be one asset.
 * Local bundling only: the copy reads a path of this machine, which a Docker build cannot see
 * (FUNCTION_BUNDLING runs esbuild locally; forceDockerBundling stays false).
 */
function bundledConfigHook(
  scope: Construct,
  json: string,
): { afterBundling(input: string, output: string): string[] } {
  const hash = createHash("sha256").update(json).digest("hex").slice(0, 16);
  const folder = join(Stage.of(scope)?.outdir ?? tmpdir(), "pop2gmail-bundled");
  const staged = join(folder, `tenant-config-${hash}.json`);
  mkdirSync(folder, { recursive: true });
  writeFileSync(staged, json);
  return {
    afterBundling: (_input, output) => [
      `cp ${shellWord(staged)} ${shellWord(join(output, TENANT_CONFIG_BUNDLE_FILE))}`,
    ],
  };
}

/**
 * One pipeline Lambda: `functions/<folder>/handler.ts` bundled locally by esbuild (no Docker),
 * nodejs24.x on arm64 (Node 22 ends in April 2027), X-Ray active tracing unless told otherwise, JSON logs filtered at
 * `logLevel`, its own log group with retention, and its own role that starts with nothing but
 * writing to that log group and traces; the stack adds exactly the data access it needs.
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
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memoryMiB,
      timeout: props.timeout,
      role: this.role,
      logGroup: this.logGroup,
      // Powertools Logger follows Lambda's level when the JSON format sets one.
      loggingFormat: LoggingFormat.JSON,
      applicationLogLevelV2: props.logLevel,
      systemLogLevelV2: SystemLogLevel.WARN,
      tracing: props.tracing ?? Tracing.ACTIVE,
      ...(props.recursiveLoop === undefined ? {} : { recursiveLoop: props.recursiveLoop }),
      ...(props.onFailure === undefined ? {} : { onFailure: props.onFailure }),
      environment: { ...props.environment },
      retryAttempts: props.asyncRetryAttempts,
      maxEventAge: props.asyncMaxEventAge,
      bundling: {
        ...FUNCTION_BUNDLING,
        forceDockerBundling: false,
        ...(props.tenantConfigJson === undefined
          ? {}
          : {
              commandHooks: {
                beforeBundling: () => [],
                beforeInstall: () => [],
                ...bundledConfigHook(this, props.tenantConfigJson),
              },
            }),
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
