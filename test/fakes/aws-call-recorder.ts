import { AsyncLocalStorage } from "node:async_hooks";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LambdaClient } from "@aws-sdk/client-lambda";
import type { InitializeMiddleware, MetadataBearer, MiddlewareStack } from "@smithy/types";

/**
 * Records every AWS call the handlers make, as IAM will authorize it: an SDK middleware on each
 * client notes service, API operation, the IAM action(s) it needs (`SendMessageBatch` needs
 * `sqs:SendMessage`, a multipart upload needs `s3:PutObject`), each resource ARN, and the KMS
 * requests AWS makes on the caller's behalf for SSE-KMS (with their encryption context).
 *
 * Calls are attributed to the function whose handler is running (`within`), through
 * AsyncLocalStorage, so one set of clients shared by the three handlers (the pipeline rig) still
 * tells which role needs what; calls outside any handler (test set-up, assertions) are ignored.
 * The IAM proof (test/infra/iam-proof.test.ts) checks every recorded request against the role
 * of the function that made it.
 */

/** The account and region the stand-ins' ARNs are written in; the proof maps names, not these. */
export const RECORDED_ACCOUNT = "000000000000";
export const RECORDED_REGION = "us-east-1";

/** One authorization AWS performs for a call. */
export interface RecordedIamRequest {
  /** The IAM action, e.g. `s3:PutObject`, `kms:GenerateDataKey`. */
  readonly action: string;
  /** The resource ARN as the stand-ins name it; for KMS, the ARN of the resource whose key is used. */
  readonly resource: string;
  /** For a KMS request: the resource whose encryption key AWS uses (the key itself is the stack's). */
  readonly keyOf?: string;
  /** Condition keys the request carries (`s3:prefix`, `kms:ViaService`, `kms:EncryptionContext:*`). */
  readonly context?: Readonly<Record<string, string>>;
}

/** One SDK call with the authorizations it needs. */
export interface RecordedAwsCall {
  /** The function folder whose handler made the call (`copy-message`, ...). */
  readonly function: string;
  readonly service: string;
  /** The API operation, e.g. `SendMessageBatch`. */
  readonly operation: string;
  /** The call failed with a missing object/key (S3 then also checks `s3:ListBucket`). */
  readonly notFound?: boolean;
  readonly requests: readonly RecordedIamRequest[];
}

/** The file format the recorder writes: calls plus the tenant configs they were made under. */
export interface RecordedCallsFile {
  readonly source: string;
  /** Secret names by kind, so the proof can map a stand-in secret to a deployed one. */
  readonly secrets: { readonly pop3: readonly string[]; readonly google: readonly string[] };
  /** The tenant the stand-in object keys start with. */
  readonly tenant: string;
  readonly calls: readonly RecordedAwsCall[];
}

/** The folder recorded-call files go to (one file per recorder), unless `POP2GMAIL_AWS_CALLS_DIR` says otherwise. */
export function recordedCallsDir(): string {
  return process.env.POP2GMAIL_AWS_CALLS_DIR ?? join(tmpdir(), "pop2gmail-aws-calls");
}

/** Any SDK v3 client: what the recorder needs of it is its middleware stack. */
interface MiddlewareClient<I extends object, O extends MetadataBearer> {
  readonly middlewareStack: MiddlewareStack<I, O>;
}

export class AwsCallRecorder {
  private readonly current = new AsyncLocalStorage<string>();
  private readonly recorded: RecordedAwsCall[] = [];

  /** Runs `body` as function `fn`: SDK calls made inside are attributed to it. */
  within<T>(fn: string, body: () => T): T {
    return this.current.run(fn, body);
  }

  /** Adds the recording middleware to an SDK v3 client of `service` (`s3`, `sqs`, `dynamodb`, `secretsmanager`, `lambda`). */
  attach<I extends object, O extends MetadataBearer>(client: MiddlewareClient<I, O>, service: string): void {
    const middleware: InitializeMiddleware<I, O> = (next, context) => async (args) => {
      const fn = this.current.getStore();
      if (fn === undefined) return next(args);
      const operation = (context.commandName ?? "Unknown").replace(/Command$/, "");
      const input = (args.input ?? {}) as Record<string, unknown>;
      try {
        const result = await next(args);
        this.note(fn, service, operation, input, false);
        return result;
      } catch (error) {
        this.note(fn, service, operation, input, isNotFound(error));
        throw error;
      }
    };
    client.middlewareStack.add(middleware, { step: "initialize", name: "awsCallRecorder", override: true });
  }

  /**
   * A Lambda client that never leaves the process: the real SDK client and `InvokeCommand`, the
   * recorder notes each call, and `onInvoke` receives the payload in place of Lambda (202).
   */
  lambdaClient(onInvoke: (functionName: string, payload: unknown) => void): LambdaClient {
    const client = new LambdaClient({
      region: RECORDED_REGION,
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
    });
    this.attach(client, "lambda");
    // After the recorder (lower priority runs inner): answers as Lambda does for InvocationType Event.
    client.middlewareStack.add(
      () => async (args) => {
        const input = args.input as { FunctionName?: string; Payload?: Uint8Array };
        const text = input.Payload === undefined ? "null" : new TextDecoder().decode(input.Payload);
        onInvoke(String(input.FunctionName), JSON.parse(text));
        return { output: { $metadata: { httpStatusCode: 202 }, StatusCode: 202 }, response: {} } as never;
      },
      { step: "initialize", name: "lambdaInProcess", priority: "low" },
    );
    return client;
  }

  calls(): RecordedAwsCall[] {
    return [...this.recorded];
  }

  /** Forgets the calls recorded so far (a suite that proves them itself need not write them). */
  discard(): void {
    this.recorded.length = 0;
  }

  /**
   * Writes the calls (if any) to `<dir>/<source>-<pid>-<time>.json` and forgets them, atomically (write, then
   * rename), so a reader running in parallel never sees half a file.
   */
  writeTo(
    source: string,
    meta: Omit<RecordedCallsFile, "source" | "calls">,
    dir = recordedCallsDir(),
  ): string | undefined {
    if (this.recorded.length === 0) return undefined;
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${source}-${process.pid}-${Date.now().toString(36)}.json`);
    const content: RecordedCallsFile = { source, ...meta, calls: this.recorded };
    writeFileSync(`${file}.tmp`, JSON.stringify(content));
    renameSync(`${file}.tmp`, file);
    // Written once: a second world stopping in the same file writes only its own calls.
    this.discard();
    return file;
  }

  private note(
    fn: string,
    service: string,
    operation: string,
    input: Record<string, unknown>,
    notFound: boolean,
  ): void {
    const requests = iamRequestsOf(service, operation, input, notFound);
    this.recorded.push({ function: fn, service, operation, ...(notFound ? { notFound } : {}), requests });
  }
}

function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "NoSuchKey" || e?.name === "NotFound" || e?.$metadata?.httpStatusCode === 404;
}

const arn = (service: string, resource: string) =>
  `arn:aws:${service}:${RECORDED_REGION}:${RECORDED_ACCOUNT}:${resource}`;

/**
 * The authorizations one API call needs, per the AWS Service Authorization Reference:
 * the action names IAM uses and the resources they apply to.
 */
export function iamRequestsOf(
  service: string,
  operation: string,
  input: Record<string, unknown>,
  notFound = false,
): RecordedIamRequest[] {
  switch (service) {
    case "s3":
      return s3Requests(operation, input, notFound);
    case "sqs":
      return sqsRequests(operation, input);
    case "dynamodb":
      return dynamoDbRequests(operation, input);
    case "secretsmanager": {
      const id = String(input.SecretId);
      const resource = id.startsWith("arn:") ? id : arn("secretsmanager", `secret:${id}-AbCdEf`);
      return [{ action: `secretsmanager:${operation}`, resource }];
    }
    case "lambda": {
      const name = String(input.FunctionName);
      const resource = name.startsWith("arn:") ? name : arn("lambda", `function:${name}`);
      const action = operation === "Invoke" ? "lambda:InvokeFunction" : `lambda:${operation}`;
      return [{ action, resource }];
    }
    default:
      return [{ action: `${service}:${operation}`, resource: "*" }];
  }
}

function s3Requests(
  operation: string,
  input: Record<string, unknown>,
  notFound: boolean,
): RecordedIamRequest[] {
  const bucket = String(input.Bucket);
  const bucketArn = `arn:aws:s3:::${bucket}`;
  const object = `${bucketArn}/${String(input.Key)}`;
  // SSE-KMS with an S3 Bucket Key: S3 asks KMS with the bucket ARN as encryption context.
  const kms = (action: string): RecordedIamRequest => ({
    action,
    resource: bucketArn,
    keyOf: bucketArn,
    context: {
      "kms:ViaService": `s3.${RECORDED_REGION}.amazonaws.com`,
      "kms:EncryptionContext:aws:s3:arn": bucketArn,
    },
  });
  // A missing object answers 404 only to a caller that may list the bucket (else 403).
  const listForMissing: RecordedIamRequest[] = notFound
    ? [{ action: "s3:ListBucket", resource: bucketArn }]
    : [];
  switch (operation) {
    case "PutObject":
    case "CreateMultipartUpload":
      return [{ action: "s3:PutObject", resource: object }, kms("kms:GenerateDataKey")];
    case "UploadPart":
    case "CompleteMultipartUpload":
      return [{ action: "s3:PutObject", resource: object }, kms("kms:Decrypt")];
    case "AbortMultipartUpload":
      return [{ action: "s3:AbortMultipartUpload", resource: object }];
    case "GetObject":
      return [
        { action: input.VersionId === undefined ? "s3:GetObject" : "s3:GetObjectVersion", resource: object },
        ...(notFound ? listForMissing : [kms("kms:Decrypt")]),
      ];
    case "HeadObject":
      return [{ action: "s3:GetObject", resource: object }, ...listForMissing];
    case "CopyObject": {
      const source = String(input.CopySource).replace(/^\//, "");
      return [
        {
          action: "s3:GetObject",
          resource: `arn:aws:s3:::${decodeURIComponent(source.split("?")[0] ?? "")}`,
        },
        { action: "s3:PutObject", resource: object },
        kms("kms:Decrypt"),
        kms("kms:GenerateDataKey"),
      ];
    }
    case "ListObjectsV2":
    case "ListObjects":
      return [
        {
          action: "s3:ListBucket",
          resource: bucketArn,
          ...(input.Prefix === undefined ? {} : { context: { "s3:prefix": String(input.Prefix) } }),
        },
      ];
    case "DeleteObject":
      return [
        {
          action: input.VersionId === undefined ? "s3:DeleteObject" : "s3:DeleteObjectVersion",
          resource: object,
        },
      ];
    default:
      return [{ action: `s3:${operation}`, resource: input.Key === undefined ? bucketArn : object }];
  }
}

function sqsRequests(operation: string, input: Record<string, unknown>): RecordedIamRequest[] {
  const queueName =
    String(input.QueueUrl ?? input.SourceArn ?? "")
      .split(/[/:]/)
      .pop() ?? "";
  const queueArn = arn("sqs", queueName);
  // SSE-KMS queues: the sender needs GenerateDataKey and Decrypt, the receiver Decrypt.
  const kms = (action: string): RecordedIamRequest => ({
    action,
    resource: queueArn,
    keyOf: queueArn,
    context: { "kms:ViaService": `sqs.${RECORDED_REGION}.amazonaws.com` },
  });
  const base = operation.replace(/Batch$/, "");
  switch (base) {
    case "SendMessage":
      return [
        { action: "sqs:SendMessage", resource: queueArn },
        kms("kms:GenerateDataKey"),
        kms("kms:Decrypt"),
      ];
    case "ReceiveMessage":
      return [{ action: "sqs:ReceiveMessage", resource: queueArn }, kms("kms:Decrypt")];
    default:
      return [{ action: `sqs:${base}`, resource: queueArn }];
  }
}

function dynamoDbRequests(operation: string, input: Record<string, unknown>): RecordedIamRequest[] {
  const table = (name: unknown, index?: unknown) =>
    arn("dynamodb", `table/${String(name)}${index === undefined ? "" : `/index/${String(index)}`}`);
  // lib-dynamodb's commands carry the document names (Get, Put, ...); IAM names the item API.
  const action = DOCUMENT_OPERATIONS[operation] ?? operation;
  switch (action) {
    case "TransactWriteItems":
      return (input.TransactItems as Record<string, { TableName: string }>[]).map((item) => {
        const [kind, body] = Object.entries(item)[0] as [string, { TableName: string }];
        const itemAction = {
          Put: "PutItem",
          Update: "UpdateItem",
          Delete: "DeleteItem",
          ConditionCheck: "ConditionCheckItem",
        }[kind];
        return { action: `dynamodb:${itemAction ?? kind}`, resource: table(body.TableName) };
      });
    case "BatchGetItem":
    case "BatchWriteItem":
      return Object.keys(input.RequestItems as object).map((name) => ({
        action: `dynamodb:${action}`,
        resource: table(name),
      }));
    default:
      return [{ action: `dynamodb:${action}`, resource: table(input.TableName, input.IndexName) }];
  }
}

const DOCUMENT_OPERATIONS: Readonly<Record<string, string>> = {
  Get: "GetItem",
  Put: "PutItem",
  Update: "UpdateItem",
  Delete: "DeleteItem",
  BatchGet: "BatchGetItem",
  BatchWrite: "BatchWriteItem",
  TransactWrite: "TransactWriteItems",
  TransactGet: "TransactGetItems",
};
