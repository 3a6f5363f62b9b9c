import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GmailMailSink } from "../../shared/adapters/gmail/gmail-mail-sink";
import { GMAIL_SCOPES, GmailApiStandIn } from "../fakes/gmail-api-stand-in";
import { gmailMailbox, importRequestOf, MapSecretStore } from "../fakes/gmail-sink-fixture";
import { largeTestMessage, sha256, smallTestMessage } from "../fakes/gmail-test-mail";

const USER = "info@acme.it";

describe("GmailMailSink through the real googleapis client", () => {
  let standIn: GmailApiStandIn;
  let secrets: MapSecretStore;
  let urls: { baseUrl: string; tokenUrl: string };

  beforeEach(async () => {
    standIn = new GmailApiStandIn();
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

  function sink(extra: Partial<ConstructorParameters<typeof GmailMailSink>[0]> = {}): GmailMailSink {
    return new GmailMailSink({
      secrets,
      google: {
        apiBaseUrl: urls.baseUrl,
        tokenUrl: urls.tokenUrl,
        quotaUnitsPerMinute: 1_000_000,
        maxConcurrentImports: 4,
      },
      ...extra,
    });
  }

  it("stores a small 8-bit message with NUL byte-exact by multipart, with labels and parameters", async () => {
    // Prepare
    const mailbox = gmailMailbox("info", USER, { neverMarkSpam: true, processForCalendar: false });
    const bytes = smallTestMessage("m1@acme.it");

    // Act
    const { gmailId } = await sink().import(importRequestOf(mailbox, "uidl-1", bytes, "<m1@acme.it>"));

    // Assess
    const [stored] = standIn.messages(USER);
    expect(stored?.id).toBe(gmailId);
    expect(stored?.uploadType).toBe("multipart");
    expect(Buffer.compare(stored?.raw ?? Buffer.alloc(0), bytes)).toBe(0);
    expect(stored?.raw.includes(0)).toBe(true);
    const label = standIn.labels(USER).find((l) => l.name === "POP/info");
    expect(stored?.labelIds).toEqual(["INBOX", "UNREAD", label?.id]);
    expect(stored?.query).toMatchObject({
      internalDateSource: "dateHeader",
      neverMarkSpam: "true",
      processForCalendar: "false",
      uploadType: "multipart",
    });
  });

  it("stores a 30 MB message byte-exact by resumable upload in chunks", async () => {
    // Prepare
    const mailbox = gmailMailbox("info", USER, { skipInbox: true, mailboxLabel: "Archivio/POP info" });
    const bytes = largeTestMessage("big@acme.it", 30 * 1024 * 1024);

    // Act
    const { gmailId } = await sink({ resumableChunkBytes: 8 * 1024 * 1024 }).import(
      importRequestOf(mailbox, "uidl-big", bytes),
    );

    // Assess
    const [stored] = standIn.messages(USER);
    expect(stored?.id).toBe(gmailId);
    expect(stored?.uploadType).toBe("resumable");
    expect(stored?.raw.length).toBe(bytes.length);
    expect(sha256(stored?.raw ?? Buffer.alloc(0))).toBe(sha256(bytes));
    const label = standIn.labels(USER).find((l) => l.name === "Archivio/POP info");
    expect(stored?.labelIds).toEqual(["UNREAD", label?.id]);
    expect(stored?.query).toMatchObject({ internalDateSource: "dateHeader", neverMarkSpam: "false" });
    expect(standIn.requestLog().filter((e) => e.request.operation === "upload-chunk")).toHaveLength(4);
  });

  it("stores a 30 MB message byte-exact by multipart when the threshold is above it", async () => {
    // Prepare
    const mailbox = gmailMailbox("info", USER);
    const bytes = largeTestMessage("big-mp@acme.it", 30 * 1024 * 1024);

    // Act
    await sink({ resumableThresholdBytes: 64 * 1024 * 1024 }).import(
      importRequestOf(mailbox, "uidl-mp", bytes),
    );

    // Assess
    const [stored] = standIn.messages(USER);
    expect(stored?.uploadType).toBe("multipart");
    expect(sha256(stored?.raw ?? Buffer.alloc(0))).toBe(sha256(bytes));
  });

  it("resumes an interrupted chunk from what Google kept, without reopening the message", async () => {
    // Prepare
    const mailbox = gmailMailbox("info", USER);
    const bytes = largeTestMessage("cut@acme.it", 6 * 1024 * 1024 + 12345);
    standIn.injectFault({
      match: (r) => r.operation === "upload-chunk",
      times: 1,
      action: { kind: "reset" },
    });
    const request = importRequestOf(mailbox, "uidl-cut", bytes);

    // Act
    await sink({ resumableChunkBytes: 4 * 1024 * 1024, clock: instantClock() }).import(request);

    // Assess
    const [stored] = standIn.messages(USER);
    expect(sha256(stored?.raw ?? Buffer.alloc(0))).toBe(sha256(bytes));
    expect(request.opens()).toBe(1);
    expect(standIn.requestLog().filter((e) => e.status === -1)).toHaveLength(1);
    expect(standIn.rawImports()).toHaveLength(1);
  });

  it("creates the mailbox label once, even when concurrent imports race for it", async () => {
    // Prepare
    const mailbox = gmailMailbox("info", USER);
    const logged: string[] = [];
    const record = (message: string, fields: unknown) => logged.push(JSON.stringify({ message, fields }));
    const gmail = sink({ logger: { info: record, warn: record }, clock: instantClock() });
    standIn.injectFault({
      match: (r) => r.operation === "import",
      times: 2,
      action: { kind: "status", status: 500 },
    });

    // Act
    await Promise.all(
      [1, 2, 3, 4, 5].map((n) =>
        // With its Message-ID: a retry after a 500 may then look the import up (without one the
        // sink must not retry an uncertain import at all, DESIGN.md invariant 3).
        gmail.import(
          importRequestOf(mailbox, `u${n}`, smallTestMessage(`race${n}@acme.it`), `<race${n}@acme.it>`),
        ),
      ),
    );

    // Assess
    expect(standIn.labels(USER).filter((l) => l.name === "POP/info")).toHaveLength(1);
    expect(standIn.requestLog().filter((e) => e.request.operation === "labels.create")).toHaveLength(1);
    expect(standIn.messages(USER)).toHaveLength(5);
    // Logs name the mailbox, UIDL and Gmail id, never a token, a secret or a body.
    expect(logged.some((l) => l.includes("retrying"))).toBe(true);
    expect(logged.join("\n")).not.toMatch(/ya29\.|refresh-1|secret-1|Caff/);
  });

  it("finds an earlier import only by its own trace id with a read scope, and steps aside without one", async () => {
    // Prepare: two different copies share one Message-ID; each carries its own trace line.
    const mailbox = gmailMailbox("info", USER);
    const gmail = sink();
    const copyOf = (traceId: string, body: string) =>
      Buffer.concat([
        Buffer.from(`X-Pop2Gmail-Id: ${traceId}\r\n`),
        smallTestMessage("seen@acme.it"),
        Buffer.from(body),
      ]);
    const [ours, theirs] = ["a".repeat(32), "b".repeat(32)];
    const { gmailId: theirId } = await gmail.import(
      importRequestOf(mailbox, "u0", copyOf(theirs, "x"), "<seen@acme.it>"),
    );
    const { gmailId } = await gmail.import(
      importRequestOf(mailbox, "u1", copyOf(ours, "y"), "<seen@acme.it>"),
    );
    standIn.registerOAuthUser({
      user: "sales@acme.it",
      clientId: "c2",
      clientSecret: "s2",
      refreshToken: "r2",
    });
    secrets.set("google-sales", JSON.stringify({ clientId: "c2", clientSecret: "s2", refreshToken: "r2" }));
    const insertOnly = gmailMailbox("sales", "sales@acme.it");

    // Act
    const found = await gmail.findExisting(mailbox, { messageIdHeader: "<seen@acme.it>", traceId: ours });
    const other = await gmail.findExisting(mailbox, {
      messageIdHeader: "<seen@acme.it>",
      traceId: "c".repeat(32),
    });
    const missing = await gmail.findExisting(mailbox, { messageIdHeader: "<never@acme.it>", traceId: ours });
    const withoutScope = await gmail.findExisting(insertOnly, {
      messageIdHeader: "<seen@acme.it>",
      traceId: ours,
    });

    // Assess
    expect(found).toBe(gmailId);
    expect(found).not.toBe(theirId);
    expect(other).toBeUndefined();
    expect(missing).toBeUndefined();
    expect(withoutScope).toBeUndefined();
    expect(await gmail.canLookUp(insertOnly)).toBe(false);
    expect(standIn.requestLog().filter((e) => e.request.user === "sales@acme.it")).toHaveLength(0);
  });

  it("imports as a service account impersonating the Workspace user (JWT bearer grant)", async () => {
    // Prepare
    const { generateKeyPairSync } = await import("node:crypto");
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    standIn.registerServiceAccount({
      clientEmail: "pop2gmail@acme-project.iam.gserviceaccount.com",
      publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
      allowedScopes: [GMAIL_SCOPES.insert, GMAIL_SCOPES.labels],
    });
    secrets.set(
      "google-ws",
      JSON.stringify({
        type: "service_account",
        client_email: "pop2gmail@acme-project.iam.gserviceaccount.com",
        private_key: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      }),
    );
    const mailbox = gmailMailbox("ws", "boss@acme.it", {
      auth: "service-account",
      credentialsSecret: "google-ws",
    });
    const bytes = smallTestMessage("sa@acme.it");

    // Act
    const { gmailId } = await sink().import(importRequestOf(mailbox, "u-sa", bytes));

    // Assess
    const [stored] = standIn.messages("boss@acme.it");
    expect(stored?.id).toBe(gmailId);
    expect(Buffer.compare(stored?.raw ?? Buffer.alloc(0), bytes)).toBe(0);
  });
});

function instantClock() {
  let now = 0;
  return {
    now: () => now,
    sleep: async (ms: number) => {
      now += ms;
    },
  };
}
