/**
 * The errors every layer agrees on. Adapters throw these (never raw library errors) so the core,
 * the handlers and the CLI can decide "retry", "wait", "quarantine" or "tell the operator"
 * from `code` and `retryable` alone, without parsing text.
 *
 * `hint` says what the user should do; it is shown in the log and the CLI. No error may carry a
 * password, token or message body in its message, hint or fields (DESIGN.md invariant 6).
 */
export abstract class Pop2GmailError extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;
  readonly hint: string | undefined;

  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
  }
}

/** Which remote system an error came from; kept as data for logs, metrics and alarms. */
export type Service = "pop3" | "google" | "archive" | "ledger" | "queue" | "secrets";

/**
 * RFC 2449 §8 / RFC 3206 extended response codes as sent by the server (`-ERR [IN-USE] ...`),
 * kept verbatim so callers can branch on them.
 */
export type Pop3ResponseCode = "IN-USE" | "LOGIN-DELAY" | "AUTH" | "SYS/TEMP" | "SYS/PERM" | (string & {});

/** The maildrop is locked by another session, or the server asks us to wait before logging in again. */
export class MailboxBusyError extends Pop2GmailError {
  readonly code = "MAILBOX_BUSY";
  readonly retryable = true;
  constructor(
    readonly responseCode: "IN-USE" | "LOGIN-DELAY",
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, {
      ...options,
      hint:
        responseCode === "IN-USE"
          ? "Another client (a mail app, or Gmail's own fetcher) holds the POP3 mailbox. pop2gmail will try again on the next poll; turn the other client off if this persists."
          : "The server limits how often this mailbox may log in. pop2gmail will try again later; raise pollSeconds if this persists.",
    });
  }
}

/** The remote system refused our credentials: a wrong POP3 password, or a revoked/expired Google token. */
export class CredentialsError extends Pop2GmailError {
  readonly code = "CREDENTIALS_REJECTED";
  readonly retryable = false;
  constructor(
    readonly service: Service,
    message: string,
    options: { cause?: unknown; hint?: string; responseCode?: Pop3ResponseCode } = {},
  ) {
    super(message, options);
    this.responseCode = options.responseCode;
  }
  readonly responseCode: Pop3ResponseCode | undefined;
}

/** The TLS handshake or certificate check failed. Not retried: a certificate does not fix itself. */
export class TlsError extends Pop2GmailError {
  readonly code = "TLS_FAILED";
  readonly retryable = false;
}

/** A deadline passed: the connection budget or one command's timeout. */
export class TimeoutError extends Pop2GmailError {
  readonly code = "TIMEOUT";
  readonly retryable = true;
  constructor(
    readonly service: Service,
    message: string,
    options: { cause?: unknown; hint?: string } = {},
  ) {
    super(message, options);
  }
}

/** The peer closed or reset the connection before the exchange was complete. */
export class ConnectionClosedError extends Pop2GmailError {
  readonly code = "CONNECTION_CLOSED";
  readonly retryable = true;
  constructor(
    readonly service: Service,
    message: string,
    options: { cause?: unknown; hint?: string } = {},
  ) {
    super(message, options);
  }
}

/** The server broke its protocol (an over-long line, a malformed UIDL, a reply we cannot parse). */
export class ProtocolError extends Pop2GmailError {
  readonly code = "PROTOCOL_VIOLATION";
  readonly retryable = false;
  constructor(
    readonly service: Service,
    message: string,
    options: { cause?: unknown; hint?: string } = {},
  ) {
    super(message, options);
  }
}

/** A POP3 `-ERR` that is none of the above; the extended response code, if any, is kept. */
export class Pop3CommandError extends Pop2GmailError {
  readonly code = "POP3_COMMAND_FAILED";
  readonly retryable: boolean;
  constructor(
    readonly command: string,
    readonly responseCode: Pop3ResponseCode | undefined,
    readonly serverText: string,
    options: { cause?: unknown; hint?: string } = {},
  ) {
    super(`POP3 ${command} failed: -ERR ${serverText}`, options);
    // RFC 3206 §4: SYS/TEMP is "try again later", SYS/PERM is not.
    this.retryable = responseCode === "SYS/TEMP";
  }
}

/** The message is larger than the configured cap; it is quarantined, never truncated. */
export class MessageTooLargeError extends Pop2GmailError {
  readonly code = "MESSAGE_TOO_LARGE";
  readonly retryable = false;
  constructor(
    readonly limitBytes: number,
    message: string,
    options: { cause?: unknown; hint?: string } = {},
  ) {
    super(message, options);
  }
}

/** Gmail refused this one message (400: invalid From header, bad attachment, too large). */
export class MessageRejectedError extends Pop2GmailError {
  readonly code = "MESSAGE_REJECTED";
  readonly retryable = false;
  constructor(
    readonly reason: string,
    options: { cause?: unknown; hint?: string } = {},
  ) {
    super(`Gmail rejected the message: ${reason}`, options);
  }
}

/** Quota or concurrency limit hit (429, 403 rateLimitExceeded); try again after `retryAfterMs`. */
export class RateLimitedError extends Pop2GmailError {
  readonly code = "RATE_LIMITED";
  readonly retryable = true;
  constructor(
    readonly service: Service,
    readonly retryAfterMs: number,
    message: string,
    options: { cause?: unknown; hint?: string } = {},
  ) {
    super(message, options);
  }
}

/** A passing fault on the remote side (5xx, throttling of a storage service, a network blip). */
export class TransientError extends Pop2GmailError {
  readonly code = "TRANSIENT";
  readonly retryable = true;
  /**
   * True only when the request provably never reached the service (connection refused, DNS
   * failure, no access token): the service cannot have acted on it. The copier then knows a Gmail
   * import did not happen; any other TransientError leaves the import's outcome uncertain.
   */
  readonly requestNotSent: boolean;
  constructor(
    readonly service: Service,
    message: string,
    options: { cause?: unknown; hint?: string; requestNotSent?: boolean } = {},
  ) {
    super(message, options);
    this.requestNotSent = options.requestNotSent ?? false;
  }
}

/** What was stored is not what was read (size or SHA-256 differ). Retried from the source. */
export class IntegrityError extends Pop2GmailError {
  readonly code = "INTEGRITY";
  readonly retryable = true;
}

/**
 * Another copier holds a fresh `importing` claim on the message: its Gmail import may be running
 * right now, so this copy leaves the message alone and looks again later.
 */
export class ImportInProgressError extends Pop2GmailError {
  readonly code = "IMPORT_IN_PROGRESS";
  readonly retryable = true;
}

/** A job left untouched because the process is shutting down; the ledger keeps it for the next run. */
export class ShutdownRequestedError extends Pop2GmailError {
  readonly code = "SHUTDOWN_REQUESTED";
  readonly retryable = true;
}

/** A conditional ledger write lost a race: someone else moved the item first. */
export class LedgerConflictError extends Pop2GmailError {
  readonly code = "LEDGER_CONFLICT";
  readonly retryable = true;
}

/** The configuration is invalid; `field` names the offending path (e.g. `mailboxes[0].pop3.host`). */
export class ConfigError extends Pop2GmailError {
  readonly code = "CONFIG_INVALID";
  readonly retryable = false;
  constructor(
    readonly field: string,
    message: string,
    options: { cause?: unknown; hint?: string } = {},
  ) {
    super(message, options);
  }
}

/** True for errors that mean "not now" rather than "never": callers retry these later. */
export function isRetryable(error: unknown): boolean {
  return error instanceof Pop2GmailError ? error.retryable : false;
}

/**
 * A cloud service refused the call for lack of a permission (IAM or KMS key policy). Not retried:
 * a policy does not fix itself. `permission` names the missing action (e.g. `s3:PutObject`).
 */
export class AccessDeniedError extends Pop2GmailError {
  readonly code = "ACCESS_DENIED";
  readonly retryable = false;
  constructor(
    readonly service: Service,
    readonly permission: string,
    message: string,
    options: { cause?: unknown; hint?: string } = {},
  ) {
    super(message, {
      ...options,
      hint:
        options.hint ??
        `Grant ${permission} to the function's role (the tenant stack does this; redeploy it if the role was edited by hand).`,
    });
  }
}

/**
 * A cloud service rejected a request as invalid (a validation error, a size limit, a missing
 * table or queue). Not retried: sending the same request again earns the same answer.
 * `awsCode` keeps the service's error name for logs.
 */
export class ServiceRequestError extends Pop2GmailError {
  readonly code = "SERVICE_REQUEST_REJECTED";
  readonly retryable = false;
  constructor(
    readonly service: Service,
    readonly awsCode: string,
    message: string,
    options: { cause?: unknown; hint?: string } = {},
  ) {
    super(message, options);
  }
}

/**
 * Error codes of our own environment: the file system (errno) and SQLite (result codes, also
 * extended ones such as `SQLITE_IOERR_WRITE`). Matched by prefix so every extended code counts.
 */
const ENVIRONMENT_CODES = [
  "ENOSPC",
  "EDQUOT",
  "EACCES",
  "EPERM",
  "EROFS",
  "EIO",
  "EMFILE",
  "ENFILE",
  "SQLITE_FULL",
  "SQLITE_IOERR",
  "SQLITE_READONLY",
  "SQLITE_CANTOPEN",
  "SQLITE_CORRUPT",
  "SQLITE_NOTADB",
  "SQLITE_BUSY",
  "SQLITE_LOCKED",
  "SQLITE_PERM",
] as const;

/**
 * A fault of our own environment, not of any message (DESIGN.md invariant 5, docs/pipeline.md
 * "Environment faults"): a full disk or quota, a folder we may not write, a read-only or failing
 * file system, a ledger database that cannot be written; on AWS a KMS key that is disabled or
 * pending deletion. It stops the mailbox's pass, spends no copy attempt and heals by itself once
 * the fault is gone, so it is `retryable`. `errno` keeps the system's own code (`ENOSPC`,
 * `SQLITE_FULL`, `KMS.DisabledException`).
 */
export class EnvironmentError extends Pop2GmailError {
  readonly code = "ENVIRONMENT_FAULT";
  readonly retryable = true;
  constructor(
    readonly service: Service,
    readonly errno: string,
    message: string,
    options: { cause?: unknown; hint?: string } = {},
  ) {
    super(message, { ...options, hint: options.hint ?? environmentHint(service, errno) });
  }
}

/** The `code` of a system or library error (`ENOSPC`, `SQLITE_FULL`), if it has a string one. */
export function errnoCodeOf(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null || !("code" in error)) return undefined;
  return typeof error.code === "string" ? error.code : undefined;
}

/** True when `code` names a fault of our environment (see `EnvironmentError`). */
export function isEnvironmentCode(code: string | undefined): boolean {
  if (code === undefined) return false;
  return ENVIRONMENT_CODES.some((c) => code === c || code.startsWith(`${c}_`));
}

/**
 * `error` as an `EnvironmentError` when it is one or carries an environment code (also one level
 * down, in `cause`), else undefined. `what` says what we were doing ("write the archive file").
 */
export function environmentErrorOf(
  error: unknown,
  service: Service,
  what: string,
): EnvironmentError | undefined {
  if (error instanceof EnvironmentError) return error;
  // Our own wrappers of a local I/O failure (a TransientError of the archive or the ledger)
  // still carry the system's code in `cause`.
  const wrapped =
    error instanceof TransientError && (error.service === "archive" || error.service === "ledger");
  if (error instanceof Pop2GmailError && !wrapped) return undefined;
  const raw = wrapped ? error.cause : error;
  const code = errnoCodeOf(raw);
  if (code === undefined || !isEnvironmentCode(code)) return undefined;
  const where = wrapped ? error.service : code.startsWith("SQLITE") ? "ledger" : service;
  return new EnvironmentError(where, code, wrapped ? error.message : `cannot ${what} (${code})`, {
    cause: raw,
  });
}

function environmentHint(service: Service, errno: string): string {
  const where =
    service === "ledger" ? "the ledger database" : service === "archive" ? "the archive" : service;
  if (errno === "ENOSPC" || errno === "EDQUOT" || errno.startsWith("SQLITE_FULL")) {
    return `The disk (or quota) holding ${where} is full: free space. pop2gmail resumes by itself; no message was counted as failed.`;
  }
  if (errno === "EACCES" || errno === "EPERM" || errno === "EROFS" || errno.startsWith("SQLITE_READONLY")) {
    return `${where} is not writable (permissions, or a read-only file system): make the data directory writable for the user running pop2gmail. It resumes by itself.`;
  }
  if (errno.toUpperCase().startsWith("KMS")) {
    return "The archive's KMS key is disabled or not usable: enable it (the tenant stack manages it). pop2gmail resumes by itself.";
  }
  return `${where} failed with ${errno}: check the disk and the data directory. pop2gmail resumes by itself once it works again.`;
}
