import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { parseMultipartRelated } from "../../fakes/gmail-multipart";

/** An answer the proxy gives instead of passing a request on. */
export interface Refusal {
  readonly status: number;
  /** Google's `reason` (backendError, invalidArgument). */
  readonly reason: string;
  readonly message: string;
  /** Echo the request's credentials in this answer whatever `echoCredentials` says. */
  readonly echo?: boolean;
}

/** What the proxy asks the campaign about each request. */
export interface GmailProxyRules {
  /**
   * Called before a request is passed on, with the message it carries when it is an import
   * (multipart, media or JSON upload); a refusal returned is answered instead (Gmail answered
   * before storing anything).
   */
  readonly before: (request: {
    readonly method: string;
    readonly path: string;
    readonly raw: Buffer | undefined;
  }) => Refusal | undefined;
  /** Called with the message of every import request and the status and Gmail id it got. */
  readonly afterImport: (raw: Buffer, status: number, gmailId: string | undefined) => void;
  /** Whether this error answer echoes the request's credentials (asked once per error answer). */
  readonly echoCredentials: () => boolean;
}

const STATUS_TEXT: Readonly<Record<number, string>> = { 400: "INVALID_ARGUMENT", 503: "UNAVAILABLE" };

/**
 * An HTTP proxy in front of the Gmail API stand-in, where the API's hostile sides are played:
 * an error answer that echoes the request's `Authorization` header (a front end that quotes the
 * request it refused, issue 10 item 7), a 5xx before storing for chosen messages (issue 10 item 1:
 * a message sharing its Message-ID with another gets a 503), and a record of what each import sent
 * and got back (so the campaign can tell "its own import returned an id" from "another message
 * with the same Message-ID is there"). Resumable upload locations are rewritten to pass through it.
 */
export class GmailFaultProxy {
  private server: Server | undefined;
  baseUrl = "";

  constructor(
    private readonly upstreamBaseUrl: string,
    private readonly rules: GmailProxyRules,
  ) {}

  async start(): Promise<string> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch(() => res.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    this.server = server;
    return this.baseUrl;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readAll(req);
    const authorization = req.headers.authorization ?? "";
    const raw = importedMessage(req, body);
    const path = new URL(req.url ?? "/", "http://proxy/").pathname;
    const refusal = this.rules.before({ method: req.method ?? "GET", path, raw });
    if (refusal !== undefined) {
      if (raw !== undefined) this.rules.afterImport(raw, refusal.status, undefined);
      const { status, reason, message } = refusal;
      const text = JSON.stringify({
        error: {
          code: status,
          message,
          errors: [{ message, domain: "global", reason }],
          status: STATUS_TEXT[status] ?? "UNKNOWN",
        },
      });
      const headers = { "content-type": "application/json; charset=UTF-8" };
      this.answer(res, status, headers, text, authorization, refusal.echo === true);
      return;
    }
    const upstream = new URL(req.url ?? "/", this.upstreamBaseUrl);
    const forward = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: `${upstream.pathname}${upstream.search}`,
        method: req.method,
        headers: {
          ...withoutFraming(req.headers),
          host: upstream.host,
          "content-length": String(body.length),
        },
      },
      (answer) => {
        readAll(answer).then(
          (reply) => {
            const status = answer.statusCode ?? 502;
            const headers: Record<string, string> = {};
            for (const [name, value] of Object.entries(withoutFraming(answer.headers))) {
              if (typeof value === "string") headers[name] = value;
            }
            if (headers.location !== undefined) {
              headers.location = headers.location.replace(this.upstreamBaseUrl, this.baseUrl);
            }
            if (raw !== undefined) this.rules.afterImport(raw, status, gmailIdOf(status, reply));
            this.answer(res, status, headers, reply.toString("utf8"), authorization);
          },
          () => res.destroy(),
        );
      },
    );
    // The stand-in's reset: the client sees its connection drop too.
    forward.on("error", () => res.destroy());
    // The client gave up (its per-request timeout on a stalled request): so does the proxy.
    res.on("close", () => {
      if (!res.writableFinished) forward.destroy();
    });
    forward.end(body);
  }

  private answer(
    res: ServerResponse,
    status: number,
    headers: Record<string, string>,
    text: string,
    authorization: string,
    echo = false,
  ): void {
    const echoed =
      status >= 400 && authorization !== "" && (echo || this.rules.echoCredentials())
        ? echoInto(text, `Authorization: ${authorization}`)
        : text;
    res.writeHead(status, { ...headers, "content-length": String(Buffer.byteLength(echoed)) });
    res.end(echoed);
  }
}

/**
 * An error body that quotes `echo` (credentials of the request) in its human-readable message, as
 * a careless front end does: in Google's `error.message` and `errors[].message`, in OAuth's
 * `error_description`, or appended to a body that is not JSON.
 */
export function echoInto(text: string, echo: string): string {
  const quoted = ` (request was: ${echo})`;
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    const error = parsed.error;
    if (typeof error === "object" && error !== null) {
      const details = error as { message?: unknown; errors?: unknown };
      details.message = `${typeof details.message === "string" ? details.message : ""}${quoted}`;
      if (Array.isArray(details.errors)) {
        for (const item of details.errors as { message?: unknown }[]) {
          if (typeof item === "object" && item !== null)
            item.message = `${String(item.message ?? "")}${quoted}`;
        }
      }
    } else {
      parsed.error_description = `${typeof parsed.error_description === "string" ? parsed.error_description : ""}${quoted}`;
    }
    return JSON.stringify(parsed);
  } catch {
    return `${text}${quoted}`;
  }
}

/** The message an import request carries (multipart, media or JSON upload), else undefined. */
function importedMessage(req: IncomingMessage, body: Buffer): Buffer | undefined {
  if (req.method !== "POST") return undefined;
  const url = new URL(req.url ?? "/", "http://proxy/");
  if (!/^\/(upload\/)?gmail\/v1\/users\/[^/]+\/messages\/import$/.test(url.pathname)) return undefined;
  try {
    if (!url.pathname.startsWith("/upload/")) {
      const raw = (JSON.parse(body.toString("utf8")) as { raw?: unknown }).raw;
      return typeof raw === "string" ? Buffer.from(raw, "base64url") : undefined;
    }
    const uploadType = url.searchParams.get("uploadType");
    if (uploadType === "media") return body;
    if (uploadType !== "multipart") return undefined;
    const boundary = /boundary=("?)([^";]+)\1/i.exec(req.headers["content-type"] ?? "")?.[2];
    if (boundary === undefined) return undefined;
    return parseMultipartRelated(body, boundary)[1]?.body;
  } catch {
    return undefined;
  }
}

function gmailIdOf(status: number, reply: Buffer): string | undefined {
  if (status !== 200) return undefined;
  try {
    const id = (JSON.parse(reply.toString("utf8")) as { id?: unknown }).id;
    return typeof id === "string" ? id : undefined;
  } catch {
    return undefined;
  }
}

/** Headers without the message framing ones: the proxy sends whole bodies with their own length. */
function withoutFraming(headers: IncomingMessage["headers"]): IncomingMessage["headers"] {
  const {
    "transfer-encoding": _encoding,
    "content-length": _length,
    connection: _connection,
    ...rest
  } = headers;
  return rest;
}

function readAll(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => parts.push(chunk));
    stream.on("end", () => resolve(Buffer.concat(parts)));
    stream.on("error", reject);
    stream.on("aborted", () => reject(new Error("aborted")));
  });
}
