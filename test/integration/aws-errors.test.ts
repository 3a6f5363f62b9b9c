import { describe, expect, it } from "vitest";
import { mapAwsError } from "../../shared/adapters/aws/map-aws-error";
import {
  AccessDeniedError,
  LedgerConflictError,
  ServiceRequestError,
  TimeoutError,
  TransientError,
} from "../../shared/core/errors";

/** An error shaped like the SDK's ServiceException. */
function sdkError(name: string, status: number | undefined, fault: "client" | "server" = "client"): Error {
  return Object.assign(new Error(`${name} happened`), {
    name,
    $fault: fault,
    $metadata: status === undefined ? {} : { httpStatusCode: status },
  });
}

const context = { service: "ledger", action: "dynamodb:UpdateItem", resource: "ledger-table" } as const;

describe("mapAwsError", () => {
  it.each([
    [
      "ConditionalCheckFailedException",
      sdkError("ConditionalCheckFailedException", 400),
      LedgerConflictError,
    ],
    ["ThrottlingException", sdkError("ThrottlingException", 400), TransientError],
    [
      "ProvisionedThroughputExceededException",
      sdkError("ProvisionedThroughputExceededException", 400),
      TransientError,
    ],
    ["SlowDown (S3 503)", sdkError("SlowDown", 503, "server"), TransientError],
    ["a 500 of any name", sdkError("WhateverError", 500, "server"), TransientError],
    ["a 429", sdkError("TooManyRequests", 429), TransientError],
    [
      "a connection reset",
      Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }),
      TransientError,
    ],
    ["an SDK timeout", sdkError("TimeoutError", undefined), TimeoutError],
    ["AccessDeniedException", sdkError("AccessDeniedException", 400), AccessDeniedError],
    ["S3 AccessDenied (403)", sdkError("AccessDenied", 403), AccessDeniedError],
    ["a KMS denial", sdkError("KMS.AccessDeniedException", 400), AccessDeniedError],
    ["ValidationException", sdkError("ValidationException", 400), ServiceRequestError],
    ["ResourceNotFoundException", sdkError("ResourceNotFoundException", 400), ServiceRequestError],
    ["a TypeError from our own code", new TypeError("x is undefined"), ServiceRequestError],
  ])("maps %s", (_label, error, expected) => {
    // Prepare (the table above)
    // Act
    const mapped = mapAwsError(error, context);
    // Assess
    expect(mapped).toBeInstanceOf(expected);
    expect(mapped.cause).toBe(error);
    expect(mapped.message).toContain("ledger-table");
  });

  it("names the missing permission in the access-denied hint and does not retry it", () => {
    // Prepare
    const error = sdkError("AccessDeniedException", 400);
    // Act
    const mapped = mapAwsError(error, context);
    // Assess
    expect(mapped).toMatchObject({ retryable: false, permission: "dynamodb:UpdateItem", service: "ledger" });
    expect(mapped.hint).toContain("dynamodb:UpdateItem");
  });

  it.each([
    ["S3 with a disabled key", "KMS.DisabledException"],
    ["S3 with a key pending deletion", "KMS.KMSInvalidStateException"],
    ["SQS with a disabled key", "KmsDisabled"],
    ["DynamoDB with a missing key", "KMSNotFoundException"],
  ])("maps %s to an environment fault that heals once the key is usable again", (_label, name) => {
    // Prepare
    const error = sdkError(name, 400);
    // Act
    const mapped = mapAwsError(error, { service: "archive", action: "s3:PutObject", resource: "bucket/key" });
    // Assess
    expect(mapped).toMatchObject({
      code: "ENVIRONMENT_FAULT",
      errno: name,
      retryable: true,
      service: "archive",
    });
    expect(mapped.hint).toContain("KMS");
    expect(mapped.cause).toBe(error);
  });

  it("passes the project's own errors through unchanged", () => {
    // Prepare
    const own = new LedgerConflictError("already moved");
    // Act
    const mapped = mapAwsError(own, context);
    // Assess
    expect(mapped).toBe(own);
  });
});
