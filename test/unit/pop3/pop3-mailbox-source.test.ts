import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Pop3MailboxSource } from "../../../shared/adapters/pop3/pop3-mailbox-source";
import { type MailboxConfig, mailboxSchema } from "../../../shared/config/tenant-config";
import { ConfigError, CredentialsError, TlsError } from "../../../shared/core/errors";
import type { SecretStore } from "../../../shared/ports/secret-store";
import { ScriptedPop3Server } from "../../fakes/scripted-pop3-server";
import { collect, makeMessage, rejection, sha256 } from "./pop3-test-support";

const secrets: SecretStore = {
  async get(name) {
    const values: Record<string, string> = { "pop3/info": "s3cret!", "pop3/wrong": "nope" };
    const value = values[name];
    if (value === undefined) throw new ConfigError("secret", `No secret named ${name}`);
    return value;
  },
};

function mailbox(port: number, pop3: Record<string, unknown> = {}): MailboxConfig {
  return mailboxSchema.parse({
    id: "info@acme.test",
    pop3: {
      host: "127.0.0.1",
      port,
      tls: "none",
      allowPlaintext: true,
      user: "alice",
      passwordSecret: "pop3/info",
      ...pop3,
    },
    gmail: { user: "owner@example.com", credentialsSecret: "google/owner" },
  });
}

let server: ScriptedPop3Server | undefined;
let directory: string | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
  if (directory) rmSync(directory, { recursive: true, force: true });
  directory = undefined;
});

async function start(messages: Buffer[], uidls?: string[]): Promise<number> {
  server = new ScriptedPop3Server({ users: { alice: "s3cret!" }, messages, ...(uidls ? { uidls } : {}) });
  return (await server.start()).port;
}

describe("Pop3MailboxSource", () => {
  it("lists UIDL+LIST merged, streams a message byte-exact and commits a deletion", async () => {
    // Prepare
    const messages = [makeMessage("one", ["..a"]), makeMessage("two", [Buffer.from([0, 0xff])])];
    const port = await start(messages, ["uid-1", "uid-2"]);
    const source = new Pop3MailboxSource({ secrets, connectOptions: { commandTimeoutMs: 5_000 } });
    // Act
    const session = await source.open(mailbox(port));
    const listed = await session.listMessages();
    const body = await collect(await session.retrieve(2, { maxBytes: 1024 }));
    await session.markDeleted(1);
    const result = await session.quit();
    // Assess
    expect(listed).toEqual([
      { number: 1, uidl: "uid-1", size: messages[0]?.length },
      { number: 2, uidl: "uid-2", size: messages[1]?.length },
    ]);
    expect(sha256(body)).toBe(sha256(messages[1] as Buffer));
    expect(result.committed).toBe(true);
    expect(server?.remainingMessages()).toEqual([messages[1]]);
  });

  it("deletes nothing when the session is aborted, and abort is safe twice", async () => {
    // Prepare
    const port = await start([makeMessage("one", ["a"])]);
    const session = await new Pop3MailboxSource({ secrets }).open(mailbox(port));
    await session.markDeleted(1);
    // Act
    session.abort();
    session.abort();
    const again = await new Pop3MailboxSource({ secrets }).open(mailbox(port));
    // Assess
    expect(await again.listMessages()).toHaveLength(1);
    again.abort();
  });

  it("throws CredentialsError when the secret holds a wrong password", async () => {
    // Prepare
    const port = await start([]);
    // Act
    const error = await rejection(
      new Pop3MailboxSource({ secrets }).open(mailbox(port, { passwordSecret: "pop3/wrong" })),
    );
    // Assess
    expect(error).toBeInstanceOf(CredentialsError);
    expect((error as Error).message).not.toContain("nope");
  });

  it("throws ConfigError for an unreadable caFile, and TlsError for implicit TLS on a plaintext port", async () => {
    // Prepare
    const port = await start([]);
    directory = mkdtempSync(join(tmpdir(), "pop3-source-"));
    const source = new Pop3MailboxSource({ secrets, connectOptions: { commandTimeoutMs: 5_000 } });
    // Act
    const missing = await rejection(
      source.open(mailbox(port, { tls: "implicit", caFile: join(directory, "absent.pem") })),
    );
    const plaintextPort = await rejection(
      source.open(mailbox(port, { tls: "implicit", allowPlaintext: false })),
    );
    // Assess
    expect(missing).toBeInstanceOf(ConfigError);
    expect(plaintextPort).toBeInstanceOf(TlsError);
  });
});
