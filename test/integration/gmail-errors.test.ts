import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GmailLabelError } from "../../shared/adapters/gmail/gmail-error-mapping";
import { GmailMailSink, type GmailMailSinkOptions } from "../../shared/adapters/gmail/gmail-mail-sink";
import {
  CredentialsError,
  MessageRejectedError,
  RateLimitedError,
  TimeoutError,
} from "../../shared/core/errors";
import { GMAIL_SCOPES, GmailApiStandIn } from "../fakes/gmail-api-stand-in";
import {
  gmailMailbox,
  importRequestOf,
  MapSecretStore,
  pipelineImportRequestOf,
} from "../fakes/gmail-sink-fixture";
import { smallTestMessage } from "../fakes/gmail-test-mail";
import { VirtualClock } from "../fakes/gmail-virtual-clock";
import { seededRandom } from "../fakes/seeded-random";

const USER = "info@acme.it";
const isImport = (r: { operation: string }) => r.operation === "import" || r.operation === "upload-session";

describe("GmailMailSink error kinds", () => {
  let standIn: GmailApiStandIn;
  let secrets: MapSecretStore;
  let clock: VirtualClock;
  let urls: { baseUrl: string; tokenUrl: string };
  const mailbox = gmailMailbox("info", USER);

  beforeEach(async () => {
    clock = new VirtualClock();
    standIn = new GmailApiStandIn({ now: () => clock.now() });
    urls = await standIn.start();
    secrets = new MapSecretStore();
    standIn.registerOAuthUser({
      user: USER,
      clientId: "client-1",
      clientSecret: "secret-1",
      refreshToken: "refresh-1",
      scopes: [GMAIL_SCOPES.insert, GMAIL_SCOPES.labels, GMAIL_SCOPES.readonly],
    });
    secrets.set(
      "google-info",
      JSON.stringify({ clientId: "client-1", clientSecret: "secret-1", refreshToken: "refresh-1" }),
    );
  });
  afterEach(async () => {
    await standIn.stop();
  });

  function sink(extra: Partial<GmailMailSinkOptions> = {}): GmailMailSink {
    return new GmailMailSink({
      secrets,
      google: {
        apiBaseUrl: urls.baseUrl,
        tokenUrl: urls.tokenUrl,
        quotaUnitsPerMinute: 1_000_000,
        maxConcurrentImports: 4,
      },
      clock,
      random: seededRandom(3),
      ...extra,
    });
  }

  it("turns a revoked refresh token into one CredentialsError that tells the user what to do", async () => {
    // Prepare
    standIn.revokeRefreshToken("refresh-1");
    const gmail = sink();

    // Act
    const first = await gmail
      .import(importRequestOf(mailbox, "u1", smallTestMessage("a@acme.it")))
      .catch((e) => e);
    const second = await gmail
      .import(importRequestOf(mailbox, "u2", smallTestMessage("b@acme.it")))
      .catch((e) => e);

    // Assess
    expect(first).toBeInstanceOf(CredentialsError);
    expect(first.service).toBe("google");
    expect(first.retryable).toBe(false);
    expect(first.message).toContain("invalid_grant");
    expect(first.hint).toContain("pop2gmail auth google");
    expect(first.hint).toContain("Testing");
    expect(second).toBeInstanceOf(CredentialsError);
    // The broken grant is remembered: one token request, not one per message or per retry.
    expect(standIn.requestLog().filter((e) => e.request.operation === "token")).toHaveLength(1);
    expect(JSON.stringify({ m: first.message, h: first.hint, c: String(first.cause) })).not.toContain(
      "refresh-1",
    );
  });

  it("asks for a token again once the secret was replaced after a revocation", async () => {
    // Prepare
    standIn.revokeRefreshToken("refresh-1");
    const gmail = sink();
    await gmail.import(importRequestOf(mailbox, "u1", smallTestMessage("a@acme.it"))).catch(() => undefined);
    standIn.registerOAuthUser({
      user: USER,
      clientId: "client-1",
      clientSecret: "secret-1",
      refreshToken: "refresh-2",
    });
    secrets.set(
      "google-info",
      JSON.stringify({ clientId: "client-1", clientSecret: "secret-1", refreshToken: "refresh-2" }),
    );

    // Act
    const result = await gmail.import(importRequestOf(mailbox, "u2", smallTestMessage("b@acme.it")));

    // Assess
    expect(standIn.messages(USER).map((m) => m.id)).toEqual([result.gmailId]);
  });

  it("turns a 400 into MessageRejectedError carrying Gmail's reason, without retrying", async () => {
    // Prepare
    standIn.injectFault({
      match: isImport,
      action: { kind: "status", status: 400, reason: "invalidArgument", message: "Invalid From header" },
    });

    // Act
    const error = await sink()
      .import(importRequestOf(mailbox, "u1", smallTestMessage("c@acme.it")))
      .catch((e) => e);

    // Assess
    expect(error).toBeInstanceOf(MessageRejectedError);
    expect(error.reason).toBe("Invalid From header");
    expect(standIn.requestLog().filter((e) => isImport(e.request))).toHaveLength(1);
  });

  it("honours Retry-After on a 429, then succeeds", async () => {
    // Prepare
    standIn.injectFault({
      match: isImport,
      times: 1,
      action: { kind: "status", status: 429, reason: "rateLimitExceeded", retryAfterSeconds: 30 },
    });
    const start = clock.now();

    // Act
    await sink().import(importRequestOf(mailbox, "u1", smallTestMessage("d@acme.it")));

    // Assess
    const imports = standIn.requestLog().filter((e) => isImport(e.request));
    expect(imports.map((e) => e.status)).toEqual([429, 200]);
    expect(clock.now() - start).toBeGreaterThanOrEqual(30_000);
  });

  it("gives up on a persistent 403 userRateLimitExceeded with RateLimitedError", async () => {
    // Prepare
    standIn.injectFault({
      match: isImport,
      action: {
        kind: "status",
        status: 403,
        reason: "userRateLimitExceeded",
        message: "User Rate Limit Exceeded",
      },
    });

    // Act
    const error = await sink({ maxAttempts: 3 })
      .import(importRequestOf(mailbox, "u1", smallTestMessage("e@acme.it")))
      .catch((e) => e);

    // Assess
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error.retryAfterMs).toBeGreaterThan(0);
    expect(standIn.requestLog().filter((e) => isImport(e.request))).toHaveLength(3);
  });

  it("turns a stalled request into TimeoutError after one request, not one per attempt", async () => {
    // Prepare: a small per-request timeout stands for the default 120 s.
    standIn.injectFault({ match: isImport, action: { kind: "stall" } });

    // Act
    const error = await sink({ maxAttempts: 5, requestTimeoutMs: 300 })
      .import(pipelineImportRequestOf(mailbox, "u1", smallTestMessage("f@acme.it"), "<f@acme.it>"))
      .catch((e) => e);

    // Assess: the caller gets the uncertain failure at once and settles it later.
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.retryable).toBe(true);
    expect(standIn.requestLog().filter((e) => isImport(e.request))).toHaveLength(1);
  });

  it("gives up a resumable upload whose chunk stalls after that one request, without resuming it", async () => {
    // Prepare: resumable for anything above 64 bytes; the first chunk never gets an answer.
    standIn.injectFault({
      match: (r) => r.operation === "upload-chunk",
      times: 1,
      action: { kind: "stall" },
    });

    // Act
    const error = await sink({ maxAttempts: 5, requestTimeoutMs: 300, resumableThresholdBytes: 64 })
      .import(pipelineImportRequestOf(mailbox, "u1", smallTestMessage("r@acme.it"), "<r@acme.it>"))
      .catch((e) => e);

    // Assess
    expect(error).toBeInstanceOf(TimeoutError);
    const sent = standIn.requestLog().filter((e) => e.request.operation === "upload-chunk");
    expect(sent).toHaveLength(1);
  });

  it("calls a 400 on a label call a label problem, not a rejection of the message", async () => {
    // Prepare
    standIn.injectFault({
      match: (r) => r.operation === "labels.create",
      action: { kind: "status", status: 400, reason: "invalidArgument", message: "Invalid label name" },
    });

    // Act
    const error = await sink()
      .import(pipelineImportRequestOf(mailbox, "u1", smallTestMessage("l@acme.it"), "<l@acme.it>"))
      .catch((e) => e);

    // Assess
    expect(error).toBeInstanceOf(GmailLabelError);
    expect(error).not.toBeInstanceOf(MessageRejectedError);
    expect(error.code).toBe("GMAIL_LABEL_REJECTED");
    expect(standIn.requestLog().filter((e) => isImport(e.request))).toHaveLength(0);
  });

  it("takes a look-up Gmail refuses (400) as not found, not as a broken mailbox", async () => {
    // Prepare
    standIn.injectFault({
      match: (r) => r.operation === "messages.list",
      times: 1,
      action: { kind: "status", status: 400, reason: "invalidArgument", message: "Invalid query" },
    });

    // Act
    const found = await sink().findExisting(mailbox, {
      messageIdHeader: "<odd id@acme.it>",
      traceId: "a".repeat(32),
    });

    // Assess
    expect(found).toBeUndefined();
    expect(standIn.countStatus(400, "messages.list")).toBe(1);
  });

  it("keeps no access token an error body echoed, in the error text or its causes", async () => {
    // Prepare: every import answer echoes the request's Authorization header.
    standIn.injectFault({
      match: isImport,
      action: { kind: "status", status: 503, echoCredentials: true },
    });
    standIn.injectFault({
      match: (r) => r.operation === "labels.list",
      times: 1,
      action: { kind: "status", status: 400, echoCredentials: true },
    });

    // Act
    const labelError = await sink({ maxAttempts: 1 })
      .import(pipelineImportRequestOf(mailbox, "u0", smallTestMessage("k0@acme.it"), "<k0@acme.it>"))
      .catch((e) => e);
    const importError = await sink({ maxAttempts: 2 })
      .import(pipelineImportRequestOf(mailbox, "u1", smallTestMessage("k@acme.it"), "<k@acme.it>"))
      .catch((e) => e);

    // Assess
    const texts = [labelError, importError].flatMap((e: Error) => [
      e.message,
      String(e.cause),
      JSON.stringify(e),
      (e as { hint?: string }).hint ?? "",
    ]);
    expect(texts.join("\n")).toContain("Authorization: [redacted]");
    expect(texts.join("\n")).not.toMatch(/ya29\./);
  });

  it("gets a fresh access token when Gmail refuses the cached one (401)", async () => {
    // Prepare
    const gmail = sink();
    await gmail.import(importRequestOf(mailbox, "u1", smallTestMessage("g1@acme.it")));
    standIn.revokeAccessTokens();

    // Act
    await gmail.import(importRequestOf(mailbox, "u2", smallTestMessage("g2@acme.it")));

    // Assess
    expect(standIn.messages(USER)).toHaveLength(2);
    expect(standIn.countStatus(401)).toBe(1);
    expect(standIn.requestLog().filter((e) => e.request.operation === "token")).toHaveLength(2);
  });

  it("after a lost answer (503 once stored) finds the import instead of importing again", async () => {
    // Prepare
    standIn.injectFault({
      match: isImport,
      times: 1,
      action: { kind: "status", status: 503, reason: "backendError", afterStore: true },
    });

    // Act
    const { gmailId } = await sink().import(
      pipelineImportRequestOf(mailbox, "u1", smallTestMessage("h@acme.it"), "<h@acme.it>"),
    );

    // Assess
    expect(standIn.messages(USER).map((m) => m.id)).toEqual([gmailId]);
    expect(standIn.rawImportCount("h@acme.it")).toBe(1);
  });
});
