import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";
import type { GoogleHttpFailure } from "./google-http-failure";

/** One HTTP request with a body held in memory (a JSON document or one upload chunk). */
export interface HttpExchangeRequest {
  readonly method: "POST" | "PUT";
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: Uint8Array | string;
  readonly timeoutMs: number;
}

/** The answer: status, headers and up to 1 MB of body text. */
export interface HttpExchangeResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

/** Thrown when no HTTP answer arrived (reset, refused, timeout). */
export class HttpTransportFailure extends Error {
  constructor(readonly failure: GoogleHttpFailure) {
    super(`HTTP transport failure: ${failure.networkCode ?? "unknown"}`);
  }
}

const MAX_RESPONSE_BYTES = 1024 * 1024;

/**
 * Sends one request with node:http(s) and collects the answer. Used for the resumable upload,
 * which the googleapis Node client does not offer (node:http lets us set Content-Length and
 * Content-Range exactly and write a chunk without copying it), and for the OAuth token requests.
 * Not the global fetch: its first connection makes V8 compile undici's WebAssembly HTTP parser
 * in the background, which cost 20-25 MB of peak RSS (bench/README.md, "Gmail import memory").
 */
export function httpExchange(req: HttpExchangeRequest): Promise<HttpExchangeResponse> {
  const url = new URL(req.url);
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  const body = typeof req.body === "string" ? Buffer.from(req.body) : req.body;
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (failure: GoogleHttpFailure) => {
      if (settled) return;
      settled = true;
      reject(new HttpTransportFailure(failure));
    };
    const request = send(
      url,
      { method: req.method, headers: { ...req.headers, "content-length": String(body.byteLength) } },
      (response) => {
        const parts: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          if (size < MAX_RESPONSE_BYTES) parts.push(chunk);
          size += chunk.length;
        });
        response.on("error", () => fail({ networkCode: "ECONNRESET" }));
        response.on("end", () => {
          if (settled) return;
          settled = true;
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            text: Buffer.concat(parts).toString("utf8"),
          });
        });
      },
    );
    request.setTimeout(req.timeoutMs, () => {
      fail({ networkCode: "ETIMEDOUT", timedOut: true });
      request.destroy();
    });
    request.on("error", (error: NodeJS.ErrnoException) => fail({ networkCode: error.code ?? error.name }));
    request.end(body);
  });
}
