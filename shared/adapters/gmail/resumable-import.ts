import { IntegrityError, type Pop2GmailError, TransientError } from "../../core/errors";
import type { Clock } from "../../ports/clock";
import { byteChunks } from "./byte-chunks";
import type { GoogleHttpFailure } from "./google-http-failure";
import { type HttpExchangeResponse, HttpTransportFailure, httpExchange } from "./http-exchange";

/** Everything one resumable `messages.import` upload needs. */
export interface ResumableImportInput {
  /** e.g. https://gmail.googleapis.com/ (trailing slash optional). */
  readonly apiBaseUrl: string;
  readonly user: string;
  /** Query parameters of the import (internalDateSource, neverMarkSpam, processForCalendar). */
  readonly query: Readonly<Record<string, string>>;
  readonly labelIds: readonly string[];
  readonly size: number;
  readonly open: () => Promise<AsyncIterable<Uint8Array>>;
  readonly accessToken: () => Promise<string>;
  /** A multiple of 256 KiB (Google's rule for every chunk but the last). */
  readonly chunkBytes: number;
  readonly timeoutMs: number;
  readonly clock: Clock;
  /** How many times one chunk may be resumed after an interruption before giving up. */
  readonly maxChunkResumes: number;
  /** Sorts an HTTP failure into our error kinds. */
  readonly toError: (failure: GoogleHttpFailure) => Pop2GmailError;
}

/** Google's granularity for resumable chunks. */
export const RESUMABLE_CHUNK_GRANULARITY = 256 * 1024;

/**
 * Imports one message with Google's resumable upload protocol, written by hand because the Node
 * client has none: POST the metadata to `upload/gmail/v1/users/{userId}/messages/import?uploadType=resumable`,
 * then PUT the bytes chunk by chunk with Content-Range. Only the current chunk is in memory; when
 * a chunk is interrupted, the upload status (`Content-Range: bytes * /size`) says how much Google
 * kept and the rest of the chunk is sent again. A lost session throws a retryable error so the
 * caller restarts from a fresh stream.
 */
export async function resumableImport(input: ResumableImportInput): Promise<{ id: string }> {
  const sessionUrl = await startSession(input);
  const source = await input.open();
  let offset = 0;
  for await (const chunk of byteChunks(source, input.chunkBytes)) {
    const end = offset + chunk.byteLength;
    if (end > input.size) {
      throw new IntegrityError(`the message has more than the ${input.size} bytes announced`);
    }
    const done = await sendChunk(input, sessionUrl, chunk, offset);
    if (done) {
      if (end !== input.size) throw new IntegrityError("Gmail finished the upload before the last chunk");
      return done;
    }
    offset = end;
  }
  throw new IntegrityError(`the message ended after ${offset} of ${input.size} bytes`);
}

async function startSession(input: ResumableImportInput): Promise<string> {
  const query = new URLSearchParams({ ...input.query, uploadType: "resumable" });
  const url = new URL(
    `upload/gmail/v1/users/${encodeURIComponent(input.user)}/messages/import?${query}`,
    withSlash(input.apiBaseUrl),
  );
  const response = await exchange(input, {
    method: "POST",
    url: url.href,
    headers: {
      authorization: `Bearer ${await input.accessToken()}`,
      "content-type": "application/json; charset=UTF-8",
      "x-upload-content-type": "message/rfc822",
      "x-upload-content-length": String(input.size),
    },
    body: JSON.stringify({ labelIds: input.labelIds }),
  });
  const location = header(response, "location");
  if (response.status !== 200 || location === undefined) throw input.toError(failureOf(response));
  return new URL(location, url).href;
}

/** Sends one chunk, resuming it after interruptions; returns the message id when Gmail finished. */
async function sendChunk(
  input: ResumableImportInput,
  sessionUrl: string,
  chunk: Buffer,
  offset: number,
): Promise<{ id: string } | undefined> {
  const end = offset + chunk.byteLength;
  let sent = offset;
  for (let resumes = 0; ; resumes += 1) {
    let response: HttpExchangeResponse | undefined;
    try {
      response = await exchange(input, {
        method: "PUT",
        url: sessionUrl,
        headers: {
          authorization: `Bearer ${await input.accessToken()}`,
          "content-range": `bytes ${sent}-${end - 1}/${input.size}`,
        },
        body: chunk.subarray(sent - offset),
      });
    } catch (error) {
      if (!(error instanceof HttpTransportFailure)) throw error;
      // A chunk that got no answer in its whole timeout is not resumed: the caller gets the
      // uncertain failure at once (docs/pipeline.md, "Gmail requests are bounded"). A reset is.
      if (error.failure.timedOut === true || resumes >= input.maxChunkResumes) {
        throw input.toError(error.failure);
      }
    }
    if (response) {
      const outcome = interpret(input, response);
      if (outcome.kind === "done") return outcome.result;
      if (outcome.kind === "committed") {
        if (outcome.committed >= end) return undefined;
        // Google kept only part of the chunk: send the rest straight away.
        if (outcome.committed >= offset && resumes < input.maxChunkResumes) {
          sent = outcome.committed;
          continue;
        }
      }
      if (outcome.kind === "failed" && (response.status < 500 || resumes >= input.maxChunkResumes)) {
        throw outcome.error;
      }
    }
    await input.clock.sleep(Math.min(8_000, 250 * 2 ** resumes));
    const status = await queryStatus(input, sessionUrl);
    if (status.kind === "done") return status.result;
    if (status.kind === "failed") throw status.error;
    if (status.committed < offset || status.committed > end) {
      throw new TransientError("google", "the resumable upload lost bytes it had confirmed; restarting it");
    }
    if (status.committed === end) return undefined;
    sent = status.committed;
  }
}

type Outcome =
  | { kind: "done"; result: { id: string } }
  | { kind: "committed"; committed: number }
  | { kind: "failed"; error: Pop2GmailError };

async function queryStatus(input: ResumableImportInput, sessionUrl: string): Promise<Outcome> {
  let response: HttpExchangeResponse;
  try {
    response = await exchange(input, {
      method: "PUT",
      url: sessionUrl,
      headers: {
        authorization: `Bearer ${await input.accessToken()}`,
        "content-range": `bytes */${input.size}`,
      },
      body: "",
    });
  } catch (error) {
    if (error instanceof HttpTransportFailure) return { kind: "failed", error: input.toError(error.failure) };
    throw error;
  }
  if (response.status === 404 || response.status === 410) {
    return {
      kind: "failed",
      error: new TransientError("google", "the resumable upload session expired; restarting the upload"),
    };
  }
  return interpret(input, response);
}

function interpret(input: ResumableImportInput, response: HttpExchangeResponse): Outcome {
  if (response.status === 200 || response.status === 201) {
    const id = parseId(response.text);
    if (id === undefined) {
      return {
        kind: "failed",
        error: new TransientError("google", "Gmail finished the upload without an id"),
      };
    }
    return { kind: "done", result: { id } };
  }
  if (response.status === 308) {
    // "Range: bytes=0-N" lists what Google kept; no Range header means nothing yet.
    const match = /bytes=0-(\d+)/.exec(header(response, "range") ?? "");
    return { kind: "committed", committed: match?.[1] === undefined ? 0 : Number(match[1]) + 1 };
  }
  return { kind: "failed", error: input.toError(failureOf(response)) };
}

function exchange(
  input: ResumableImportInput,
  req: { method: "POST" | "PUT"; url: string; headers: Record<string, string>; body: Uint8Array | string },
): Promise<HttpExchangeResponse> {
  return httpExchange({ ...req, timeoutMs: input.timeoutMs });
}

function failureOf(response: HttpExchangeResponse): GoogleHttpFailure {
  let body: unknown = response.text;
  try {
    body = JSON.parse(response.text);
  } catch {
    // keep the text
  }
  const retryAfter = header(response, "retry-after");
  return { status: response.status, body, ...(retryAfter === undefined ? {} : { retryAfter }) };
}

function parseId(text: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    const id = (parsed as { id?: unknown } | null)?.id;
    return typeof id === "string" && id !== "" ? id : undefined;
  } catch {
    return undefined;
  }
}

function header(response: HttpExchangeResponse, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function withSlash(url: string): string {
  return url.endsWith("/") ? url : `${url}/`;
}
