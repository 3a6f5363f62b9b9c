import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runOnce } from "../../cli/runtime/run-local";
import { Pop3MailboxSource } from "../../shared/adapters/pop3/pop3-mailbox-source";
import { type MailboxConfig, mailboxSchema } from "../../shared/config/tenant-config";
import type { SecretStore } from "../../shared/ports/secret-store";
import { GmailApiStandIn } from "../fakes/gmail-api-stand-in";
import { TestClock } from "../fakes/in-memory-clock";
import { ScriptedPop3Server, type ScriptedPop3ServerOptions } from "../fakes/scripted-pop3-server";
import { generateMailbox } from "../fixtures/awkward-messages";
import { inProcessRuntime } from "./support/in-process-runtime";

/**
 * Issue 11: what real servers do that Dovecot does not, reproduced by the scripted server (the
 * same scenarios run against the real servers in pop3-servers-conformance.test.ts).
 */
const oauth = { clientId: "quirks", clientSecret: "quirks-secret", refreshToken: "quirks-refresh" };
/** A message whose header holds raw UTF-8 (RFC 6532), as Courier stores it. */
const UNICODE_MESSAGE = Buffer.from(
  "From: Zoë <zoe@example.com>\r\nTo: info@acme.example\r\nSubject: Grüße aus Köln\r\n" +
    "Message-ID: <utf8-header@example.com>\r\n\r\nHallo!\r\n",
  "utf8",
);

const servers: ScriptedPop3Server[] = [];
let dir: string;
let gmail: GmailApiStandIn;
let google: { baseUrl: string; tokenUrl: string };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pop2gmail-quirks-"));
  gmail = new GmailApiStandIn();
  google = await gmail.start();
  gmail.registerOAuthUser({ user: "owner@acme.example", ...oauth });
});

afterAll(async () => {
  for (const server of servers) await server.stop();
  await gmail?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function startServer(options: Omit<ScriptedPop3ServerOptions, "users">) {
  const server = new ScriptedPop3Server({ users: { box: "right" }, ...options });
  servers.push(server);
  return { server, port: (await server.start()).port };
}

function mailboxAt(port: number): MailboxConfig {
  return mailboxSchema.parse({
    id: "info@acme.example",
    pop3: { host: "127.0.0.1", port, tls: "none", allowPlaintext: true, user: "box", passwordSecret: "pop3" },
    gmail: { user: "owner@acme.example", credentialsSecret: "google" },
  });
}

const secrets: SecretStore = { get: async (name) => (name === "pop3" ? "right" : JSON.stringify(oauth)) };

async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of stream) pieces.push(Buffer.from(piece));
  return Buffer.concat(pieces);
}

describe("servers that advertise UTF8 (RFC 6856, Courier)", () => {
  it("serves the original bytes of a raw UTF-8 header message, not Courier's Unicode notice", async () => {
    // Prepare
    const { port } = await startServer({ messages: [UNICODE_MESSAGE], utf8: true });
    const source = new Pop3MailboxSource({ secrets, connectOptions: { commandTimeoutMs: 5_000 } });
    // Act
    const session = await source.open(mailboxAt(port));
    const [listed] = await session.listMessages();
    const served = await readAll(await session.retrieve(listed?.number ?? 1, { maxBytes: 1 << 20 }));
    await session.quit();
    // Assess
    expect(served.equals(UNICODE_MESSAGE)).toBe(true);
    expect(session.capabilities?.utf8).toBe(true);
  });
});

describe("servers that enforce LOGIN-DELAY (RFC 2449, Cyrus popminpoll)", () => {
  it("copies and deletes every message with --once in one session of a LOGIN-DELAY 60 server", async () => {
    // Prepare
    const clock = new TestClock();
    const messages = generateMailbox(4, 11).map((m) => m.bytes);
    const { server, port } = await startServer({
      messages,
      loginDelay: { seconds: 60, now: () => clock.now() },
    });
    const { runtime } = inProcessRuntime({
      dir,
      name: "login-delay",
      port,
      google,
      gmailUser: "owner@acme.example",
      pop3User: "box",
      pop3Password: "right",
      oauth,
      overrides: { clock },
    });
    // Act
    const summary = await runOnce(runtime).finally(() => runtime.close());
    // Assess
    expect(summary.mailboxes[0]).toMatchObject({ copied: 4, deleted: 4, inFlight: 0 });
    expect(summary.ok).toBe(true);
    expect(server.remainingMessages()).toHaveLength(0);
    expect(server.connections).toBe(1);
    expect(gmail.messages("owner@acme.example")).toHaveLength(4);
  });
});
