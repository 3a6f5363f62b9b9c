import { describe, expect, it } from "vitest";
import {
  GmailLabelError,
  GoogleScopeMissingError,
  gmailErrorFrom,
} from "../../../shared/adapters/gmail/gmail-error-mapping";
import type { GoogleHttpFailure } from "../../../shared/adapters/gmail/google-http-failure";
import { retryDelayMs } from "../../../shared/adapters/gmail/retry-policy";
import {
  CredentialsError,
  MessageRejectedError,
  RateLimitedError,
  TimeoutError,
  TransientError,
} from "../../../shared/core/errors";

const context = { user: "info@acme.it", operation: "import", now: 1_000_000, defaultRetryAfterMs: 500 };
function body(status: number, reason: string, message: string): unknown {
  return { error: { code: status, message, errors: [{ reason, message, domain: "global" }] } };
}

describe("gmailErrorFrom", () => {
  it.each<[string, GoogleHttpFailure, new (...args: never[]) => Error]>([
    [
      "429",
      { status: 429, body: body(429, "rateLimitExceeded", "Too many concurrent requests for user.") },
      RateLimitedError,
    ],
    [
      "403 rateLimitExceeded",
      { status: 403, body: body(403, "rateLimitExceeded", "Rate Limit Exceeded") },
      RateLimitedError,
    ],
    [
      "403 userRateLimitExceeded",
      { status: 403, body: body(403, "userRateLimitExceeded", "x") },
      RateLimitedError,
    ],
    [
      "403 insufficientPermissions",
      { status: 403, body: body(403, "insufficientPermissions", "x") },
      GoogleScopeMissingError,
    ],
    ["403 forbidden", { status: 403, body: body(403, "forbidden", "Delegation denied") }, CredentialsError],
    ["401", { status: 401, body: body(401, "authError", "Invalid Credentials") }, CredentialsError],
    ["500", { status: 500, body: body(500, "backendError", "Backend Error") }, TransientError],
    ["503", { status: 503 }, TransientError],
    ["reset", { networkCode: "ECONNRESET" }, TransientError],
    ["timeout", { networkCode: "AbortError", timedOut: true }, TimeoutError],
    ["400", { status: 400, body: body(400, "invalidArgument", "Invalid From header") }, MessageRejectedError],
  ])("sorts %s", (_name, failure, kind) => {
    // Act
    const error = gmailErrorFrom(failure, context);

    // Assess
    expect(error).toBeInstanceOf(kind);
  });

  it("marks a refused connection as never sent and a reset as uncertain", () => {
    // Act
    const refused = gmailErrorFrom({ networkCode: "ECONNREFUSED" }, context);
    const reset = gmailErrorFrom({ networkCode: "ECONNRESET" }, context);

    // Assess: only the reset may have reached Gmail, so only it leaves the import uncertain.
    expect(refused).toBeInstanceOf(TransientError);
    expect((refused as TransientError).requestNotSent).toBe(true);
    expect(reset).toBeInstanceOf(TransientError);
    expect((reset as TransientError).requestNotSent).toBe(false);
  });

  it("keeps Gmail's reason on a rejection and reads Retry-After in seconds", () => {
    // Act
    const rejected = gmailErrorFrom(
      { status: 400, body: body(400, "invalidArgument", "Invalid From header") },
      context,
    );
    const limited = gmailErrorFrom({ status: 429, retryAfter: "17" }, context);

    // Assess
    expect((rejected as MessageRejectedError).reason).toBe("Invalid From header");
    expect((limited as RateLimitedError).retryAfterMs).toBe(17_000);
  });

  it("keeps no credential a server echoed in its error body, in any error text", () => {
    // Prepare: bodies echoing the Authorization header, a token form, a token grant and a key.
    const echoed = [
      "ya29.a0AfB_echoedAccessToken123",
      "1//0gEchoedRefreshToken456",
      "GOCSPX-EchoedClientSecret789",
      "dXNlcjpwYXNzd29yZEVjaG9lZA==",
      "s3cr3t-Form-Value",
      "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJlY2hvIn0.c2lnbmF0dXJl",
    ];
    const failures: GoogleHttpFailure[] = [
      {
        status: 503,
        body: body(503, "backendError", `Backend Error; request had Authorization: Bearer ${echoed[0]}`),
      },
      {
        status: 400,
        body: body(400, "invalidArgument", `bad form refresh_token=${echoed[1]}&client_secret=${echoed[2]}`),
      },
      { status: 400, body: { error: "invalid_grant", error_description: `Basic ${echoed[3]} refused` } },
      { status: 500, body: `<html>password=${echoed[4]} assertion=${echoed[5]}</html>` },
      { status: 429, body: body(429, "rateLimitExceeded", `{"access_token": "${echoed[0]}"}`) },
      { status: 401, body: body(401, "authError", `token ${echoed[0]} expired`) },
    ];

    // Act
    const texts = failures.flatMap((failure) => {
      const error = gmailErrorFrom(failure, context);
      return [error.message, String(error.cause), JSON.stringify(error), error.hint ?? ""];
    });

    // Assess
    const leaks = texts.flatMap((text) => echoed.filter((secret) => text.includes(secret)));
    expect(leaks).toEqual([]);
    expect(texts.join("\n")).toContain("[redacted]");
  });

  it("calls a 4xx on a label call a label problem, not a rejection of the message", () => {
    // Act
    const label = gmailErrorFrom(
      { status: 400, body: body(400, "invalidArgument", "Invalid label name") },
      { ...context, operation: "labels.create" },
    );

    // Assess
    expect(label).not.toBeInstanceOf(MessageRejectedError);
    expect(label).toBeInstanceOf(GmailLabelError);
    expect(label.code).toBe("GMAIL_LABEL_REJECTED");
  });

  it("waits at least Retry-After, and otherwise a jittered exponential delay under the cap", () => {
    // Prepare
    const policy = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1_000, random: () => 0.999 };
    const limited = new RateLimitedError("google", 5_000, "slow down");

    // Act
    const delays = [1, 2, 3, 4, 5, 6].map((n) => retryDelayMs(policy, n, new Error("x")));

    // Assess
    expect(retryDelayMs(policy, 1, limited)).toBe(5_000);
    expect(delays).toEqual([99, 199, 399, 799, 999, 999]);
  });
});
