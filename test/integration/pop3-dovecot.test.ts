import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Pop3Client, type Pop3ConnectOptions } from "../../shared/adapters/pop3/pop3-client";
import {
  ConfigError,
  CredentialsError,
  MailboxBusyError,
  MessageTooLargeError,
  TlsError,
} from "../../shared/core/errors";
import { type DovecotServer, startDovecot } from "../fakes/dovecot";
import { RawPop3Reader } from "../fakes/raw-pop3-reader";
import { createUnrelatedCa } from "../fakes/test-certificates";
import {
  awkwardMessages,
  type GeneratedMessage,
  generateMailbox,
  messageWithAttachment,
  messageWithoutFinalNewline,
} from "../fixtures/awkward-messages";

/**
 * Conformance of our POP3 client with a real Dovecot (issue 2, item 2). The oracle for "byte-exact"
 * is RawPop3Reader: a plaintext reader that shares no code with the client, so equal bytes mean
 * the client returns what Dovecot put on the wire, minus dot-stuffing and the terminator.
 */
const ATTACHMENT_BYTES = 30 * 1024 * 1024;
const CRLF = Buffer.from("\r\n");
const USERS = {
  plain: "plain-password",
  uidl: "uidl-password",
  deleter: "deleter-password",
  resetter: "resetter-password",
  awkward: "awkward-password",
  generated: "generated-password",
  big: "big-password",
};

const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function hashStream(stream: Readable): Promise<{ sha256: string; size: number; allBuffers: boolean }> {
  const hash = createHash("sha256");
  let size = 0;
  let allBuffers = true;
  for await (const chunk of stream) {
    allBuffers &&= Buffer.isBuffer(chunk);
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest("hex"), size, allBuffers };
}

/** What Dovecot serves for each message number, read by the independent raw reader. */
async function servedByDovecot(
  server: DovecotServer,
  user: keyof typeof USERS,
  count: number,
): Promise<Buffer[]> {
  const reader = await RawPop3Reader.login(server.host, server.plainPort, user, USERS[user]);
  try {
    const served: Buffer[] = [];
    for (let number = 1; number <= count; number += 1) served.push(await reader.retrieve(number));
    return served;
  } finally {
    await reader.quit();
  }
}

describe("Pop3Client against a real Dovecot", () => {
  let dovecot: DovecotServer;
  let tls: Pop3ConnectOptions;
  const clients: Pop3Client[] = [];

  /** Connects with the given transport; every client is destroyed after the suite. */
  async function open(options: Partial<Pop3ConnectOptions> = {}): Promise<Pop3Client> {
    const client = await Pop3Client.connect({ ...tls, ...options });
    clients.push(client);
    return client;
  }

  async function loggedIn(
    user: keyof typeof USERS,
    options: Partial<Pop3ConnectOptions> = {},
  ): Promise<Pop3Client> {
    const client = await open(options);
    await client.login(user, USERS[user]);
    return client;
  }

  beforeAll(async () => {
    dovecot = await startDovecot({ users: USERS });
    tls = {
      host: dovecot.host,
      port: dovecot.tlsPort,
      tls: "implicit",
      ca: dovecot.caPem,
      commandTimeoutMs: 20_000,
    };
  });

  afterAll(async () => {
    for (const client of clients) client.destroy();
    await dovecot?.stop();
  });

  describe("transports", () => {
    beforeAll(async () => {
      for (const message of generateMailbox(3, 7)) await dovecot.deliver("plain", message.bytes);
    });

    it("refuses plaintext without the opt-in, before connecting", async () => {
      // Prepare
      const options: Pop3ConnectOptions = { host: dovecot.host, port: dovecot.plainPort, tls: "none" };

      // Act
      const attempt = Pop3Client.connect(options);

      // Assess
      await expect(attempt).rejects.toBeInstanceOf(ConfigError);
    });

    it("logs in over plaintext with allowPlaintext and sees the delivered messages", async () => {
      // Prepare
      const client = await open({ port: dovecot.plainPort, tls: "none", allowPlaintext: true });

      // Act
      await client.login("plain", USERS.plain, "user");
      const stat = await client.stat();

      // Assess
      expect(stat.count).toBe(3);
      await client.quit();
    });

    it("upgrades with STLS, verifying the certificate against the test CA", async () => {
      // Prepare
      const client = await open({ port: dovecot.plainPort, tls: "starttls" });

      // Act
      const capabilities = await client.capabilities();
      await client.login("plain", USERS.plain);
      const listing = await client.list();

      // Assess: RFC 2595 §4: STLS is not offered again once the session is under TLS.
      expect(capabilities).not.toContain("STLS");
      expect(listing.map((entry) => entry.number)).toEqual([1, 2, 3]);
      await client.quit();
    });

    it("connects with implicit TLS, by IP and by the certificate's DNS name", async () => {
      // Prepare
      const byName = await open({ servername: "localhost" });
      const byAddress = await open();

      // Act
      await byName.login("plain", USERS.plain, "plain");
      await byAddress.login("plain", USERS.plain, "user");

      // Assess
      expect((await byName.stat()).count).toBe(3);
      expect((await byAddress.stat()).count).toBe(3);
      await byName.quit();
      await byAddress.quit();
    });

    it("logs in with APOP, which Dovecot offers with a greeting timestamp", async () => {
      // Prepare
      const client = await open();

      // Act
      await client.login("plain", USERS.plain, "apop");

      // Assess
      expect(client.greeting).toMatch(/<[^<>]+>/);
      expect((await client.stat()).count).toBe(3);
      await client.quit();
    });

    it("rejects a certificate from an unrelated CA, or from no trusted CA at all, with TlsError", async () => {
      // Prepare
      const folder = await mkdtemp(join(tmpdir(), "pop2gmail-unrelated-ca-"));
      const unrelatedCa = await createUnrelatedCa(folder).finally(() =>
        rm(folder, { recursive: true, force: true }),
      );
      const { ca: _testCa, ...withoutCa } = tls;

      // Act
      const failures = await Promise.all(
        [
          { ...withoutCa, ca: unrelatedCa },
          { ...withoutCa, port: dovecot.plainPort, tls: "starttls" as const, ca: unrelatedCa },
          withoutCa,
        ].map((options) =>
          Pop3Client.connect(options).then(
            (client) => client,
            (error: unknown) => error,
          ),
        ),
      );

      // Assess
      for (const failure of failures) expect(failure).toBeInstanceOf(TlsError);
    });

    it("accepts the self-signed chain when the leaf matches a pinned SHA-256, in either notation", async () => {
      // Prepare
      const { ca: _testCa, ...withoutCa } = tls;

      // Act
      const pinnedHex = await Pop3Client.connect({ ...withoutCa, certificateSha256: dovecot.certSha256 });
      clients.push(pinnedHex);
      const pinnedColons = await Pop3Client.connect({
        ...withoutCa,
        certificateSha256: dovecot.certFingerprint256,
      });
      clients.push(pinnedColons);
      await pinnedHex.login("plain", USERS.plain);

      // Assess
      expect((await pinnedHex.stat()).count).toBe(3);
      await pinnedHex.quit();
      await pinnedColons.quit();
    });

    it("rejects a certificate that does not match the pinned SHA-256 with TlsError", async () => {
      // Prepare
      const { ca: _testCa, ...withoutCa } = tls;
      const wrongPin = sha256(Buffer.from("some other certificate"));

      // Act
      const attempt = Pop3Client.connect({ ...withoutCa, certificateSha256: wrongPin });

      // Assess
      await expect(attempt).rejects.toBeInstanceOf(TlsError);
    });

    it("reports a wrong password as CredentialsError without the password in it", async () => {
      // Prepare
      const wrongPassword = "not-the-password-4711";
      const viaUser = await open();
      const viaPlain = await open();

      // Act
      const userPass = viaUser.login("plain", wrongPassword, "user").catch((error: unknown) => error);
      const saslPlain = viaPlain.login("plain", wrongPassword, "plain").catch((error: unknown) => error);

      // Assess
      for (const error of [await userPass, await saslPlain]) {
        expect(error).toBeInstanceOf(CredentialsError);
        expect(JSON.stringify({ ...(error as object), message: (error as Error).message })).not.toContain(
          wrongPassword,
        );
      }
    });
  });

  describe("UIDL", () => {
    it("is the same in every session and equals what Dovecot lists on the wire", async () => {
      // Prepare
      for (const message of generateMailbox(5, 11)) await dovecot.deliver("uidl", message.bytes);
      const raw = await RawPop3Reader.login(dovecot.host, dovecot.plainPort, "uidl", USERS.uidl);
      const rawListing = (await raw.multiline("UIDL")).toString("latin1");
      await raw.quit();

      // Act
      const first = await loggedIn("uidl");
      const firstUidls = await first.uidl();
      await first.quit();
      const second = await loggedIn("uidl", { port: dovecot.plainPort, tls: "starttls" });
      const secondUidls = await second.uidl();
      await second.quit();

      // Assess: pop3_uidl_format = %08Xu%08Xv gives 16 hex digits (lower-case in Dovecot 2.3).
      expect(firstUidls).toHaveLength(5);
      expect(secondUidls).toEqual(firstUidls);
      expect(new Set(firstUidls.map((entry) => entry.uidl)).size).toBe(5);
      for (const entry of firstUidls) expect(entry.uidl).toMatch(/^[0-9a-fA-F]{16}$/);
      expect(firstUidls.map((entry) => `${entry.number} ${entry.uidl}\r\n`).join("")).toBe(rawListing);
    });
  });

  describe("DELE and QUIT (RFC 1939 §6)", () => {
    it("deletes nothing when the session is dropped, and deletes on QUIT", async () => {
      // Prepare
      for (const message of generateMailbox(3, 23)) await dovecot.deliver("deleter", message.bytes);
      const before = await loggedIn("deleter");
      const uidlsBefore = await before.uidl();
      await before.quit();
      const dropped = await loggedIn("deleter");
      await dropped.dele(1);
      await dropped.dele(2);

      // Act: the connection goes away without QUIT.
      dropped.destroy();
      const afterDrop = await loggedIn("deleter");
      const uidlsAfterDrop = await afterDrop.uidl();
      await afterDrop.dele(1);
      const quit = await afterDrop.quit();
      const afterQuit = await loggedIn("deleter");
      const uidlsAfterQuit = await afterQuit.uidl();
      await afterQuit.quit();

      // Assess
      expect(uidlsAfterDrop).toEqual(uidlsBefore);
      expect(quit.committed).toBe(true);
      expect(uidlsAfterQuit.map((entry) => entry.uidl)).toEqual(
        uidlsBefore.slice(1).map((entry) => entry.uidl),
      );
      expect(await dovecot.storedMessageCount("deleter")).toBe(2);
    });

    it("keeps messages unmarked by RSET even when QUIT commits", async () => {
      // Prepare
      for (const message of generateMailbox(2, 29)) await dovecot.deliver("resetter", message.bytes);
      const client = await loggedIn("resetter");
      await client.dele(1);
      await client.dele(2);

      // Act
      await client.rset();
      await client.noop();
      const quit = await client.quit();

      // Assess
      expect(quit.committed).toBe(true);
      expect(await dovecot.storedMessageCount("resetter")).toBe(2);
    });
  });

  describe("byte-exact RETR", () => {
    it("returns awkward messages exactly as Dovecot serves them (dots, 8-bit, NUL, no final newline)", async () => {
      // Prepare
      const messages = awkwardMessages();
      for (const message of messages) await dovecot.deliver("awkward", message.bytes);
      const served = await servedByDovecot(dovecot, "awkward", messages.length);
      const client = await loggedIn("awkward");

      // Act
      const received: Buffer[] = [];
      for (let number = 1; number <= messages.length; number += 1)
        received.push(await readAll(client.retrieve(number)));
      const sizes = await client.list();
      await client.quit();

      // Assess: the client equals the oracle; the oracle shows Dovecot really served the awkward bytes.
      messages.forEach((message, index) => {
        expect(received[index], message.name).toEqual(served[index]);
      });
      assertServedAsStored(messages, served);
      // LIST counts the stored message; the CRLF Dovecot adds after a missing final newline is not in it.
      const addedLineBreak = (index: number): number =>
        messages[index]?.name === "no-final-newline" ? 2 : 0;
      expect(sizes.map((entry) => entry.size)).toEqual(
        served.map((bytes, index) => bytes.length - addedLineBreak(index)),
      );
    });

    it("returns a generated mailbox exactly as Dovecot serves it, over STLS", async () => {
      // Prepare
      const messages = generateMailbox(40, 2026);
      for (const message of messages) await dovecot.deliver("generated", message.bytes);
      const served = await servedByDovecot(dovecot, "generated", messages.length);
      const client = await loggedIn("generated", { port: dovecot.plainPort, tls: "starttls" });

      // Act
      const received: string[] = [];
      for (let number = 1; number <= messages.length; number += 1) {
        received.push(sha256(await readAll(client.retrieve(number))));
      }
      await client.quit();

      // Assess
      expect(received).toEqual(served.map(sha256));
      messages.forEach((message, index) => {
        const expected = message.bytes.at(-1) === 0x0a ? message.bytes : Buffer.concat([message.bytes, CRLF]);
        expect(served[index]?.equals(expected), message.name).toBe(true);
      });
    });

    it("streams a 30 MB attachment byte-exact, and refuses it under a smaller size cap", async () => {
      // Prepare
      const message = messageWithAttachment(ATTACHMENT_BYTES, 30);
      await dovecot.deliver("big", message.bytes);
      const [served] = await servedByDovecot(dovecot, "big", 1);
      const client = await loggedIn("big");
      const capped = await loggedIn("big", { port: dovecot.plainPort, tls: "starttls" });

      // Act
      const streamed = await hashStream(client.retrieve(1));
      const refused = readAll(capped.retrieve(1, { maxBytes: 1024 * 1024 }));

      // Assess
      expect(streamed.allBuffers).toBe(true);
      expect(streamed.size).toBe(served?.length);
      expect(streamed.sha256).toBe(sha256(served as Buffer));
      expect(streamed.sha256).toBe(sha256(message.bytes));
      await expect(refused).rejects.toBeInstanceOf(MessageTooLargeError);
      await client.quit();
      capped.destroy();
    });
  });
});

describe("Pop3Client against Dovecot with pop3_lock_session = yes", () => {
  let dovecot: DovecotServer;

  beforeAll(async () => {
    dovecot = await startDovecot({ lockSession: true });
    await dovecot.deliver("mailbox", messageWithoutFinalNewline().bytes);
  });

  afterAll(async () => {
    await dovecot?.stop();
  });

  it("gives a second session a MailboxBusyError with response code IN-USE while the first is open", async () => {
    // Prepare
    const options: Pop3ConnectOptions = {
      host: dovecot.host,
      port: dovecot.tlsPort,
      tls: "implicit",
      ca: dovecot.caPem,
    };
    const password = dovecot.users.mailbox as string;
    const first = await Pop3Client.connect(options);
    const second = await Pop3Client.connect(options);
    await first.login("mailbox", password);

    // Act
    const busy = await second.login("mailbox", password).catch((error: unknown) => error);
    second.destroy();
    await first.quit();
    const afterRelease = await Pop3Client.connect(options);
    await afterRelease.login("mailbox", password);
    const stat = await afterRelease.stat();
    await afterRelease.quit();

    // Assess
    expect(busy).toBeInstanceOf(MailboxBusyError);
    expect((busy as MailboxBusyError).responseCode).toBe("IN-USE");
    expect((busy as MailboxBusyError).retryable).toBe(true);
    expect(stat.count).toBe(1);
  });
});

/**
 * Facts about Dovecot's wire form that make the byte-exact test meaningful: CRLF messages come
 * back unchanged (8-bit, NUL and dot lines included), a message without a final line break
 * gets one, and bare LF is served as CRLF (Dovecot's i_stream_create_crlf).
 */
function assertServedAsStored(messages: GeneratedMessage[], served: Buffer[]): void {
  messages.forEach((message, index) => {
    const bytes = served[index] as Buffer;
    switch (message.name) {
      case "no-final-newline":
        expect(bytes.equals(Buffer.concat([message.bytes, CRLF])), message.name).toBe(true);
        break;
      case "bare-line-ends":
        expect(bytes.includes("bare lf\r\n.dot after bare lf\r\n"), message.name).toBe(true);
        break;
      default:
        expect(bytes.equals(message.bytes), message.name).toBe(true);
    }
  });
  const byName = new Map(messages.map((message, index) => [message.name, served[index] as Buffer]));
  expect(byName.get("nul")?.includes(Buffer.from([0x00, 0x00, 0x00]))).toBe(true);
  expect(byName.get("8-bit")?.includes(Buffer.from([0xfe, 0xff]))).toBe(true);
  expect(byName.get("dot-lines")?.includes("\r\n.\r\n..\r\n...\r\n")).toBe(true);
}
