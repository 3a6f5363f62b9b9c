import { createHash, sign } from "node:crypto";
import type { GmailConfig } from "../../config/tenant-config";
import { CredentialsError, type Pop2GmailError, RateLimitedError, TransientError } from "../../core/errors";
import type { Clock } from "../../ports/clock";
import type { SecretStore } from "../../ports/secret-store";
import { googleCredentialsHint } from "./gmail-error-mapping";
import { type GoogleCredentials, parseGoogleCredentials } from "./google-credentials";
import { describeGoogleError, parseRetryAfter } from "./google-http-failure";
import { type HttpExchangeResponse, HttpTransportFailure, httpExchange } from "./http-exchange";

/** An access token and what it may do. */
export interface AccessToken {
  readonly value: string;
  readonly expiresAt: number;
  /** Scopes granted, from the token response; empty when Google did not say. */
  readonly scopes: ReadonlySet<string>;
}

/** Scopes asked for in a service account's JWT grant (must match its domain-wide delegation). */
export const DEFAULT_SERVICE_ACCOUNT_SCOPES = [
  "https://www.googleapis.com/auth/gmail.insert",
  "https://www.googleapis.com/auth/gmail.labels",
] as const;

/** Scopes that allow the look-up of an earlier import (`messages.list` with `q`, `messages.get`). */
export const GMAIL_READ_SCOPES = [
  "https://mail.google.com/",
  "https://www.googleapis.com/auth/gmail.modify",
  "https://www.googleapis.com/auth/gmail.readonly",
] as const;

// Renew a little before expiry so a token never lapses between the check and the request.
const EXPIRY_MARGIN_MS = 60_000;

interface CacheEntry {
  token: AccessToken | undefined;
  pending: Promise<AccessToken> | undefined;
  /** The refusal we got for this exact secret value: no point asking again until it changes. */
  broken: { readonly fingerprint: string; readonly error: Pop2GmailError } | undefined;
}

/** Options of {@link GoogleAccessTokens}. */
export interface GoogleAccessTokensOptions {
  readonly tokenUrl: string;
  readonly secrets: SecretStore;
  readonly clock: Clock;
  readonly timeoutMs: number;
  readonly serviceAccountScopes: readonly string[];
}

/**
 * Gets and caches OAuth access tokens per Gmail user, with either grant: `refresh_token`
 * (consumer Gmail and Workspace) or the JWT bearer grant of a service account impersonating the
 * user (Workspace domain-wide delegation). Written against the token URL directly so the URL is
 * a setting for both grants (google-auth-library's JWT client hard-codes Google's).
 *
 * A refusal (`invalid_grant`) is remembered for that secret value, so a mailbox with broken
 * credentials yields one CredentialsError per call without hammering the token endpoint.
 */
export class GoogleAccessTokens {
  readonly #options: GoogleAccessTokensOptions;
  readonly #cache = new Map<string, CacheEntry>();

  constructor(options: GoogleAccessTokensOptions) {
    this.#options = options;
  }

  /** A valid access token for `gmail.user`. Throws CredentialsError, TransientError, RateLimitedError. */
  async get(gmail: GmailConfig): Promise<AccessToken> {
    const key = `${gmail.user.toLowerCase()}\n${gmail.credentialsSecret}`;
    const entry: CacheEntry = this.#cache.get(key) ?? {
      token: undefined,
      pending: undefined,
      broken: undefined,
    };
    this.#cache.set(key, entry);
    if (entry.token && entry.token.expiresAt - EXPIRY_MARGIN_MS > this.#options.clock.now())
      return entry.token;
    if (!entry.pending) {
      entry.pending = this.#fetch(gmail, entry).finally(() => {
        entry.pending = undefined;
      });
    }
    return entry.pending;
  }

  /** Forgets the cached token of `gmail.user` (after a 401, the token may have been revoked). */
  invalidate(gmail: GmailConfig): void {
    const entry = this.#cache.get(`${gmail.user.toLowerCase()}\n${gmail.credentialsSecret}`);
    if (entry) entry.token = undefined;
  }

  async #fetch(gmail: GmailConfig, entry: CacheEntry): Promise<AccessToken> {
    const secretValue = await this.#options.secrets.get(gmail.credentialsSecret);
    const fingerprint = createHash("sha256").update(secretValue).digest("hex");
    if (entry.broken?.fingerprint === fingerprint) throw entry.broken.error;
    const credentials = parseGoogleCredentials(gmail.credentialsSecret, gmail.auth, secretValue);
    try {
      const token = await this.#request(gmail, credentials);
      entry.token = token;
      entry.broken = undefined;
      return token;
    } catch (error) {
      if (error instanceof CredentialsError) entry.broken = { fingerprint, error };
      throw error;
    }
  }

  async #request(gmail: GmailConfig, credentials: GoogleCredentials): Promise<AccessToken> {
    const now = this.#options.clock.now();
    const form = new URLSearchParams(
      credentials.kind === "oauth"
        ? {
            grant_type: "refresh_token",
            client_id: credentials.clientId,
            client_secret: credentials.clientSecret,
            refresh_token: credentials.refreshToken,
          }
        : {
            grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
            assertion: this.#signedAssertion(gmail.user, credentials, now),
          },
    );
    // node:http(s), like the resumable upload, not the global fetch: Node's fetch is undici, whose
    // first connection compiles its WebAssembly HTTP parser, and V8's background optimisation of
    // that module took 20-25 MB of native memory (bench/README.md, "Gmail import memory").
    let response: HttpExchangeResponse;
    try {
      response = await httpExchange({
        method: "POST",
        url: this.#options.tokenUrl,
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: form.toString(),
        timeoutMs: this.#options.timeoutMs,
      });
    } catch (cause) {
      const name =
        cause instanceof HttpTransportFailure
          ? (cause.failure.networkCode ?? "Error")
          : cause instanceof Error
            ? cause.name
            : "Error";
      // Token failures happen before any import request leaves, so they never leave an import uncertain.
      throw new TransientError("google", `the Google token endpoint could not be reached (${name})`, {
        cause: new Error(name),
        requestNotSent: true,
      });
    }
    let body: unknown = response.text;
    try {
      body = JSON.parse(response.text);
    } catch {
      // Not JSON (a proxy's error page): keep the text for the reason, it holds no secret of ours.
    }
    if (response.status >= 200 && response.status < 300) return this.#tokenFrom(body, now);
    throw this.#errorFrom(response, body, gmail, now);
  }

  #tokenFrom(body: unknown, now: number): AccessToken {
    const b = (typeof body === "object" && body !== null ? body : {}) as {
      access_token?: unknown;
      expires_in?: unknown;
      scope?: unknown;
    };
    if (typeof b.access_token !== "string" || b.access_token === "") {
      throw new TransientError("google", "the Google token endpoint answered without an access token", {
        requestNotSent: true,
      });
    }
    const expiresIn = typeof b.expires_in === "number" ? b.expires_in : 3600;
    const scopes = typeof b.scope === "string" ? b.scope.split(/\s+/).filter((s) => s !== "") : [];
    return { value: b.access_token, expiresAt: now + expiresIn * 1000, scopes: new Set(scopes) };
  }

  #errorFrom(response: HttpExchangeResponse, body: unknown, gmail: GmailConfig, now: number): Pop2GmailError {
    const { reasons, message } = describeGoogleError(body);
    const cause = new Error(
      `token endpoint HTTP ${response.status} ${reasons.join(",")} ${message ?? ""}`.trim(),
    );
    if (response.status === 429) {
      const retryAfter = response.headers["retry-after"];
      const retryAfterMs =
        parseRetryAfter(typeof retryAfter === "string" ? retryAfter : undefined, now) ?? 1000;
      return new RateLimitedError("google", retryAfterMs, "the Google token endpoint is rate limiting", {
        cause,
      });
    }
    if (response.status >= 500) {
      return new TransientError("google", `the Google token endpoint answered ${response.status}`, {
        cause,
        requestNotSent: true,
      });
    }
    const reason = reasons[0] ?? `HTTP ${response.status}`;
    return new CredentialsError("google", `Google refused the credentials for ${gmail.user}: ${reason}`, {
      cause,
      hint: googleCredentialsHint(gmail.user, gmail.auth),
    });
  }

  #signedAssertion(
    user: string,
    credentials: Extract<GoogleCredentials, { kind: "service-account" }>,
    now: number,
  ): string {
    const issuedAt = Math.floor(now / 1000);
    const header = {
      alg: "RS256",
      typ: "JWT",
      ...(credentials.privateKeyId ? { kid: credentials.privateKeyId } : {}),
    };
    const claims = {
      iss: credentials.clientEmail,
      sub: user,
      scope: this.#options.serviceAccountScopes.join(" "),
      aud: this.#options.tokenUrl,
      iat: issuedAt,
      exp: issuedAt + 3600,
    };
    const unsigned = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    let signature: Buffer;
    try {
      signature = sign("sha256", Buffer.from(unsigned), credentials.privateKey);
    } catch {
      throw new CredentialsError(
        "google",
        `the service account key for ${user} cannot sign (bad private_key)`,
        {
          hint: "Store the service account's JSON key file unchanged in the secret.",
        },
      );
    }
    return `${unsigned}.${signature.toString("base64url")}`;
  }
}

function base64url(text: string): string {
  return Buffer.from(text).toString("base64url");
}
