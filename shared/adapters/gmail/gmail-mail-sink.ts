import { Readable } from "node:stream";
import { gmail as createGmailClient, type gmail_v1, type MethodOptions } from "@googleapis/gmail";
import type { MailboxConfig, TenantConfig } from "../../config/tenant-config";
import {
  CredentialsError,
  Pop2GmailError,
  RateLimitedError,
  TimeoutError,
  TransientError,
} from "../../core/errors";
import { TRACE_HEADER } from "../../core/gmail-copy";
import type { Clock } from "../../ports/clock";
import type { ImportProof, ImportRequest, MailSink } from "../../ports/mail-sink";
import type { SecretStore } from "../../ports/secret-store";
import { systemClock } from "../system-clock";
import { GmailRequestRejectedError, GoogleScopeMissingError, gmailErrorFrom } from "./gmail-error-mapping";
import { type GmailLabel, GmailLabelResolver } from "./gmail-label-resolver";
import { GMAIL_QUOTA_UNITS, GmailRateLimiters } from "./gmail-user-rate-limiter";
import {
  DEFAULT_SERVICE_ACCOUNT_SCOPES,
  GMAIL_READ_SCOPES,
  GoogleAccessTokens,
} from "./google-access-tokens";
import { failureFromLibraryError, type GoogleHttpFailure } from "./google-http-failure";
import { RESUMABLE_CHUNK_GRANULARITY, resumableImport } from "./resumable-import";
import { type RetryPolicy, withRetries } from "./retry-policy";

/** The few logger methods the sink uses (Powertools' Logger fits). Never given tokens or bodies. */
export interface GmailSinkLogger {
  info(message: string, fields: GmailLogFields): void;
  warn(message: string, fields: GmailLogFields): void;
}

/** Structured log fields: ids, counts and codes only. */
export type GmailLogFields = Record<string, string | number | boolean | undefined>;

/** Options of {@link GmailMailSink}; only `secrets` and `google` are required. */
export interface GmailMailSinkOptions {
  readonly secrets: SecretStore;
  readonly google: TenantConfig["google"];
  readonly clock?: Clock;
  readonly logger?: GmailSinkLogger;
  /** Messages of at least this size go by resumable upload; smaller ones by multipart. Default 5 MiB. */
  readonly resumableThresholdBytes?: number;
  /** Resumable chunk size, rounded down to a multiple of 256 KiB. Default 8 MiB. */
  readonly resumableChunkBytes?: number;
  /** Attempts per call including the first. Default 5. */
  readonly maxAttempts?: number;
  /** Backoff base and cap. Defaults 500 ms and 30 s. */
  readonly backoff?: { readonly baseDelayMs: number; readonly maxDelayMs: number };
  /** Jitter source in [0, 1). Default Math.random. */
  readonly random?: () => number;
  /**
   * Timeout of one HTTP request carrying no more than a small body (a look-up, a label call, a
   * small multipart upload). Default `google.requestTimeoutSeconds`, else 120 s. A request that carries a body gets
   * `bytes / minUploadBytesPerSecond` more (a multipart upload, a resumable chunk). A timed-out
   * import is not retried inside the sink: it reaches the core as an uncertain failure at once,
   * so the POP3 session is released (docs/pipeline.md, "Gmail requests are bounded").
   */
  readonly requestTimeoutMs?: number;
  /** The slowest upload still waited for, in bytes per second. Default `google.minUploadKiBPerSecond`, else 256 KiB/s. */
  readonly minUploadBytesPerSecond?: number;
  /** Share limiters between sinks of one process; by default each sink has its own registry. */
  readonly rateLimiters?: GmailRateLimiters;
  /** Scopes a service account asks for; must match its domain-wide delegation. */
  readonly serviceAccountScopes?: readonly string[];
}

/** Candidates asked for per `rfc822msgid:` page, and pages read at most (a Message-ID shared by 250 messages). */
const LOOKUP_PAGE_SIZE = 50;
const LOOKUP_MAX_PAGES = 5;

/** Default base timeout of one request, and the slowest upload rate still waited for. */
export const DEFAULT_GMAIL_REQUEST_TIMEOUT_MS = 120_000;
export const DEFAULT_MIN_UPLOAD_BYTES_PER_SECOND = 256 * 1024;

/**
 * Delivers messages into Gmail with `users.messages.import` (so Gmail's spam and virus scanning
 * run), streaming the body: multipart upload through the googleapis client for small messages,
 * a hand-written resumable upload above `resumableThresholdBytes`. Calls per Gmail user are paced
 * by a quota token bucket and a concurrency cap; retryable failures are retried with backoff and
 * full jitter, then thrown as typed errors (see the MailSink port).
 */
export class GmailMailSink implements MailSink {
  readonly #client: gmail_v1.Gmail;
  readonly #google: TenantConfig["google"];
  readonly #clock: Clock;
  readonly #logger: GmailSinkLogger | undefined;
  readonly #tokens: GoogleAccessTokens;
  readonly #limiters: GmailRateLimiters;
  readonly #labels: GmailLabelResolver;
  readonly #policy: RetryPolicy;
  readonly #thresholdBytes: number;
  readonly #chunkBytes: number;
  readonly #timeoutMs: number;
  readonly #minUploadBytesPerSecond: number;
  readonly #noReadScope = new Set<string>();

  constructor(options: GmailMailSinkOptions) {
    // One client for the life of the process (a Lambda container reuses it). No client-level
    // rootUrl: googleapis does not apply it to media uploads, so it is passed on every call.
    this.#client = createGmailClient({ version: "v1" });
    this.#google = options.google;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger;
    const { requestTimeoutSeconds, minUploadKiBPerSecond } = options.google;
    this.#timeoutMs =
      options.requestTimeoutMs ??
      (requestTimeoutSeconds === undefined ? DEFAULT_GMAIL_REQUEST_TIMEOUT_MS : requestTimeoutSeconds * 1000);
    this.#minUploadBytesPerSecond = Math.max(
      1,
      options.minUploadBytesPerSecond ??
        (minUploadKiBPerSecond === undefined
          ? DEFAULT_MIN_UPLOAD_BYTES_PER_SECOND
          : minUploadKiBPerSecond * 1024),
    );
    this.#tokens = new GoogleAccessTokens({
      tokenUrl: options.google.tokenUrl,
      secrets: options.secrets,
      clock: this.#clock,
      timeoutMs: Math.min(this.#timeoutMs, 30_000),
      serviceAccountScopes: options.serviceAccountScopes ?? DEFAULT_SERVICE_ACCOUNT_SCOPES,
    });
    this.#limiters =
      options.rateLimiters ??
      new GmailRateLimiters(
        {
          unitsPerMinute: options.google.quotaUnitsPerMinute,
          maxConcurrent: options.google.maxConcurrentImports,
        },
        this.#clock,
      );
    this.#policy = {
      maxAttempts: options.maxAttempts ?? 5,
      baseDelayMs: options.backoff?.baseDelayMs ?? 500,
      maxDelayMs: options.backoff?.maxDelayMs ?? 30_000,
      random: options.random ?? Math.random,
    };
    this.#thresholdBytes = options.resumableThresholdBytes ?? 5 * 1024 * 1024;
    const chunk = options.resumableChunkBytes ?? 8 * 1024 * 1024;
    this.#chunkBytes =
      Math.max(1, Math.floor(chunk / RESUMABLE_CHUNK_GRANULARITY)) * RESUMABLE_CHUNK_GRANULARITY;
    this.#labels = new GmailLabelResolver(
      {
        list: (mailbox) => this.#listLabels(mailbox),
        create: (mailbox, name) => this.#createLabel(mailbox, name),
      },
      (user, error) =>
        this.#logger?.warn("Gmail labels unavailable: importing without the mailbox label", {
          gmailUser: user,
          hint: error.hint,
        }),
    );
  }

  /** Imports the message and returns Gmail's id for it. See the MailSink port for the errors. */
  async import(request: ImportRequest): Promise<{ gmailId: string }> {
    const { mailbox } = request;
    const labelIds = await this.#labels.labelIdsFor(mailbox);
    return this.#retrying(mailbox, "import", async (_attempt, lastError) => {
      // After an answer we never saw (5xx, reset) Gmail may hold the copy already.
      if (isUncertain(lastError)) {
        // Without a Message-ID Gmail cannot merge a second import (DESIGN.md invariant 3):
        // hand the uncertainty to the caller. (The pipeline's copies always carry one.)
        if (request.messageIdHeader === undefined) throw lastError;
        // Only a message carrying this copy's trace id is proof; another message with the same
        // Message-ID is not. Nothing found, or no read scope: the same copy again, Gmail merges.
        if (request.traceId !== undefined) {
          const existing = await this.findExisting(mailbox, {
            messageIdHeader: request.messageIdHeader,
            traceId: request.traceId,
          });
          if (existing !== undefined) return { gmailId: existing };
        }
      }
      const gmailId =
        request.size >= this.#thresholdBytes
          ? await this.#resumable(request, labelIds)
          : await this.#multipart(request, labelIds);
      this.#logger?.info("imported into Gmail", { mailboxId: mailbox.id, uidl: request.uidl, gmailId });
      return { gmailId };
    });
  }

  /**
   * The Gmail id of an earlier import of this very copy: the candidates `rfc822msgid:` finds
   * (spam and trash included) are read with `messages.get` (format metadata, the trace header
   * only), and only one carrying `proof.traceId` counts. Needs a read scope; without one it
   * returns undefined, and remembers that for the user.
   */
  /** The user's concurrency cap (`google.maxConcurrentImports`): imports worth keeping in flight. */
  importsInFlight(_mailbox: MailboxConfig): number {
    return this.#google.maxConcurrentImports;
  }

  async findExisting(mailbox: MailboxConfig, proof: ImportProof): Promise<string | undefined> {
    if (!(await this.canLookUp(mailbox))) return undefined;
    const user = mailbox.gmail.user.toLowerCase();
    const id = proof.messageIdHeader.trim().replace(/^<|>$/g, "");
    try {
      let pageToken: string | undefined;
      for (let page = 0; page < LOOKUP_MAX_PAGES; page++) {
        const token = pageToken;
        const response = await this.#retrying(mailbox, "messages.list", () =>
          this.#call(mailbox, "messages.list", GMAIL_QUOTA_UNITS.list, (options) =>
            this.#client.users.messages.list(
              {
                userId: mailbox.gmail.user,
                q: `rfc822msgid:${id}`,
                maxResults: LOOKUP_PAGE_SIZE,
                includeSpamTrash: true,
                ...(token === undefined ? {} : { pageToken: token }),
              },
              options,
            ),
          ),
        );
        for (const candidate of response.data.messages ?? []) {
          if (candidate.id && (await this.#carriesTrace(mailbox, candidate.id, proof.traceId))) {
            return candidate.id;
          }
        }
        pageToken = response.data.nextPageToken ?? undefined;
        if (pageToken === undefined) return undefined;
      }
      // More candidates than we read: not found, and the caller re-imports the same copy, which
      // Gmail merges (a look-up is an optimisation, never the only guard).
      this.#logger?.warn("Gmail look-up stopped after its page limit", { mailboxId: mailbox.id });
      return undefined;
    } catch (error) {
      if (error instanceof GmailRequestRejectedError) {
        // Gmail would not run this search (a Message-ID it cannot parse as a query): not found,
        // so the caller imports the same copy again, which Gmail merges. Never a mailbox stop.
        this.#logger?.warn("Gmail refused the look-up; importing the same copy again", {
          mailboxId: mailbox.id,
          errorCode: error.code,
          status: error.status,
        });
        return undefined;
      }
      if (!(error instanceof GoogleScopeMissingError)) throw error;
      this.#noReadScope.add(user);
      return undefined;
    }
  }

  /**
   * Whether this sink can look up earlier imports for the mailbox's Gmail user: the access token
   * was granted a read scope (`GMAIL_READ_SCOPES`). False is remembered for the user.
   */
  async canLookUp(mailbox: MailboxConfig): Promise<boolean> {
    const user = mailbox.gmail.user.toLowerCase();
    if (this.#noReadScope.has(user)) return false;
    const token = await this.#tokens.get(mailbox.gmail);
    if (token.scopes.size > 0 && !GMAIL_READ_SCOPES.some((s) => token.scopes.has(s))) {
      this.#noReadScope.add(user);
      return false;
    }
    return true;
  }

  /** True when the Gmail message `id` carries our trace header with `traceId`. */
  async #carriesTrace(mailbox: MailboxConfig, id: string, traceId: string): Promise<boolean> {
    try {
      const response = await this.#retrying(mailbox, "messages.get", () =>
        this.#call(mailbox, "messages.get", GMAIL_QUOTA_UNITS.get, (options) =>
          this.#client.users.messages.get(
            { userId: mailbox.gmail.user, id, format: "metadata", metadataHeaders: [TRACE_HEADER] },
            options,
          ),
        ),
      );
      const headers = response.data.payload?.headers ?? [];
      return headers.some(
        (h) => h.name?.toLowerCase() === TRACE_HEADER.toLowerCase() && h.value?.trim() === traceId,
      );
    } catch (error) {
      // Deleted for good between the list and the get: not this copy.
      if (error instanceof GmailRequestRejectedError && error.status === 404) return false;
      throw error;
    }
  }

  async #multipart(request: ImportRequest, labelIds: string[]): Promise<string> {
    const { gmail } = request.mailbox;
    const response = await this.#call(
      request.mailbox,
      "import",
      GMAIL_QUOTA_UNITS.import,
      async (options) => {
        const body = Readable.from(await request.open(), { objectMode: false });
        try {
          return await this.#client.users.messages.import(
            {
              userId: gmail.user,
              internalDateSource: "dateHeader",
              neverMarkSpam: gmail.neverMarkSpam,
              processForCalendar: gmail.processForCalendar,
              requestBody: { labelIds },
              media: { mimeType: "message/rfc822", body },
            },
            options,
          );
        } finally {
          // Closes the source (an S3 or file stream) when the upload stopped early.
          body.destroy();
        }
      },
      request.size,
    );
    const id = response.data.id;
    if (!id) throw new TransientError("google", `Gmail accepted the import for ${gmail.user} but sent no id`);
    return id;
  }

  async #resumable(request: ImportRequest, labelIds: string[]): Promise<string> {
    const { gmail } = request.mailbox;
    return this.#withFreshTokenOnce(request.mailbox, () =>
      this.#limiters.forUser(gmail.user).run(GMAIL_QUOTA_UNITS.import, async () => {
        const result = await resumableImport({
          apiBaseUrl: this.#google.apiBaseUrl,
          user: gmail.user,
          query: {
            internalDateSource: "dateHeader",
            neverMarkSpam: String(gmail.neverMarkSpam),
            processForCalendar: String(gmail.processForCalendar),
          },
          labelIds,
          size: request.size,
          open: request.open,
          accessToken: async () => (await this.#tokens.get(gmail)).value,
          chunkBytes: this.#chunkBytes,
          timeoutMs: this.timeoutFor(Math.min(this.#chunkBytes, request.size)),
          clock: this.#clock,
          maxChunkResumes: 3,
          toError: (failure) => this.#errorFrom(request.mailbox, "import", failure),
        });
        return result.id;
      }),
    );
  }

  async #listLabels(mailbox: MailboxConfig): Promise<GmailLabel[]> {
    const response = await this.#retrying(mailbox, "labels.list", () =>
      this.#call(mailbox, "labels.list", GMAIL_QUOTA_UNITS.labelsList, (options) =>
        this.#client.users.labels.list({ userId: mailbox.gmail.user }, options),
      ),
    );
    return (response.data.labels ?? []).flatMap((l) => (l.id && l.name ? [{ id: l.id, name: l.name }] : []));
  }

  async #createLabel(mailbox: MailboxConfig, name: string): Promise<GmailLabel | undefined> {
    try {
      const response = await this.#retrying(mailbox, "labels.create", () =>
        this.#call(mailbox, "labels.create", GMAIL_QUOTA_UNITS.labelsCreate, (options) =>
          this.#client.users.labels.create(
            {
              userId: mailbox.gmail.user,
              requestBody: { name, labelListVisibility: "labelShow", messageListVisibility: "show" },
            },
            options,
          ),
        ),
      );
      const { id } = response.data;
      return id ? { id, name } : undefined;
    } catch (error) {
      if (error instanceof LabelExistsError) return undefined;
      throw error;
    }
  }

  /**
   * The timeout of one request carrying `bodyBytes`: the base timeout plus the time the body
   * takes at the slowest upload rate still waited for.
   */
  timeoutFor(bodyBytes: number): number {
    return this.#timeoutMs + Math.ceil((Math.max(0, bodyBytes) * 1000) / this.#minUploadBytesPerSecond);
  }

  /** One paced, authorised call through the googleapis client, with its failure sorted into our kinds. */
  #call<T>(
    mailbox: MailboxConfig,
    operation: string,
    units: number,
    send: (options: MethodOptions) => Promise<T>,
    bodyBytes = 0,
  ): Promise<T> {
    return this.#withFreshTokenOnce(mailbox, () =>
      this.#limiters.forUser(mailbox.gmail.user).run(units, async () => {
        const token = await this.#tokens.get(mailbox.gmail);
        try {
          return await send({
            rootUrl: this.#google.apiBaseUrl,
            // Our retry loop decides (it knows the quota and Retry-After); gaxios must not retry too.
            retry: false,
            timeout: this.timeoutFor(bodyBytes),
            headers: { authorization: `Bearer ${token.value}` },
          });
        } catch (error) {
          throw this.#errorFrom(mailbox, operation, failureFromLibraryError(error));
        }
      }),
    );
  }

  /** A 401 may only mean the access token was revoked early: get a new one and try once more. */
  async #withFreshTokenOnce<T>(mailbox: MailboxConfig, task: () => Promise<T>): Promise<T> {
    try {
      return await task();
    } catch (error) {
      if (!(error instanceof AccessTokenRejectedError)) throw error;
      this.#tokens.invalidate(mailbox.gmail);
      return task();
    }
  }

  #errorFrom(mailbox: MailboxConfig, operation: string, failure: GoogleHttpFailure): Pop2GmailError {
    const { gmail } = mailbox;
    if (failure.status === 409 && operation === "labels.create")
      return new LabelExistsError("the label exists already");
    const error = gmailErrorFrom(
      failure,
      { user: gmail.user, operation, now: this.#clock.now(), defaultRetryAfterMs: this.#policy.baseDelayMs },
      gmail.auth,
    );
    if (failure.status === 401 && error instanceof CredentialsError) {
      return new AccessTokenRejectedError("google", error.message, {
        cause: error.cause,
        ...(error.hint === undefined ? {} : { hint: error.hint }),
      });
    }
    // Everyone calling this user should hold back, not only the call that was told.
    if (error instanceof RateLimitedError && failure.retryAfter !== undefined) {
      void this.#limiters.forUser(gmail.user).pause(error.retryAfterMs);
    }
    return error;
  }

  #retrying<T>(
    mailbox: MailboxConfig,
    operation: string,
    attempt: (n: number, lastError: unknown) => Promise<T>,
  ): Promise<T> {
    return withRetries(
      this.#clock,
      this.#policy,
      attempt,
      (n, error, delayMs) =>
        this.#logger?.warn("Gmail call failed; retrying", {
          mailboxId: mailbox.id,
          gmailUser: mailbox.gmail.user,
          operation,
          attempt: n,
          errorCode: error instanceof Error && "code" in error ? String(error.code) : "unknown",
          delayMs,
        }),
      // A request that hung for its whole timeout is not sent again here: the caller gets the
      // uncertain failure at once and releases the POP3 session (a retry comes later, from the
      // queue). Bounded: one call costs at most one timeout per request it sends.
      (error) => !(error instanceof TimeoutError),
    );
  }
}

/** A 401 from the API: the access token was refused (revoked, or the grant lost its scope). */
class AccessTokenRejectedError extends CredentialsError {}

/** labels.create answered 409: another import created the label first. Internal only. */
class LabelExistsError extends Pop2GmailError {
  readonly code = "LABEL_EXISTS";
  readonly retryable = false;
}

function isUncertain(error: unknown): boolean {
  return error instanceof TransientError || error instanceof TimeoutError;
}
