import {
  AccessDeniedError,
  EnvironmentError,
  LedgerConflictError,
  Pop2GmailError,
  type Service,
  ServiceRequestError,
  TimeoutError,
  TransientError,
} from "../../core/errors";

/** What the adapter was doing, so the mapped error can say which permission or resource is involved. */
export interface AwsCallContext {
  readonly service: Service;
  /** The IAM action of the call, e.g. `dynamodb:UpdateItem`; named in the access-denied hint. */
  readonly action: string;
  /** The table, bucket/key, queue or secret name (never a value). */
  readonly resource: string;
}

// Error names AWS uses for "slow down" and passing server faults; the SDK retried these already.
const TRANSIENT_NAMES = new Set([
  "ThrottlingException",
  "Throttling",
  "ThrottledException",
  "RequestThrottled",
  "RequestThrottledException",
  "TooManyRequestsException",
  "ProvisionedThroughputExceededException",
  "RequestLimitExceeded",
  "SlowDown",
  "InternalServerError",
  "InternalError",
  "InternalFailure",
  "ServiceUnavailable",
  "ServiceUnavailableException",
  "TransactionInProgressException",
  "KMS.ThrottlingException",
  "KMSThrottlingException",
]);

const ACCESS_DENIED_NAMES = new Set([
  "AccessDenied",
  "AccessDeniedException",
  "UnauthorizedOperation",
  "KMS.AccessDeniedException",
  "KMSAccessDeniedException",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "UnrecognizedClientException",
]);

// A KMS key of our own stack that is disabled, pending deletion or gone, as S3, SQS and DynamoDB
// name it: a fault of our environment, not of any message (docs/pipeline.md, "Environment faults").
const KMS_KEY_UNUSABLE_NAMES = new Set([
  "KMS.DisabledException",
  "KMS.KMSInvalidStateException",
  "KMS.NotFoundException",
  "KMS.KeyUnavailableException",
  "KMSDisabledException",
  "KMSInvalidStateException",
  "KMSNotFoundException",
  "KmsDisabled",
  "KmsInvalidState",
  "KmsNotFound",
]);

// Node socket errors: the network dropped, not the request that was wrong.
const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "UND_ERR_SOCKET",
]);

interface SdkErrorShape {
  readonly name?: unknown;
  readonly code?: unknown;
  readonly $fault?: unknown;
  readonly $metadata?: { readonly httpStatusCode?: unknown };
}

/** The AWS error name (`ConditionalCheckFailedException`, `NoSuchKey`, ...), or undefined. */
export function awsErrorName(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const name = (error as SdkErrorShape).name;
  return typeof name === "string" ? name : undefined;
}

/** The HTTP status of an SDK service error, or undefined for client-side failures. */
export function awsHttpStatus(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const status = (error as SdkErrorShape).$metadata?.httpStatusCode;
  return typeof status === "number" ? status : undefined;
}

/**
 * Turns an AWS SDK (or socket) error into one of the project's errors, so callers branch on
 * `code`/`retryable` and never see a raw library error. Errors that already are ours pass through.
 * The message names the action and resource only: no request payload is ever copied into it.
 */
export function mapAwsError(error: unknown, context: AwsCallContext): Pop2GmailError {
  if (error instanceof Pop2GmailError) return error;
  const name = awsErrorName(error) ?? "UnknownError";
  const status = awsHttpStatus(error);
  const where = `${context.action} on ${context.resource}`;
  if (name === "ConditionalCheckFailedException") {
    return new LedgerConflictError(`${where}: the condition did not hold`, { cause: error });
  }
  if (KMS_KEY_UNUSABLE_NAMES.has(name)) {
    return new EnvironmentError(
      context.service,
      name,
      `${where} failed: the KMS key is not usable (${name})`,
      {
        cause: error,
      },
    );
  }
  if (ACCESS_DENIED_NAMES.has(name) || status === 403) {
    return new AccessDeniedError(context.service, context.action, `${where} was denied (${name})`, {
      cause: error,
    });
  }
  if (name === "TimeoutError" || name === "RequestTimeout" || name === "RequestTimeoutException") {
    return new TimeoutError(context.service, `${where} timed out`, { cause: error });
  }
  const socketCode = (error as SdkErrorShape | null)?.code;
  const isNetwork = typeof socketCode === "string" && NETWORK_CODES.has(socketCode);
  const isServerFault =
    (status !== undefined && status >= 500) || (error as SdkErrorShape | null)?.$fault === "server";
  if (TRANSIENT_NAMES.has(name) || status === 429 || isServerFault || isNetwork) {
    return new TransientError(context.service, `${where} failed: ${name}`, { cause: error });
  }
  return new ServiceRequestError(context.service, name, `${where} was rejected: ${name}`, { cause: error });
}
