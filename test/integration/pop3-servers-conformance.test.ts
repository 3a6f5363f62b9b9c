import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runOnce } from "../../cli/runtime/run-local";
import { Pop3Client } from "../../shared/adapters/pop3/pop3-client";
import { Pop3MailboxSource } from "../../shared/adapters/pop3/pop3-mailbox-source";
import { type MailboxConfig, mailboxSchema } from "../../shared/config/tenant-config";
import { CredentialsError, MailboxBusyError } from "../../shared/core/errors";
import type { Pop3Session } from "../../shared/ports/pop3-source";
import type { RealPop3Server } from "../fakes/contained-server";
import { startCourierPop3d } from "../fakes/courier-pop3d";
import { startCyrusPop3d } from "../fakes/cyrus-pop3d";
import { startDovecot } from "../fakes/dovecot";
import { GmailApiStandIn } from "../fakes/gmail-api-stand-in";
import { startMailutilsPop3d } from "../fakes/mailutils-pop3d";
import { startPopa3d } from "../fakes/popa3d";
import { RawPop3Reader, uidlListing } from "../fakes/raw-pop3-reader";
import { awkwardMessages, generateMailbox } from "../fixtures/awkward-messages";
import { inProcessRuntime } from "./support/in-process-runtime";

/**
 * The same scenarios against every real server of docs/pop3-servers.md (Dovecot installed,
 * the others unpacked by `npm run setup` and run in a mount namespace): what our client reads is
 * what an independent raw reader reads, DELE counts only after QUIT, a second session is either
 * served or `busy` (never an error of a message), STLS with the test CA. Then each server's own
 * quirk: Courier's UTF8, Cyrus's LOGIN-DELAY at Debian's default.
 */
interface ServerUnderTest extends RealPop3Server {
  readonly caPem?: string;
}

const PASSWORD = "mailbox-password";

const STARTERS: Record<string, () => Promise<ServerUnderTest>> = {
  dovecot: async () => {
    const dovecot = await startDovecot({ users: { mailbox: PASSWORD } });
    return {
      name: "dovecot",
      version: "2.3.19.1",
      host: "127.0.0.1",
      port: dovecot.plainPort,
      users: dovecot.users,
      caPem: dovecot.caPem,
      deliver: async (user, message) => void (await dovecot.deliver(user, message)),
      stop: () => dovecot.stop(),
    };
  },
  courier: () => startCourierPop3d({ mailbox: PASSWORD }),
  popa3d: () => startPopa3d({ mailbox: PASSWORD }),
  mailutils: () => startMailutilsPop3d({ mailbox: PASSWORD }),
  // popminpoll 0 for the shared scenarios, which log in several times a minute; the LOGIN-DELAY
  // scenario below runs Cyrus at Debian's default.
  cyrus: () => startCyrusPop3d({ users: { mailbox: PASSWORD }, popminpollMinutes: 0 }),
};

/** Which servers offer AUTH PLAIN (RFC 5034) in the set-up of their harness. */
const EXPECTED_AUTH_PLAIN: Record<string, string> = {
  dovecot: "ok",
  courier: "ok",
  popa3d: "not offered",
  mailutils: "not offered",
  cyrus: "ok",
};

function mailboxFor(server: ServerUnderTest, tls: "none" | "starttls" = "none"): MailboxConfig {
  return mailboxSchema.parse({
    id: `mailbox@${server.name}.test`,
    pop3: {
      host: server.host,
      port: server.port,
      tls,
      ...(tls === "none" ? { allowPlaintext: true } : {}),
      user: "mailbox",
      passwordSecret: "pop3",
    },
    gmail: { user: "owner@example.com", credentialsSecret: "google" },
  });
}

function sourceFor(server: ServerUnderTest): Pop3MailboxSource {
  return new Pop3MailboxSource({
    secrets: { get: async () => PASSWORD },
    connectOptions: { commandTimeoutMs: 10_000, ...(server.caPem === undefined ? {} : { ca: server.caPem }) },
  });
}

async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of stream) pieces.push(Buffer.from(piece));
  return Buffer.concat(pieces);
}

/** Every message as the raw reader gets it, with its UIDL, in one session. */
async function rawMessagesWithUidl(server: ServerUnderTest): Promise<{ uidl: string; bytes: Buffer }[]> {
  const reader = await RawPop3Reader.login(server.host, server.port, "mailbox", PASSWORD);
  try {
    const messages: { uidl: string; bytes: Buffer }[] = [];
    for (const { number, uidl } of await uidlListing(reader)) {
      messages.push({ uidl, bytes: await reader.retrieve(number) });
    }
    return messages;
  } finally {
    await reader.quit();
  }
}

/** UIDL + size + SHA-256 of each message, sorted: equal lists mean the same bytes per UIDL. */
function fingerprints(messages: readonly { uidl: string; bytes: Buffer }[]): string[] {
  return messages
    .map(({ uidl, bytes }) => `${uidl} ${bytes.length} ${createHash("sha256").update(bytes).digest("hex")}`)
    .sort();
}

/** Every message as the raw reader gets it (RETR n for n = 1..STAT count). */
async function rawMessages(server: ServerUnderTest): Promise<Buffer[]> {
  const reader = await RawPop3Reader.login(server.host, server.port, "mailbox", PASSWORD);
  try {
    const count = Number(/^\+OK (\d+)/.exec(await reader.command("STAT"))?.[1] ?? 0);
    const messages: Buffer[] = [];
    for (let number = 1; number <= count; number += 1) messages.push(await reader.retrieve(number));
    return messages;
  } finally {
    await reader.quit();
  }
}

async function withSession<T>(server: ServerUnderTest, fn: (session: Pop3Session) => Promise<T>): Promise<T> {
  const session = await sourceFor(server).open(mailboxFor(server));
  try {
    return await fn(session);
  } finally {
    await session.quit();
  }
}

/** Empties the mailbox (DELE all, QUIT) so each scenario starts from known contents. */
async function emptyMailbox(server: ServerUnderTest): Promise<void> {
  await withSession(server, async (session) => {
    for (const message of await session.listMessages()) await session.markDeleted(message.number);
  });
}

describe.each(Object.keys(STARTERS))("POP3 conformance: %s", (name) => {
  let server: ServerUnderTest;

  beforeAll(async () => {
    const start = STARTERS[name];
    if (start === undefined) throw new Error(`no starter for ${name}`);
    server = await start();
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  it("serves the awkward mailbox to our client exactly as to an independent raw reader", async () => {
    // Prepare
    await emptyMailbox(server);
    const corpus = [...awkwardMessages(), ...generateMailbox(6, 7)];
    let delivered = 0;
    for (const message of corpus) {
      // A server may refuse a message it finds malformed (Cyrus's LMTP: NUL bytes, bare CR).
      const accepted = await server.deliver("mailbox", message.bytes).then(
        () => true,
        () => false,
      );
      if (accepted) delivered += 1;
    }
    // Act
    const raw = await rawMessagesWithUidl(server);
    const ours = await withSession(server, async (session) => {
      const bodies: { uidl: string; bytes: Buffer }[] = [];
      for (const message of await session.listMessages()) {
        const bytes = await readAll(await session.retrieve(message.number, { maxBytes: 64 << 20 }));
        bodies.push({ uidl: message.uidl, bytes });
      }
      return bodies;
    });
    // Assess
    // Message numbers are per session (RFC 1939 §7; Mailutils renumbers once new/ became cur/):
    // compare by UIDL and content, as sorted lists (popa3d may list one UIDL twice).
    expect(raw).toHaveLength(delivered);
    expect(delivered).toBeGreaterThanOrEqual(corpus.length - 3);
    expect(fingerprints(ours)).toEqual(fingerprints(raw));
  });

  it("deletes only when QUIT commits: a dropped session deletes nothing", async () => {
    // Prepare
    await emptyMailbox(server);
    for (const message of generateMailbox(3, 21)) await server.deliver("mailbox", message.bytes);
    const source = sourceFor(server);
    // Act
    const dropped = await source.open(mailboxFor(server));
    await dropped.markDeleted(1);
    dropped.abort();
    const afterDrop = (await rawMessages(server)).length;
    await withSession(server, async (session) => session.markDeleted(1));
    const afterQuit = (await rawMessages(server)).length;
    // Assess
    expect(afterDrop).toBe(3);
    expect(afterQuit).toBe(2);
  });

  it("logs in with USER/PASS and AUTH PLAIN where offered, and calls a wrong password a credentials error", async () => {
    // Prepare
    const connect = () =>
      Pop3Client.connect({ host: server.host, port: server.port, tls: "none", allowPlaintext: true });
    const loginWith = async (mechanism: "user" | "plain", password = PASSWORD) => {
      const client = await connect();
      try {
        await client.login("mailbox", password, mechanism);
        return "ok";
      } catch (error) {
        return error instanceof CredentialsError ? "refused" : `other: ${String(error)}`;
      } finally {
        await client.quit();
      }
    };
    const probe = await connect();
    const offersPlain = (await probe.capabilities()).some((line) => /^SASL .*\bPLAIN\b/i.test(line));
    await probe.quit();
    // Act
    const userPass = await loginWith("user");
    const plain = offersPlain ? await loginWith("plain") : "not offered";
    const wrong = await loginWith(offersPlain ? "plain" : "user", "not-the-password");
    // Assess
    expect(userPass).toBe("ok");
    expect(plain).toBe(EXPECTED_AUTH_PLAIN[name]);
    expect(wrong).toBe("refused");
  });

  it("answers a second session at once, or as busy (IN-USE), never with another error", async () => {
    // Prepare
    const source = sourceFor(server);
    const first = await source.open(mailboxFor(server));
    // Act
    const second = await source.open(mailboxFor(server)).then(
      async (session) => {
        await session.quit();
        return "served";
      },
      (error: unknown) => (error instanceof MailboxBusyError ? `busy ${error.responseCode}` : String(error)),
    );
    await first.quit();
    // Assess
    expect(["served", "busy IN-USE"]).toContain(second);
  });

  it("upgrades with STLS and verifies the certificate against the test CA, where offered", async () => {
    // Prepare
    const withStls = server.caPem !== undefined;
    // Act
    const outcome = withStls
      ? await sourceFor(server)
          .open(mailboxFor(server, "starttls"))
          .then(async (session) => {
            const listed = await session.listMessages();
            await session.quit();
            return Array.isArray(listed);
          })
      : true;
    // Assess
    expect(outcome).toBe(true);
  });
});

describe("Courier: UTF8 (RFC 6856)", () => {
  let courier: ServerUnderTest;
  beforeAll(async () => {
    courier = await startCourierPop3d({ mailbox: PASSWORD });
  }, 60_000);
  afterAll(async () => courier?.stop());

  it("serves a raw UTF-8 header message as stored once the client sent UTF8", async () => {
    // Prepare
    const original = Buffer.from(
      "From: Zoë <zoe@example.com>\r\nSubject: Grüße aus Köln\r\nMessage-ID: <utf8@courier.test>\r\n\r\nHallo!\r\n",
      "utf8",
    );
    await courier.deliver("mailbox", original);
    // Act
    const { served, utf8 } = await withSession(courier, async (session) => {
      const [message] = await session.listMessages();
      const bytes = await readAll(await session.retrieve(message?.number ?? 1, { maxBytes: 1 << 20 }));
      return { served: bytes, utf8: session.capabilities?.utf8 };
    });
    const withoutUtf8 = (await rawMessages(courier))[0]?.toString("utf8") ?? "";
    // Assess
    expect(utf8).toBe(true);
    expect(served.equals(original)).toBe(true);
    expect(withoutUtf8).toContain("Cannot display Unicode content");
  });
});

describe("Cyrus: LOGIN-DELAY at Debian's default (popminpoll: 1)", () => {
  let cyrus: ServerUnderTest;
  beforeAll(async () => {
    cyrus = await startCyrusPop3d({ users: { mailbox: PASSWORD } });
  }, 60_000);
  afterAll(async () => cyrus?.stop());

  it("announces LOGIN-DELAY 60 and answers a second login within it as busy LOGIN-DELAY", async () => {
    // Prepare
    const source = sourceFor(cyrus);
    // Act
    const first = await source.open(mailboxFor(cyrus));
    const delay = first.capabilities?.loginDelaySeconds;
    await first.quit();
    const second = await source.open(mailboxFor(cyrus)).then(
      async (session) => {
        await session.quit();
        return "served";
      },
      (error: unknown) => (error instanceof MailboxBusyError ? `busy ${error.responseCode}` : String(error)),
    );
    // Assess
    expect(delay).toBe(60);
    expect(second).toBe("busy LOGIN-DELAY");
  });
});

describe("end to end through the local runtime (run --once)", () => {
  let dir: string;
  let gmail: GmailApiStandIn;
  let google: { baseUrl: string; tokenUrl: string };
  const oauth = {
    clientId: "conformance",
    clientSecret: "conformance-secret",
    refreshToken: "conformance-refresh",
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pop2gmail-conformance-"));
    gmail = new GmailApiStandIn();
    google = await gmail.start();
    gmail.registerOAuthUser({ user: "owner@acme.example", ...oauth });
  });

  afterAll(async () => {
    await gmail?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function runOnceAgainst(server: ServerUnderTest) {
    const { runtime } = inProcessRuntime({
      dir,
      name: server.name,
      port: server.port,
      google,
      gmailUser: "owner@acme.example",
      pop3User: "mailbox",
      pop3Password: PASSWORD,
      oauth,
    });
    return runOnce(runtime).finally(() => runtime.close());
  }

  it("copies and deletes everything from Cyrus at LOGIN-DELAY 60 in one session", async () => {
    // Prepare
    const cyrus = await startCyrusPop3d({ users: { mailbox: PASSWORD } });
    try {
      for (const message of generateMailbox(4, 61)) await cyrus.deliver("mailbox", message.bytes);
      // Act
      const summary = await runOnceAgainst(cyrus);
      // Assess
      expect(summary.mailboxes[0]).toMatchObject({ copied: 4, deleted: 4, inFlight: 0 });
      expect(summary.ok).toBe(true);
    } finally {
      await cyrus.stop();
    }
  });

  it("puts Courier's stored bytes of a raw UTF-8 header message into Gmail, not Courier's notice", async () => {
    // Prepare
    const courier = await startCourierPop3d({ mailbox: PASSWORD });
    const original = Buffer.from(
      "From: Zoë <zoe@example.com>\r\nSubject: Grüße\r\nMessage-ID: <utf8-e2e@courier.test>\r\n\r\nHallo!\r\n",
      "utf8",
    );
    try {
      await courier.deliver("mailbox", original);
      // Act
      const summary = await runOnceAgainst(courier);
      // Assess
      expect(summary.mailboxes[0]).toMatchObject({ copied: 1, deleted: 1, inFlight: 0 });
      const inGmail = gmail
        .messages("owner@acme.example")
        .filter((m) => m.raw.includes("utf8-e2e@courier.test"));
      expect(inGmail.map((m) => m.raw.equals(original))).toEqual([true]);
    } finally {
      await courier.stop();
    }
  });

  it("copies and deletes both of two popa3d messages that share one UIDL (same Message-ID and Date)", async () => {
    // Prepare
    const popa3d = await startPopa3d({ mailbox: PASSWORD });
    try {
      const header = "Date: Tue, 1 Dec 2026 10:00:00 +0000\r\nMessage-ID: <twice@popa3d.test>\r\n";
      await popa3d.deliver("mailbox", Buffer.from(`Subject: first\r\n${header}\r\nthe first body\r\n`));
      await popa3d.deliver("mailbox", Buffer.from(`Subject: second\r\n${header}\r\nthe second body\r\n`));
      const reader = await RawPop3Reader.login(popa3d.host, popa3d.port, "mailbox", PASSWORD);
      const uidls = (await uidlListing(reader)).map((entry) => entry.uidl);
      await reader.quit();
      // Act
      const summary = await runOnceAgainst(popa3d);
      // Assess
      expect(new Set(uidls).size).toBe(1);
      expect(summary.mailboxes[0]).toMatchObject({ copied: 2, deleted: 2, inFlight: 0 });
      expect(await rawMessages(popa3d)).toHaveLength(0);
    } finally {
      await popa3d.stop();
    }
  });
});
