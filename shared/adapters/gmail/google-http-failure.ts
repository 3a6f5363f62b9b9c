import { redactSecrets } from "../../core/redact-secrets";

/**
 * What went wrong with one HTTP exchange with Google, reduced to plain data. Built from the
 * client library's error or from our own HTTP calls, and deliberately free of request headers:
 * the library's error object carries the `Authorization` header, so it must never be kept.
 */
export interface GoogleHttpFailure {
  readonly status?: number;
  /** The Retry-After header as sent (seconds or an HTTP date). */
  readonly retryAfter?: string;
  /** The parsed JSON error body, if any. */
  readonly body?: unknown;
  /** A network error code such as ECONNRESET. */
  readonly networkCode?: string;
  readonly timedOut?: boolean;
}

interface GoogleErrorBody {
  readonly error?:
    | string
    | {
        readonly code?: number;
        readonly message?: string;
        readonly status?: string;
        readonly errors?: ReadonlyArray<{ readonly reason?: string; readonly message?: string }>;
      };
  readonly error_description?: string;
}

/**
 * The `reason` values and message of a Google JSON error body (API or OAuth shape), with any
 * credential a server echoed in them redacted (docs/pipeline.md, "Error texts"): everything that
 * turns a Google answer into an error text goes through here.
 */
export function describeGoogleError(body: unknown): { reasons: string[]; message: string | undefined } {
  const { reasons, message } = rawDescription(body);
  return {
    reasons: reasons.map((r) => redactSecrets(r).slice(0, 100)),
    message: message === undefined ? undefined : redactSecrets(message).slice(0, 500),
  };
}

function rawDescription(body: unknown): { reasons: string[]; message: string | undefined } {
  if (typeof body !== "object" || body === null) {
    // Redacted before it is cut, so a cut cannot leave half a token behind.
    return { reasons: [], message: typeof body === "string" && body !== "" ? body : undefined };
  }
  const parsed = body as GoogleErrorBody;
  if (typeof parsed.error === "string") {
    return { reasons: [parsed.error], message: parsed.error_description ?? parsed.error };
  }
  const reasons = (parsed.error?.errors ?? [])
    .map((e) => e.reason)
    .filter((r): r is string => typeof r === "string");
  if (typeof parsed.error?.status === "string") reasons.push(parsed.error.status);
  const message = parsed.error?.message;
  return { reasons, message: typeof message === "string" ? message : undefined };
}

/** Parses Retry-After (delta seconds or HTTP date) into milliseconds from `now`. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

// gaxios aborts a request at its `timeout` and reports an AbortError; we never abort otherwise.
const TIMEOUT_CODES = new Set(["TimeoutError", "AbortError", "ETIMEDOUT", "ESOCKETTIMEDOUT", "ECONNABORTED"]);

/**
 * Reads the parts we need from an error thrown by the googleapis client (a GaxiosError), by
 * shape rather than by class so no transitive package is imported. Anything else is treated as a
 * network failure.
 */
export function failureFromLibraryError(error: unknown): GoogleHttpFailure {
  if (typeof error !== "object" || error === null) return { networkCode: "UNKNOWN" };
  const e = error as {
    name?: unknown;
    code?: unknown;
    status?: unknown;
    response?: { status?: unknown; headers?: unknown; data?: unknown };
    cause?: unknown;
  };
  const status = typeof e.response?.status === "number" ? e.response.status : undefined;
  if (status !== undefined) {
    const retryAfter = headerValue(e.response?.headers, "retry-after");
    return {
      status,
      ...(retryAfter === undefined ? {} : { retryAfter }),
      ...(e.response?.data === undefined ? {} : { body: e.response.data }),
    };
  }
  const code =
    typeof e.code === "string"
      ? e.code
      : typeof e.name === "string" && e.name !== "Error"
        ? e.name
        : "UNKNOWN";
  const causeName =
    typeof e.cause === "object" && e.cause !== null ? (e.cause as { name?: unknown }).name : undefined;
  const timedOut = TIMEOUT_CODES.has(code) || (typeof causeName === "string" && TIMEOUT_CODES.has(causeName));
  return { networkCode: code, ...(timedOut ? { timedOut } : {}) };
}

function headerValue(headers: unknown, name: string): string | undefined {
  if (headers === null || typeof headers !== "object") return undefined;
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? undefined;
  const value = (headers as Record<string, unknown>)[name];
  return typeof value === "string" ? value : undefined;
}
