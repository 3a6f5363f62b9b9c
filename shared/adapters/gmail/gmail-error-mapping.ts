import {
  CredentialsError,
  MessageRejectedError,
  Pop2GmailError,
  RateLimitedError,
  TimeoutError,
  TransientError,
} from "../../core/errors";
import { redactSecrets } from "../../core/redact-secrets";
import { describeGoogleError, type GoogleHttpFailure, parseRetryAfter } from "./google-http-failure";

const RATE_LIMIT_REASONS = new Set(["rateLimitExceeded", "userRateLimitExceeded", "RESOURCE_EXHAUSTED"]);
const SCOPE_REASONS = new Set(["insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"]);

/** Who and what an error is about, for the message and the hint (never a secret). */
export interface FailureContext {
  readonly user: string;
  /** e.g. "import", "labels.create". */
  readonly operation: string;
  readonly now: number;
  /** Used as `retryAfterMs` when Google sent no Retry-After. */
  readonly defaultRetryAfterMs: number;
}

/**
 * A 403 insufficientPermissions: the grant lacks the scope for this call. A CredentialsError (the
 * user must grant more), told apart so optional features (labels, look-ups) can step aside.
 */
export class GoogleScopeMissingError extends CredentialsError {}

/**
 * Gmail refused a label call (labels.list or labels.create answered 400, 404 or another 4xx):
 * a problem of the mailbox's label settings, not of the message being imported. Not retryable
 * and not message-level, so the copier gives the claim and the attempt back and stops the
 * mailbox's pass with one alarm (docs/pipeline.md, "Quarantine policy"); no message is
 * quarantined over it.
 */
export class GmailLabelError extends Pop2GmailError {
  readonly code = "GMAIL_LABEL_REJECTED";
  readonly retryable = false;
}

/**
 * Gmail refused a call other than the import or a label call (a look-up: messages.list or
 * messages.get) with a 4xx. `status` is kept: a 404 on messages.get means the candidate is gone.
 */
export class GmailRequestRejectedError extends Pop2GmailError {
  readonly code = "GMAIL_REQUEST_REJECTED";
  readonly retryable = false;
  constructor(
    readonly status: number,
    message: string,
    options: { cause?: unknown; hint?: string } = {},
  ) {
    super(message, options);
  }
}

/** The hint for a refused Google credential: what the user should do about it. */
export function googleCredentialsHint(
  user: string,
  auth: "oauth" | "service-account",
  tenant?: string,
): string {
  const command = `pop2gmail auth google ${tenant ?? "<tenant>"}`;
  return auth === "oauth"
    ? `The Google refresh token for ${user} was revoked or expired (apps left in 'Testing' lose tokens after 7 days). ` +
        `Run \`${command}\` again, and publish the OAuth consent screen to production.`
    : `The service account may not act for ${user}. In the Google Workspace admin console, grant it domain-wide ` +
        "delegation for the scopes https://www.googleapis.com/auth/gmail.insert and gmail.labels, and check the key in the secret is current.";
}

/** Network failures that happen before a connection exists, so Gmail cannot have seen the request. */
const NOT_CONNECTED_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);

/**
 * Sorts a failed Gmail API call into the error kinds the pipeline acts on:
 * 429 and 403 rate-limit reasons -> RateLimitedError; 5xx, resets -> TransientError;
 * timeouts -> TimeoutError; 401 and scope problems -> CredentialsError; 400 and other 4xx ->
 * MessageRejectedError with Gmail's own reason text for the import, GmailLabelError for a label
 * call, GmailRequestRejectedError for anything else. Every text is free of credentials
 * (`describeGoogleError` redacts what a server echoed).
 */
export function gmailErrorFrom(
  failure: GoogleHttpFailure,
  context: FailureContext,
  auth: "oauth" | "service-account" = "oauth",
): Pop2GmailError {
  const { reasons, message } = describeGoogleError(failure.body);
  const summary = `${context.operation} for ${context.user}`;
  // A sanitized cause: status, reasons and Google's message; never the request (it holds the token).
  const cause = new Error(
    failure.status === undefined
      ? `network failure ${redactSecrets(failure.networkCode ?? "unknown")}`
      : `HTTP ${failure.status} ${reasons.join(",")} ${message ?? ""}`.trim(),
  );
  if (failure.status === undefined) {
    return failure.timedOut
      ? new TimeoutError("google", `Gmail did not answer ${summary} in time`, { cause })
      : new TransientError(
          "google",
          `network failure during ${summary} (${failure.networkCode ?? "unknown"})`,
          { cause, requestNotSent: NOT_CONNECTED_CODES.has(failure.networkCode ?? "") },
        );
  }
  const status = failure.status;
  const rateLimited =
    status === 429 ||
    (status === 403 && reasons.some((r) => RATE_LIMIT_REASONS.has(r))) ||
    /too many concurrent requests/i.test(message ?? "");
  if (rateLimited) {
    const retryAfterMs = parseRetryAfter(failure.retryAfter, context.now) ?? context.defaultRetryAfterMs;
    return new RateLimitedError(
      "google",
      retryAfterMs,
      `Gmail rate limit on ${summary}: ${message ?? status}`,
      {
        cause,
      },
    );
  }
  if (status >= 500 || status === 408) {
    return new TransientError("google", `Gmail answered ${status} to ${summary}: ${message ?? ""}`.trim(), {
      cause,
    });
  }
  if (status === 401) {
    return new CredentialsError("google", `Google refused the credentials for ${context.user} (401)`, {
      cause,
      hint: googleCredentialsHint(context.user, auth),
    });
  }
  if (status === 403) {
    if (reasons.some((r) => SCOPE_REASONS.has(r))) {
      return new GoogleScopeMissingError(
        "google",
        `Google denied ${summary}: ${message ?? "insufficient scope"}`,
        {
          cause,
          hint: `The Google grant for ${context.user} lacks the scope ${context.operation} needs. Run \`pop2gmail auth google <tenant>\` again and accept all requested permissions.`,
        },
      );
    }
    return new CredentialsError("google", `Google denied ${summary}: ${message ?? "forbidden"}`, {
      cause,
      hint: googleCredentialsHint(context.user, auth),
    });
  }
  if (context.operation.startsWith("labels.")) {
    return new GmailLabelError(`Gmail refused ${summary} (${status}): ${message ?? "no reason given"}`, {
      cause,
      hint: `Check the label names in gmail.labels and gmail.mailboxLabel for ${context.user}.`,
    });
  }
  if (context.operation !== "import") {
    return new GmailRequestRejectedError(
      status,
      `Gmail refused ${summary} (${status}): ${message ?? ""}`.trim(),
      {
        cause,
      },
    );
  }
  return new MessageRejectedError(message ?? `HTTP ${status}`, { cause });
}
