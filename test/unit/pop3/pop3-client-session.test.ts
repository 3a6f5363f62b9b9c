import { afterEach, describe, expect, it } from "vitest";
import { Pop3Client } from "../../../shared/adapters/pop3/pop3-client";
import { Pop3ClientBusyError } from "../../../shared/adapters/pop3/pop3-client-busy-error";
import {
  ConfigError,
  ConnectionClosedError,
  CredentialsError,
  MailboxBusyError,
  Pop3CommandError,
  ProtocolError,
  TimeoutError,
} from "../../../shared/core/errors";
import { invalidUidlStandIn } from "../../../shared/core/message-identity";
import type { ScriptedPop3ServerOptions } from "../../fakes/scripted-pop3-server";
import { collect, makeMessage, rejection, startServer } from "./pop3-test-support";

const PASSWORD = "s3cret!";
let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

async function serve(options: Partial<ScriptedPop3ServerOptions> & { messages: readonly Buffer[] }) {
  const started = await startServer(options);
  cleanup = started.stop;
  return started;
}

describe("Pop3Client login", () => {
  it.each(["auto", "user", "plain", "apop"] as const)("logs in with mechanism %s", async (mechanism) => {
    // Prepare
    const { connect } = await serve({ messages: [makeMessage("a", ["x"])], apop: true });
    const client = await connect();
    // Act
    await client.login("alice", PASSWORD, mechanism);
    // Assess
    expect(await client.stat()).toEqual({ count: 1, size: makeMessage("a", ["x"]).length });
  });

  it("falls back to USER/PASS when the server has no CAPA", async () => {
    // Prepare
    const { connect } = await serve({ messages: [], noCapa: true });
    const client = await connect();
    // Act
    const capabilities = await client.capabilities();
    await client.login("alice", PASSWORD);
    // Assess
    expect(capabilities).toEqual([]);
    await expect(client.noop()).resolves.toBeUndefined();
  });

  it.each(["user", "plain", "apop"] as const)(
    "throws CredentialsError for a wrong password (%s), without the password in the error",
    async (mechanism) => {
      // Prepare
      const { connect } = await serve({ messages: [], apop: true });
      const client = await connect();
      // Act
      const error = await rejection(client.login("alice", "wrong-Passw0rd", mechanism));
      // Assess
      expect(error).toBeInstanceOf(CredentialsError);
      expect((error as CredentialsError).responseCode).toBe("AUTH");
      expect(JSON.stringify({ ...(error as object), message: (error as Error).message })).not.toContain(
        "wrong-Passw0rd",
      );
    },
  );

  it("treats a bare -ERR to PASS as CredentialsError", async () => {
    // Prepare
    const { connect } = await serve({
      messages: [],
      reply: (context) => (context.command === "PASS" ? "-ERR Authentication failed\r\n" : undefined),
    });
    const client = await connect();
    // Act
    const error = await rejection(client.login("alice", PASSWORD, "user"));
    // Assess
    expect(error).toBeInstanceOf(CredentialsError);
    expect((error as CredentialsError).responseCode).toBeUndefined();
  });

  it("throws MailboxBusyError for -ERR [IN-USE] at login", async () => {
    // Prepare
    const { connect } = await serve({
      messages: [],
      reply: (context) => (context.command === "AUTH" ? "-ERR [IN-USE] Mailbox is locked\r\n" : undefined),
    });
    const client = await connect();
    // Act
    const error = await rejection(client.login("alice", PASSWORD));
    // Assess
    expect(error).toBeInstanceOf(MailboxBusyError);
    expect((error as MailboxBusyError).responseCode).toBe("IN-USE");
    expect((error as MailboxBusyError).retryable).toBe(true);
  });

  it("gives a second session on a locked maildrop MailboxBusyError (IN-USE)", async () => {
    // Prepare
    const { connect } = await serve({ messages: [makeMessage("a", ["x"])] });
    const first = await connect();
    await first.login("alice", PASSWORD);
    const second = await connect();
    // Act
    const error = await rejection(second.login("alice", PASSWORD));
    // Assess
    expect(error).toBeInstanceOf(MailboxBusyError);
  });

  it("throws a retryable Pop3CommandError for -ERR [SYS/TEMP] at login", async () => {
    // Prepare
    const { connect } = await serve({
      messages: [],
      reply: (context) => (context.command === "PASS" ? "-ERR [SYS/TEMP] try later\r\n" : undefined),
    });
    const client = await connect();
    // Act
    const error = await rejection(client.login("alice", PASSWORD, "user"));
    // Assess
    expect(error).toBeInstanceOf(Pop3CommandError);
    expect((error as Pop3CommandError).responseCode).toBe("SYS/TEMP");
    expect((error as Pop3CommandError).retryable).toBe(true);
  });

  it("throws MailboxBusyError for -ERR [LOGIN-DELAY] on any command", async () => {
    // Prepare
    const { connect } = await serve({
      messages: [],
      reply: (context) => (context.command === "STAT" ? "-ERR [LOGIN-DELAY] wait\r\n" : undefined),
    });
    const client = await connect();
    await client.login("alice", PASSWORD);
    // Act
    const error = await rejection(client.stat());
    // Assess
    expect(error).toBeInstanceOf(MailboxBusyError);
    expect((error as MailboxBusyError).responseCode).toBe("LOGIN-DELAY");
  });
});

describe("Pop3Client wire robustness", () => {
  it("reads a status line split across chunks (byte by byte)", async () => {
    // Prepare
    const { connect } = await serve({
      messages: [makeMessage("a", ["x"]), makeMessage("b", ["y"])],
      deliver: () => ({ kind: "byte-by-byte" }),
    });
    // Act
    const client = await connect();
    await client.login("alice", PASSWORD);
    const stat = await client.stat();
    const listing = await client.list();
    // Assess
    expect(client.greeting).toContain("scripted POP3 ready");
    expect(stat.count).toBe(2);
    expect(listing.map((entry) => entry.number)).toEqual([1, 2]);
  });

  it("throws ProtocolError for an over-long status line", async () => {
    // Prepare
    const { connect } = await serve({
      messages: [],
      reply: (context) => (context.command === "NOOP" ? `+OK ${"x".repeat(20_000)}\r\n` : undefined),
    });
    const client = await connect({ maxLineBytes: 1024 });
    // Act
    const error = await rejection(client.noop());
    // Assess
    expect(error).toBeInstanceOf(ProtocolError);
  });

  it("throws ProtocolError for a STAT size no number can hold", async () => {
    // Prepare
    const { connect } = await serve({
      messages: [],
      reply: (context) => (context.command === "STAT" ? `+OK 1 ${"9".repeat(400)}\r\n` : undefined),
    });
    const client = await connect();
    await client.login("alice", PASSWORD);
    // Act
    const error = await rejection(client.stat());
    // Assess
    expect(error).toBeInstanceOf(ProtocolError);
  });

  it("throws ProtocolError for a reply that is neither +OK nor -ERR", async () => {
    // Prepare
    const { connect } = await serve({
      messages: [],
      reply: (context) => (context.command === "NOOP" ? "HTTP/1.1 400 Bad Request\r\n" : undefined),
    });
    const client = await connect();
    // Act
    const error = await rejection(client.noop());
    // Assess
    expect(error).toBeInstanceOf(ProtocolError);
  });

  it("surfaces an unsolicited -ERR while idle on the next command, without crashing", async () => {
    // Prepare
    const { connect, server } = await serve({ messages: [] });
    const client = await connect();
    await client.login("alice", PASSWORD);
    // Act
    await server.sendUnsolicitedAndClose("-ERR Disconnected for inactivity\r\n");
    const error = await rejection(client.noop());
    // Assess
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect((error as Error).message).toContain("Disconnected for inactivity");
  });

  it("throws TimeoutError when the server never answers a command", async () => {
    // Prepare
    const { connect } = await serve({
      messages: [],
      deliver: (context) => (context.command === "NOOP" ? { kind: "stall", afterBytes: 0 } : undefined),
    });
    const client = await connect({ commandTimeoutMs: 150 });
    // Act
    const error = await rejection(client.noop());
    // Assess
    expect(error).toBeInstanceOf(TimeoutError);
    await expect(client.noop()).rejects.toBeInstanceOf(TimeoutError);
  });

  it("throws ConnectionClosedError when the server closes before the reply", async () => {
    // Prepare
    const { connect } = await serve({
      messages: [],
      deliver: (context) => (context.command === "NOOP" ? { kind: "close", afterBytes: 2 } : undefined),
    });
    const client = await connect();
    // Act
    const error = await rejection(client.noop());
    // Assess
    expect(error).toBeInstanceOf(ConnectionClosedError);
  });

  it("refuses plaintext without allowPlaintext before connecting", async () => {
    // Prepare
    const { port, server } = await serve({ messages: [] });
    // Act
    const error = await rejection(Pop3Client.connect({ host: "127.0.0.1", port, tls: "none" }));
    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect(server.connections).toBe(0);
  });

  it("throws ConnectionClosedError when nothing listens", async () => {
    // Prepare
    const { port, stop } = await serve({ messages: [] });
    await stop();
    // Act
    const error = await rejection(
      Pop3Client.connect({ host: "127.0.0.1", port, tls: "none", allowPlaintext: true }),
    );
    // Assess
    expect(error).toBeInstanceOf(ConnectionClosedError);
  });
});

describe("Pop3Client listings", () => {
  it("returns UIDL, LIST and TOP", async () => {
    // Prepare
    const messages = [makeMessage("a", ["1", "2", "3"]), makeMessage("b", [".x"])];
    const { connect } = await serve({ messages, uidls: ["uid-a", "uid-b"] });
    const client = await connect();
    await client.login("alice", PASSWORD);
    // Act
    const uidls = await client.uidl();
    const sizes = await client.list();
    const top = await client.top(1, 1);
    // Assess
    expect(uidls).toEqual([
      { number: 1, uidl: "uid-a" },
      { number: 2, uidl: "uid-b" },
    ]);
    expect(sizes).toEqual(messages.map((message, index) => ({ number: index + 1, size: message.length })));
    expect(top.toString()).toBe("From: a@example.test\r\nTo: b@example.test\r\nSubject: a\r\n\r\n1\r\n");
  });

  it.each([
    ["a space", "bad uid"],
    ["too long", "u".repeat(71)],
    ["5,000 characters", "v".repeat(5000)],
    ["a control byte", "bad\u0001uid"],
    ["8-bit", "caf\u00e9"],
  ])(
    "reports a UIDL with %s as invalid and keeps the entries beside it (RFC 1939 §7)",
    async (_label, uidl) => {
      // Prepare
      const { connect } = await serve({
        messages: [],
        reply: (context) =>
          context.command === "UIDL"
            ? Buffer.from(`+OK\r\n1 good-1\r\n2 ${uidl}\r\n3 good-3\r\n.\r\n`, "latin1")
            : undefined,
      });
      const client = await connect();
      await client.login("alice", PASSWORD);
      // Act
      const listing = await client.uidl();
      // Assess
      expect(listing[0]).toEqual({ number: 1, uidl: "good-1" });
      expect(listing[2]).toEqual({ number: 3, uidl: "good-3" });
      const bad = listing[1];
      expect(bad?.number).toBe(2);
      expect(bad?.uidl).toBe(invalidUidlStandIn(Buffer.from(uidl, "latin1")));
      expect(bad?.invalid).toContain("RFC 1939");
      expect(bad?.invalid?.length ?? 0).toBeLessThan(200);
    },
  );

  it("reports a UIDL line longer than the line bound as invalid instead of failing the listing", async () => {
    // Prepare
    const long = "a".repeat(5000);
    const { connect } = await serve({
      messages: [],
      reply: (context) => (context.command === "UIDL" ? `+OK\r\n1 ${long}\r\n2 fine\r\n.\r\n` : undefined),
    });
    const client = await connect({ maxLineBytes: 1024 });
    await client.login("alice", PASSWORD);
    // Act
    const listing = await client.uidl();
    // Assess
    expect(listing).toEqual([
      { number: 1, uidl: invalidUidlStandIn(Buffer.from(long)), invalid: expect.stringContaining("5000") },
      { number: 2, uidl: "fine" },
    ]);
  });

  it("throws ProtocolError for an over-long LIST line", async () => {
    // Prepare
    const { connect } = await serve({
      messages: [],
      reply: (context) => (context.command === "LIST" ? `+OK\r\n1 ${"9".repeat(5000)}\r\n.\r\n` : undefined),
    });
    const client = await connect({ maxLineBytes: 1024 });
    await client.login("alice", PASSWORD);
    // Act
    const error = await rejection(client.list());
    // Assess
    expect(error).toBeInstanceOf(ProtocolError);
  });

  it("reports both messages that share a UIDL, for the core to tell apart by content", async () => {
    // Prepare
    const { connect } = await serve({
      messages: [makeMessage("a", ["1"]), makeMessage("b", ["2"])],
      uidls: ["same", "same"],
    });
    const client = await connect();
    await client.login("alice", PASSWORD);
    // Act
    const listing = await client.uidl();
    // Assess
    expect(listing).toEqual([
      { number: 1, uidl: "same" },
      { number: 2, uidl: "same" },
    ]);
  });

  it("accepts UIDLs of 70 printable characters", async () => {
    // Prepare
    const uidl = "!~".repeat(35);
    const { connect } = await serve({ messages: [makeMessage("a", ["1"])], uidls: [uidl] });
    const client = await connect();
    await client.login("alice", PASSWORD);
    // Act
    const listing = await client.uidl();
    // Assess
    expect(listing).toEqual([{ number: 1, uidl }]);
  });
});

describe("Pop3Client deletion (RFC 1939 §6)", () => {
  it("removes marked messages when QUIT is answered +OK", async () => {
    // Prepare
    const messages = [makeMessage("a", ["1"]), makeMessage("b", ["2"]), makeMessage("c", ["3"])];
    const { connect, server } = await serve({ messages });
    const client = await connect();
    await client.login("alice", PASSWORD);
    // Act
    await client.dele(1);
    await client.dele(3);
    const result = await client.quit();
    // Assess
    expect(result).toEqual({ committed: true });
    expect(server.remainingMessages()).toEqual([messages[1]]);
  });

  it("deletes nothing when the client is destroyed without QUIT", async () => {
    // Prepare
    const messages = [makeMessage("a", ["1"]), makeMessage("b", ["2"])];
    const { connect, server } = await serve({ messages });
    const client = await connect();
    await client.login("alice", PASSWORD);
    await client.dele(1);
    // Act
    client.destroy();
    const again = await connect();
    await again.login("alice", PASSWORD);
    // Assess
    expect(await again.stat()).toMatchObject({ count: 2 });
    expect(server.committedDeletions).toBe(0);
  });

  it("deletes nothing after RSET", async () => {
    // Prepare
    const messages = [makeMessage("a", ["1"])];
    const { connect, server } = await serve({ messages });
    const client = await connect();
    await client.login("alice", PASSWORD);
    await client.dele(1);
    // Act
    await client.rset();
    const result = await client.quit();
    // Assess
    expect(result.committed).toBe(true);
    expect(server.remainingMessages()).toHaveLength(1);
  });

  it("reports committed: false when QUIT is answered -ERR or the connection is gone", async () => {
    // Prepare
    const { connect } = await serve({
      messages: [makeMessage("a", ["1"])],
      reply: (context) => (context.command === "QUIT" ? "-ERR [SYS/TEMP] could not remove\r\n" : undefined),
    });
    const refused = await connect();
    await refused.login("alice", PASSWORD);
    const dropped = await connect({ commandTimeoutMs: 5_000 });
    dropped.destroy();
    // Act
    const first = await refused.quit();
    const second = await dropped.quit();
    // Assess
    expect(first).toEqual({ committed: false });
    expect(second).toEqual({ committed: false });
  });

  it("rejects a command on a destroyed client with ConnectionClosedError", async () => {
    // Prepare
    const { connect } = await serve({ messages: [makeMessage("a", ["1"])] });
    const client = await connect();
    await client.login("alice", PASSWORD);
    client.destroy();
    // Act
    const error = await rejection(client.stat());
    const streamError = await rejection(collect(client.retrieve(1)));
    // Assess
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect(streamError).toBeInstanceOf(ConnectionClosedError);
  });

  it("refuses a second RETR stream while the first is open", async () => {
    // Prepare
    const message = makeMessage("a", ["1"]);
    const { connect } = await serve({ messages: [message] });
    const client = await connect();
    await client.login("alice", PASSWORD);
    const first = client.retrieve(1);
    // Act
    const error = await rejection(collect(client.retrieve(1)));
    const received = await collect(first);
    // Assess
    expect(error).toBeInstanceOf(Pop3ClientBusyError);
    expect(received.equals(message)).toBe(true);
  });
});
