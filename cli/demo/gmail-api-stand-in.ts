import { createPublicKey, type KeyObject, randomBytes, verify } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { splitGmailCopy } from "../../shared/core/gmail-copy";
import { parseMultipartRelated } from "./gmail-multipart";
import { seededRandom } from "./seeded-random";

/** Which API operation a request is, as the stand-in classifies it. */
export type GmailOperation =
  | "token"
  | "import"
  | "upload-session"
  | "upload-chunk"
  | "messages.list"
  | "messages.get"
  | "labels.list"
  | "labels.create"
  | "profile"
  | "unknown";

/** A request as fault rules and tests see it. */
export interface StandInRequest {
  readonly sequence: number;
  readonly method: string;
  readonly path: string;
  readonly operation: GmailOperation;
  readonly user: string | undefined;
  readonly uploadType: string | undefined;
}

/** What to do instead of (or after) serving a request. */
export type FaultAction =
  | {
      readonly kind: "status";
      readonly status: number;
      /** Google's `reason` (e.g. rateLimitExceeded, backendError, invalidArgument, invalid_grant). */
      readonly reason?: string;
      readonly message?: string;
      readonly retryAfterSeconds?: number;
      /** Serve the request (store the message) and then answer with this failure: a lost answer. */
      readonly afterStore?: boolean;
      /**
       * A careless server: the error message echoes the request's Authorization header and
       * query string (where tokens would sit), as some proxies and debug builds do.
       */
      readonly echoCredentials?: boolean;
    }
  | { readonly kind: "stall" }
  | { readonly kind: "reset" };

/** When to inject `action`: requests matching `match`, at most `times` of them, each with `probability`. */
export interface FaultRule {
  readonly match?: (request: StandInRequest) => boolean;
  readonly times?: number;
  readonly probability?: number;
  readonly action: FaultAction;
}

/** A message as the stand-in holds it. */
export interface StoredMessage {
  readonly id: string;
  readonly threadId: string;
  readonly user: string;
  /**
   * The message as pop2gmail archived it: the bytes received without the trace lines pop2gmail
   * prepends (`X-Pop2Gmail-Id`, a synthesized Message-ID; see shared/core/gmail-copy.ts). Bytes
   * without those lines are kept whole.
   */
  readonly raw: Buffer;
  /** Exactly the bytes the import carried. */
  readonly received: Buffer;
  /** The `X-Pop2Gmail-Id` the copy carried, if any. */
  readonly traceId: string | undefined;
  labelIds: string[];
  /** Query parameters of the import request (internalDateSource, neverMarkSpam, ...). */
  readonly query: Readonly<Record<string, string>>;
  readonly uploadType: "json" | "multipart" | "media" | "resumable";
  readonly messageIdHeader: string | undefined;
  readonly importedAt: number;
}

/** One import request that reached storage, merged into an earlier message or not. */
export interface RawImport {
  readonly user: string;
  readonly messageIdHeader: string | undefined;
  readonly gmailId: string;
  readonly merged: boolean;
  readonly at: number;
}

/** Options of the stand-in. */
export interface GmailApiStandInOptions {
  /** The stand-in's time (quota windows, token expiry); share a test clock with the sink. */
  readonly now?: () => number;
  /** Seed of the PRNG behind probabilistic faults. */
  readonly seed?: number;
  /**
   * Per-user quota units per rolling minute (the units of requests that arrived in the last 60 s;
   * an import costs 25); past it a request gets 429 rateLimitExceeded with Retry-After, like
   * Gmail, counted by `quotaRefusals`. Unlimited when absent.
   */
  readonly quotaUnitsPerMinute?: number;
  /** Per-user requests in flight at once; above it Gmail answers 429 "Too many concurrent requests". */
  readonly maxConcurrentPerUser?: number;
  readonly accessTokenLifetimeSeconds?: number;
  /**
   * Real milliseconds an import (or an upload chunk) takes to answer, as Gmail's ~300 ms do; the
   * request counts as in flight meanwhile. Default 0.
   */
  readonly importLatencyMs?: number;
}

/** Gmail API scopes. */
export const GMAIL_SCOPES = {
  insert: "https://www.googleapis.com/auth/gmail.insert",
  labels: "https://www.googleapis.com/auth/gmail.labels",
  readonly: "https://www.googleapis.com/auth/gmail.readonly",
  modify: "https://www.googleapis.com/auth/gmail.modify",
  full: "https://mail.google.com/",
} as const;

const COSTS: Partial<Record<GmailOperation, number>> = {
  import: 25,
  "upload-session": 25,
  "messages.list": 5,
  "messages.get": 5,
  "labels.list": 1,
  "labels.create": 5,
  profile: 1,
};

const NEEDS: Partial<Record<GmailOperation, readonly string[]>> = {
  import: [GMAIL_SCOPES.insert, GMAIL_SCOPES.modify, GMAIL_SCOPES.full],
  "upload-session": [GMAIL_SCOPES.insert, GMAIL_SCOPES.modify, GMAIL_SCOPES.full],
  "messages.list": [GMAIL_SCOPES.readonly, GMAIL_SCOPES.modify, GMAIL_SCOPES.full],
  "messages.get": [GMAIL_SCOPES.readonly, GMAIL_SCOPES.modify, GMAIL_SCOPES.full],
  "labels.list": [GMAIL_SCOPES.labels, GMAIL_SCOPES.readonly, GMAIL_SCOPES.modify, GMAIL_SCOPES.full],
  "labels.create": [GMAIL_SCOPES.labels, GMAIL_SCOPES.modify, GMAIL_SCOPES.full],
  profile: [GMAIL_SCOPES.readonly, GMAIL_SCOPES.modify, GMAIL_SCOPES.full, GMAIL_SCOPES.insert],
};

const SYSTEM_LABELS = ["INBOX", "UNREAD", "STARRED", "IMPORTANT", "SPAM", "TRASH", "SENT", "DRAFT"];
const STATUS_TEXT: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  409: "ALREADY_EXISTS",
  429: "RESOURCE_EXHAUSTED",
  500: "INTERNAL",
  503: "UNAVAILABLE",
};

interface OAuthGrant {
  readonly user: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly scopes: readonly string[];
  revoked: boolean;
}
interface Mailbox {
  readonly labels: Map<string, { id: string; name: string; type: "system" | "user" }>;
  /** Every stored message per Message-ID (several messages may share one). */
  readonly byMessageId: Map<string, StoredMessage[]>;
  inFlight: number;
  readonly spent: Array<{ at: number; units: number }>;
}
interface UploadSession {
  readonly user: string;
  readonly query: Record<string, string>;
  readonly labelIds: string[];
  readonly total: number | undefined;
  readonly parts: Buffer[];
  received: number;
  done: StoredMessage | undefined;
}
class Reply {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {}
}

/**
 * A loopback stand-in for the Gmail API and Google's OAuth token endpoint, spoken to by the real
 * googleapis client and our own resumable upload. It stores every import byte for byte, merges a
 * re-import of a message it holds (same Message-ID, same bytes) like Gmail, keeps different
 * messages that share a Message-ID apart, answers `rfc822msgid:` searches with every candidate
 * and `messages.get` (format metadata, `metadataHeaders`) from the stored headers, enforces a
 * per-user quota and concurrency limit with 429s, and fails or stalls chosen requests on demand.
 */
export class GmailApiStandIn {
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #options: GmailApiStandInOptions;
  #server: Server | undefined;
  #baseUrl = "";
  #sequence = 0;
  #nextId = 0x18f0000000000000n;
  #nextLabel = 1;
  readonly #grants = new Map<string, OAuthGrant>();
  readonly #serviceAccounts = new Map<string, { key: KeyObject; scopes: readonly string[] | undefined }>();
  readonly #accessTokens = new Map<string, { user: string; scopes: readonly string[]; expiresAt: number }>();
  readonly #mailboxes = new Map<string, Mailbox>();
  readonly #sessions = new Map<string, UploadSession>();
  readonly #faults: Array<{ rule: FaultRule; remaining: number }> = [];
  readonly #stalled = new Set<ServerResponse>();
  readonly #messages: StoredMessage[] = [];
  readonly #rawImports: RawImport[] = [];
  readonly #log: Array<{ request: StandInRequest; status: number }> = [];
  readonly #quotaRefusals = new Map<string, number>();

  constructor(options: GmailApiStandInOptions = {}) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#random = seededRandom(options.seed ?? 1);
  }

  /** Listens on 127.0.0.1 on a free port; `baseUrl` is the API root, `tokenUrl` the OAuth endpoint. */
  async start(): Promise<{ baseUrl: string; tokenUrl: string }> {
    const server = createServer((req, res) => {
      this.#handle(req, res).catch(() => {
        if (!res.headersSent)
          this.#send(res, new Reply(500, googleError(500, "stand-in failure", "backendError")));
      });
    });
    server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.#server = server;
    const { port } = server.address() as AddressInfo;
    this.#baseUrl = `http://127.0.0.1:${port}/`;
    return { baseUrl: this.#baseUrl, tokenUrl: `${this.#baseUrl}token` };
  }

  /** Closes the server and every connection, stalled ones included. */
  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    for (const res of this.#stalled) res.destroy();
    this.#stalled.clear();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  /** Registers a Gmail user reachable with an OAuth client and refresh token. */
  registerOAuthUser(grant: {
    user: string;
    clientId: string;
    clientSecret: string;
    refreshToken: string;
    scopes?: readonly string[];
  }): void {
    this.#grants.set(grant.refreshToken, {
      user: grant.user.toLowerCase(),
      clientId: grant.clientId,
      clientSecret: grant.clientSecret,
      scopes: grant.scopes ?? [GMAIL_SCOPES.insert, GMAIL_SCOPES.labels],
      revoked: false,
    });
    this.#mailbox(grant.user);
  }

  /** Registers a service account allowed (domain-wide delegation) to act for any user, with these scopes. */
  registerServiceAccount(account: {
    clientEmail: string;
    publicKeyPem: string;
    allowedScopes?: readonly string[];
  }): void {
    this.#serviceAccounts.set(account.clientEmail, {
      key: createPublicKey(account.publicKeyPem),
      scopes: account.allowedScopes,
    });
  }

  /** Revokes a refresh token (the user removed access, or a 'Testing' app's 7 days ran out). */
  revokeRefreshToken(refreshToken: string): void {
    const grant = this.#grants.get(refreshToken);
    if (grant) grant.revoked = true;
  }

  /** Invalidates every access token issued so far (as if they had been revoked). */
  revokeAccessTokens(): void {
    this.#accessTokens.clear();
  }

  /** Adds a fault rule; rules are checked in order and the first that fires wins. */
  injectFault(rule: FaultRule): void {
    this.#faults.push({ rule, remaining: rule.times ?? Number.POSITIVE_INFINITY });
  }

  clearFaults(): void {
    this.#faults.length = 0;
  }

  /** Drops the connections of stalled requests (the client sees a reset). */
  releaseStalled(): void {
    for (const res of this.#stalled) res.destroy();
    this.#stalled.clear();
  }

  /** Messages stored, in import order (a merged re-import does not add one). */
  messages(user?: string): StoredMessage[] {
    return user === undefined
      ? [...this.#messages]
      : this.#messages.filter((m) => m.user === user.toLowerCase());
  }

  /** Every import that reached storage, including re-imports Gmail merged. */
  rawImports(): RawImport[] {
    return [...this.#rawImports];
  }

  /** How many imports carried this Message-ID (angle brackets optional). */
  rawImportCount(messageIdHeader: string): number {
    const id = normalizeMessageId(messageIdHeader);
    return this.#rawImports.filter((r) => r.messageIdHeader === id).length;
  }

  /** The user's labels by name. */
  labels(user: string): Array<{ id: string; name: string; type: string }> {
    return [...this.#mailbox(user).labels.values()];
  }

  /** Every request with the status it got (0 while pending, -1 reset, -2 stalled). */
  requestLog(): ReadonlyArray<{ request: StandInRequest; status: number }> {
    return this.#log;
  }

  /** How many answers had `status`, optionally only for one operation. */
  countStatus(status: number, operation?: GmailOperation): number {
    return this.#log.filter(
      (e) => e.status === status && (operation === undefined || e.request.operation === operation),
    ).length;
  }

  /** How many requests the per-user quota refused with 429 (of `user`, or of every user). */
  quotaRefusals(user?: string): number {
    if (user !== undefined) return this.#quotaRefusals.get(user.toLowerCase()) ?? 0;
    let total = 0;
    for (const count of this.#quotaRefusals.values()) total += count;
    return total;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.#baseUrl);
    const route = classify(req.method ?? "GET", url.pathname);
    if (route.operation === "import" && url.searchParams.get("uploadType") === "resumable") {
      route.operation = "upload-session";
    }
    const request: StandInRequest = {
      sequence: ++this.#sequence,
      method: req.method ?? "GET",
      path: url.pathname,
      operation: route.operation,
      user: route.user?.toLowerCase(),
      uploadType: url.searchParams.get("uploadType") ?? undefined,
    };
    const entry = { request, status: 0 };
    this.#log.push(entry);
    res.on("finish", () => {
      entry.status = res.statusCode;
    });

    const fault = this.#fireFault(request);
    if (fault?.kind === "stall") {
      entry.status = -2;
      this.#stalled.add(res);
      return;
    }
    if (fault?.kind === "reset") {
      entry.status = -1;
      await this.#reset(req, url, request);
      return;
    }
    if (fault?.kind === "status" && !fault.afterStore) {
      const body = await readBody(req);
      this.#send(res, faultReply(fault, req, body));
      return;
    }
    const reply = await this.#serve(req, url, request);
    this.#send(res, fault?.kind === "status" ? faultReply(fault, req) : reply);
  }

  async #serve(req: IncomingMessage, url: URL, request: StandInRequest): Promise<Reply> {
    if (request.operation === "token") return this.#token(await readBody(req));
    if (request.operation === "unknown" || request.user === undefined) {
      await readBody(req);
      return new Reply(404, googleError(404, `no route for ${request.method} ${request.path}`, "notFound"));
    }
    const auth = this.#authenticate(req, request);
    if (auth instanceof Reply) {
      await readBody(req);
      return auth;
    }
    const mailbox = this.#mailbox(auth.user);
    mailbox.inFlight += 1;
    try {
      const limit = this.#options.maxConcurrentPerUser;
      if (limit !== undefined && mailbox.inFlight > limit) {
        await readBody(req);
        return new Reply(
          429,
          googleError(429, "Too many concurrent requests for user.", "rateLimitExceeded"),
        );
      }
      const refusal = this.#chargeQuota(mailbox, COSTS[request.operation] ?? 0);
      if (refusal) {
        this.#quotaRefusals.set(auth.user, (this.#quotaRefusals.get(auth.user) ?? 0) + 1);
        await readBody(req);
        return refusal;
      }
      const reply = await this.#operation(req, url, request, auth.user);
      const latencyMs = this.#options.importLatencyMs ?? 0;
      const slow = request.operation === "import" || request.operation === "upload-chunk";
      if (slow && latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));
      return reply;
    } finally {
      mailbox.inFlight -= 1;
    }
  }

  async #operation(req: IncomingMessage, url: URL, request: StandInRequest, user: string): Promise<Reply> {
    const query = Object.fromEntries(url.searchParams);
    const route = classify(request.method, request.path);
    const mailbox = this.#mailbox(user);
    switch (request.operation) {
      case "import": {
        const body = await readBody(req);
        if (request.path.startsWith("/upload/")) {
          if (request.uploadType === "media") return this.#store(user, body, [], query, "media");
          const boundary = /boundary=("?)([^";]+)\1/i.exec(req.headers["content-type"] ?? "")?.[2];
          if (request.uploadType !== "multipart" || boundary === undefined) {
            return new Reply(400, googleError(400, "Unsupported upload type", "invalidArgument"));
          }
          const [metadata, media] = parseMultipartRelated(body, boundary);
          if (!metadata || !media)
            return new Reply(400, googleError(400, "Missing media part", "invalidArgument"));
          const labelIds = labelIdsOf(metadata.body.toString("utf8"));
          return this.#store(user, media.body, labelIds, query, "multipart");
        }
        const json = JSON.parse(body.toString("utf8")) as { raw?: string; labelIds?: string[] };
        if (typeof json.raw !== "string")
          return new Reply(
            400,
            googleError(
              400,
              "'raw' RFC822 payload message string or uploading message via /upload/* URL required",
              "invalidArgument",
            ),
          );
        return this.#store(user, Buffer.from(json.raw, "base64url"), json.labelIds ?? [], query, "json");
      }
      case "upload-session": {
        const body = await readBody(req);
        const totalHeader = req.headers["x-upload-content-length"];
        const id = randomBytes(12).toString("hex");
        this.#sessions.set(id, {
          user,
          query,
          labelIds: labelIdsOf(body.toString("utf8")),
          total: typeof totalHeader === "string" ? Number(totalHeader) : undefined,
          parts: [],
          received: 0,
          done: undefined,
        });
        const location = `${this.#baseUrl}upload/gmail/v1/users/${encodeURIComponent(user)}/messages/import?uploadType=resumable&upload_id=${id}`;
        return new Reply(200, {}, { location });
      }
      case "upload-chunk":
        return this.#chunk(req, url);
      case "messages.list": {
        await readBody(req);
        const wanted = /rfc822msgid:(\S+)/.exec(url.searchParams.get("q") ?? "")?.[1];
        const found = wanted === undefined ? [] : (mailbox.byMessageId.get(normalizeMessageId(wanted)) ?? []);
        const start = Number(url.searchParams.get("pageToken") ?? "0");
        const size = Number(url.searchParams.get("maxResults") ?? "100");
        const page = found.slice(start, start + size);
        const next = start + size < found.length ? { nextPageToken: String(start + size) } : {};
        return new Reply(
          200,
          page.length > 0
            ? {
                messages: page.map((m) => ({ id: m.id, threadId: m.threadId })),
                resultSizeEstimate: found.length,
                ...next,
              }
            : { resultSizeEstimate: 0 },
        );
      }
      case "messages.get": {
        await readBody(req);
        const message = this.#messages.find((m) => m.user === user && m.id === route.messageId);
        if (!message) return new Reply(404, googleError(404, "Requested entity was not found.", "notFound"));
        const format = url.searchParams.get("format") ?? "full";
        if (format === "raw")
          return new Reply(200, { ...messageResource(message), raw: message.received.toString("base64url") });
        const wanted = new Set(url.searchParams.getAll("metadataHeaders").map((n) => n.toLowerCase()));
        const headers = headersOf(message.received).filter(
          (h) => format !== "metadata" || wanted.size === 0 || wanted.has(h.name.toLowerCase()),
        );
        return new Reply(200, {
          ...messageResource(message),
          payload: { mimeType: "message/rfc822", headers },
        });
      }
      case "labels.list":
        await readBody(req);
        return new Reply(200, { labels: [...mailbox.labels.values()] });
      case "labels.create": {
        const { name } = JSON.parse((await readBody(req)).toString("utf8")) as { name?: string };
        if (!name) return new Reply(400, googleError(400, "Invalid label name", "invalidArgument"));
        const exists = [...mailbox.labels.values()].some((l) => l.name.toLowerCase() === name.toLowerCase());
        if (exists) return new Reply(409, googleError(409, "Label name exists or conflicts", "duplicate"));
        const label = { id: `Label_${this.#nextLabel++}`, name, type: "user" as const };
        mailbox.labels.set(label.id, label);
        return new Reply(200, label);
      }
      case "profile":
        await readBody(req);
        return new Reply(200, {
          emailAddress: user,
          messagesTotal: this.#messages.filter((m) => m.user === user).length,
          threadsTotal: this.#messages.filter((m) => m.user === user).length,
          historyId: String(this.#messages.length + 1),
        });
      default:
        await readBody(req);
        return new Reply(404, googleError(404, "Not Found", "notFound"));
    }
  }

  async #chunk(req: IncomingMessage, url: URL): Promise<Reply> {
    const body = await readBody(req);
    const session = this.#sessions.get(url.searchParams.get("upload_id") ?? "");
    if (!session) return new Reply(404, googleError(404, "upload session not found", "notFound"));
    const range = req.headers["content-range"] ?? "";
    const status = /^bytes \*\/(\d+|\*)$/.exec(range);
    if (status) return this.#sessionState(session);
    const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(range);
    const start = match ? Number(match[1]) : 0;
    const total = match ? (match[3] === "*" ? undefined : Number(match[3])) : body.length;
    if (start > session.received)
      return new Reply(400, googleError(400, "Invalid content range", "invalidArgument"));
    const fresh = body.subarray(session.received - start);
    session.parts.push(Buffer.from(fresh));
    session.received += fresh.length;
    if (total !== undefined && session.received >= total) {
      const raw = Buffer.concat(session.parts);
      session.parts.length = 0;
      const reply = this.#store(session.user, raw, session.labelIds, session.query, "resumable");
      if (reply.status === 200)
        session.done = this.#messages.find((m) => m.id === (reply.body as { id: string }).id);
      return reply;
    }
    return this.#sessionState(session);
  }

  #sessionState(session: UploadSession): Reply {
    if (session.done) return new Reply(200, messageResource(session.done));
    return new Reply(308, "", session.received > 0 ? { range: `bytes=0-${session.received - 1}` } : {});
  }

  /** A reset while a chunk arrives: keep what came before the cut (in 256 KiB units), drop the socket. */
  async #reset(req: IncomingMessage, url: URL, request: StandInRequest): Promise<void> {
    const session = this.#sessions.get(url.searchParams.get("upload_id") ?? "");
    const length = Number(req.headers["content-length"] ?? 0);
    const match = /^bytes (\d+)-/.exec(req.headers["content-range"] ?? "");
    if (request.operation !== "upload-chunk" || !session || !match || length === 0) {
      req.socket.destroy();
      return;
    }
    const start = Number(match[1]);
    const cut = Math.floor(length / 2 / (256 * 1024)) * 256 * 1024;
    const kept: Buffer[] = [];
    let seen = 0;
    await new Promise<void>((resolve) => {
      req.on("data", (piece: Buffer) => {
        if (seen < cut) kept.push(piece.subarray(0, Math.min(piece.length, cut - seen)));
        seen += piece.length;
        if (seen >= cut) {
          req.socket.destroy();
          resolve();
        }
      });
      req.on("close", () => resolve());
    });
    if (start === session.received) {
      const bytes = Buffer.concat(kept);
      session.parts.push(bytes);
      session.received += bytes.length;
    }
  }

  #store(
    user: string,
    raw: Buffer,
    labelIds: string[],
    query: Record<string, string>,
    uploadType: StoredMessage["uploadType"],
  ): Reply {
    const mailbox = this.#mailbox(user);
    const unknown = labelIds.find((id) => !mailbox.labels.has(id));
    if (unknown !== undefined)
      return new Reply(400, googleError(400, `Invalid label: ${unknown}`, "invalidArgument"));
    const messageIdHeader = messageIdOf(raw);
    const earlier =
      messageIdHeader === undefined
        ? undefined
        : mailbox.byMessageId.get(messageIdHeader)?.find((m) => m.received.equals(raw));
    if (earlier) {
      // Gmail merges a re-import of a message it holds (same Message-ID, same bytes).
      earlier.labelIds = [...new Set([...earlier.labelIds, ...labelIds])];
      this.#rawImports.push({ user, messageIdHeader, gmailId: earlier.id, merged: true, at: this.#now() });
      return new Reply(200, messageResource(earlier));
    }
    const id = (this.#nextId++).toString(16);
    const copy = splitGmailCopy(raw);
    const message: StoredMessage = {
      id,
      threadId: id,
      user,
      raw: Buffer.from(copy.original),
      received: raw,
      traceId: copy.traceId,
      labelIds: [...labelIds],
      query,
      uploadType,
      messageIdHeader,
      importedAt: this.#now(),
    };
    this.#messages.push(message);
    if (messageIdHeader !== undefined) {
      mailbox.byMessageId.set(messageIdHeader, [
        ...(mailbox.byMessageId.get(messageIdHeader) ?? []),
        message,
      ]);
    }
    this.#rawImports.push({ user, messageIdHeader, gmailId: id, merged: false, at: message.importedAt });
    return new Reply(200, messageResource(message));
  }

  #token(body: Buffer): Reply {
    const form = new URLSearchParams(body.toString("utf8"));
    const grantType = form.get("grant_type");
    if (grantType === "refresh_token") {
      const grant = this.#grants.get(form.get("refresh_token") ?? "");
      if (
        !grant ||
        grant.clientId !== form.get("client_id") ||
        grant.clientSecret !== form.get("client_secret")
      ) {
        return grant
          ? new Reply(401, { error: "invalid_client", error_description: "Unauthorized" })
          : new Reply(400, { error: "invalid_grant", error_description: "Bad Request" });
      }
      if (grant.revoked)
        return new Reply(400, {
          error: "invalid_grant",
          error_description: "Token has been expired or revoked.",
        });
      return this.#issue(grant.user, grant.scopes);
    }
    if (grantType === "urn:ietf:params:oauth:grant-type:jwt-bearer")
      return this.#jwtGrant(form.get("assertion") ?? "");
    return new Reply(400, { error: "unsupported_grant_type", error_description: "Invalid grant_type" });
  }

  #jwtGrant(assertion: string): Reply {
    const [header, payload, signature] = assertion.split(".");
    if (!header || !payload || !signature)
      return new Reply(400, { error: "invalid_grant", error_description: "Invalid JWT" });
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Record<string, unknown>;
    const account = this.#serviceAccounts.get(String(claims.iss));
    const signed = Buffer.from(`${header}.${payload}`);
    if (!account || !verify("sha256", signed, account.key, Buffer.from(signature, "base64url"))) {
      return new Reply(400, { error: "invalid_grant", error_description: "Invalid JWT Signature." });
    }
    const nowSeconds = Math.floor(this.#now() / 1000);
    if (claims.aud !== `${this.#baseUrl}token` || typeof claims.exp !== "number" || claims.exp < nowSeconds) {
      return new Reply(400, {
        error: "invalid_grant",
        error_description: "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe.",
      });
    }
    const scopes = String(claims.scope ?? "")
      .split(" ")
      .filter((s) => s !== "");
    if (account.scopes && scopes.some((s) => !account.scopes?.includes(s))) {
      return new Reply(401, {
        error: "unauthorized_client",
        error_description:
          "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
      });
    }
    if (typeof claims.sub !== "string")
      return new Reply(400, { error: "invalid_grant", error_description: "Invalid email or User ID" });
    this.#mailbox(claims.sub);
    return this.#issue(claims.sub.toLowerCase(), scopes);
  }

  #issue(user: string, scopes: readonly string[]): Reply {
    const token = `ya29.${randomBytes(18).toString("base64url")}`;
    const lifetime = this.#options.accessTokenLifetimeSeconds ?? 3599;
    this.#accessTokens.set(token, { user, scopes, expiresAt: this.#now() + lifetime * 1000 });
    return new Reply(200, {
      access_token: token,
      expires_in: lifetime,
      scope: scopes.join(" "),
      token_type: "Bearer",
    });
  }

  #authenticate(req: IncomingMessage, request: StandInRequest): { user: string } | Reply {
    const token = /^Bearer (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
    const grant = token === undefined ? undefined : this.#accessTokens.get(token);
    if (!grant || grant.expiresAt <= this.#now()) {
      return new Reply(
        401,
        googleError(
          401,
          "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
          "authError",
        ),
        {
          "www-authenticate": 'Bearer realm="https://accounts.google.com/"',
        },
      );
    }
    if (request.user !== "me" && request.user !== grant.user) {
      return new Reply(403, googleError(403, `Delegation denied for ${grant.user}`, "forbidden"));
    }
    const needs = NEEDS[request.operation];
    if (needs && !needs.some((s) => grant.scopes.includes(s))) {
      return new Reply(
        403,
        googleError(403, "Request had insufficient authentication scopes.", "insufficientPermissions"),
      );
    }
    return { user: grant.user };
  }

  #chargeQuota(mailbox: Mailbox, units: number): Reply | undefined {
    const limit = this.#options.quotaUnitsPerMinute;
    if (limit === undefined || units === 0) return undefined;
    const now = this.#now();
    while (mailbox.spent[0] !== undefined && mailbox.spent[0].at <= now - 60_000) mailbox.spent.shift();
    const used = mailbox.spent.reduce((sum, s) => sum + s.units, 0);
    if (used + units > limit) {
      const oldest = mailbox.spent[0]?.at ?? now;
      const retryAfter = Math.max(1, Math.ceil((oldest + 60_000 - now) / 1000));
      return new Reply(
        429,
        googleError(
          429,
          `User-rate limit exceeded.  Retry after ${new Date(now + retryAfter * 1000).toISOString()}`,
          "rateLimitExceeded",
        ),
        { "retry-after": String(retryAfter) },
      );
    }
    mailbox.spent.push({ at: now, units });
    return undefined;
  }

  #fireFault(request: StandInRequest): FaultAction | undefined {
    for (const fault of this.#faults) {
      if (fault.remaining <= 0) continue;
      if (fault.rule.match && !fault.rule.match(request)) continue;
      if (fault.rule.probability !== undefined && this.#random() >= fault.rule.probability) continue;
      fault.remaining -= 1;
      return fault.rule.action;
    }
    return undefined;
  }

  #mailbox(user: string): Mailbox {
    const key = user.toLowerCase();
    let mailbox = this.#mailboxes.get(key);
    if (!mailbox) {
      mailbox = {
        labels: new Map(SYSTEM_LABELS.map((id) => [id, { id, name: id, type: "system" as const }])),
        byMessageId: new Map(),
        inFlight: 0,
        spent: [],
      };
      this.#mailboxes.set(key, mailbox);
    }
    return mailbox;
  }

  #send(res: ServerResponse, reply: Reply): void {
    const text = typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body);
    res.writeHead(reply.status, {
      "content-type": typeof reply.body === "string" ? "text/plain" : "application/json; charset=UTF-8",
      "content-length": String(Buffer.byteLength(text)),
      ...reply.headers,
    });
    res.end(text);
  }
}

function classify(
  method: string,
  path: string,
): { operation: GmailOperation; user?: string; messageId?: string } {
  if (path === "/token" && method === "POST") return { operation: "token" };
  const m = /^\/(upload\/)?gmail\/v1\/users\/([^/]+)\/(.+)$/.exec(path);
  if (!m) return { operation: "unknown" };
  const user = decodeURIComponent(m[2] ?? "");
  const rest = m[3] ?? "";
  const upload = m[1] !== undefined;
  if (rest === "messages/import") {
    if (upload && method === "PUT") return { operation: "upload-chunk", user };
    if (method === "POST") return { operation: "import", user };
  }
  if (rest === "messages" && method === "GET") return { operation: "messages.list", user };
  const get = /^messages\/([^/]+)$/.exec(rest);
  if (get?.[1] !== undefined && get[1] !== "import" && method === "GET") {
    return { operation: "messages.get", user, messageId: decodeURIComponent(get[1]) };
  }
  if (rest === "labels" && method === "GET") return { operation: "labels.list", user };
  if (rest === "labels" && method === "POST") return { operation: "labels.create", user };
  if (rest === "profile" && method === "GET") return { operation: "profile", user };
  return { operation: "unknown", user };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on("data", (piece: Buffer) => parts.push(piece));
    req.on("end", () => resolve(Buffer.concat(parts)));
    req.on("error", reject);
  });
}

function googleError(status: number, message: string, reason: string): unknown {
  return {
    error: {
      code: status,
      message,
      errors: [{ message, domain: "global", reason }],
      status: STATUS_TEXT[status] ?? "UNKNOWN",
    },
  };
}

function faultReply(
  fault: Extract<FaultAction, { kind: "status" }>,
  req: IncomingMessage,
  body: Buffer = Buffer.alloc(0),
): Reply {
  const headers: Record<string, string> =
    fault.retryAfterSeconds === undefined ? {} : { "retry-after": String(fault.retryAfterSeconds) };
  // A form body (the token request) holds the refresh token and client secret: echoed too.
  const form = /x-www-form-urlencoded/i.test(req.headers["content-type"] ?? "")
    ? `; body: ${body.toString("utf8").slice(0, 1000)}`
    : "";
  const echo = fault.echoCredentials
    ? ` (request: ${req.method} ${req.url}; Authorization: ${req.headers.authorization ?? "none"}${form})`
    : "";
  if (fault.reason === "invalid_grant" || fault.reason === "invalid_client") {
    return new Reply(
      fault.status,
      { error: fault.reason, error_description: `${fault.message ?? "Bad Request"}${echo}` },
      headers,
    );
  }
  const message = `${
    fault.message ?? (fault.status === 429 ? "Too many concurrent requests for user." : "Backend Error")
  }${echo}`;
  return new Reply(fault.status, googleError(fault.status, message, fault.reason ?? "backendError"), headers);
}

function labelIdsOf(json: string): string[] {
  if (json.trim() === "") return [];
  const parsed = JSON.parse(json) as { labelIds?: unknown };
  return Array.isArray(parsed.labelIds) ? parsed.labelIds.map(String) : [];
}

function messageResource(message: StoredMessage): { id: string; threadId: string; labelIds: string[] } {
  return { id: message.id, threadId: message.threadId, labelIds: message.labelIds };
}

function normalizeMessageId(value: string): string {
  return value.trim().replace(/^<|>$/g, "");
}

/** The header fields of a raw message (header section only, folded lines joined), in order. */
function headersOf(raw: Buffer): Array<{ name: string; value: string }> {
  const end = raw.indexOf("\r\n\r\n");
  const head = raw.subarray(0, end < 0 ? Math.min(raw.length, 64 * 1024) : end).toString("latin1");
  return head
    .replace(/\r\n[ \t]+/g, " ")
    .split("\r\n")
    .flatMap((line) => {
      const colon = line.indexOf(":");
      return colon > 0 ? [{ name: line.slice(0, colon), value: line.slice(colon + 1).trim() }] : [];
    });
}

/** The Message-ID of a raw message (header section only, folded lines joined). */
function messageIdOf(raw: Buffer): string | undefined {
  const end = raw.indexOf("\r\n\r\n");
  const head = raw.subarray(0, end < 0 ? Math.min(raw.length, 64 * 1024) : end).toString("latin1");
  const match = /^message-id:[ \t]*((?:.|\r\n[ \t])+)$/im.exec(head);
  return match?.[1] === undefined ? undefined : normalizeMessageId(match[1].replace(/\r\n[ \t]+/g, " "));
}
