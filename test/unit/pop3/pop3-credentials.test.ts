import { createHash } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { inspect } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { Pop3Client } from "../../../shared/adapters/pop3/pop3-client";
import { Pop3MailboxSource } from "../../../shared/adapters/pop3/pop3-mailbox-source";
import { mailboxSchema } from "../../../shared/config/tenant-config";
import { ConfigError } from "../../../shared/core/errors";
import { makeMessage, rejection, startServer } from "./pop3-test-support";

/**
 * Issue 10 item 8 (docs/pipeline.md "POP3 credentials"): a user name or password never adds a
 * command line, goes on the wire as UTF-8, and never comes back to us in an error, not even when
 * the server echoes it.
 */
const TIMESTAMP = "<4711.1700000000@recording.test>";
type Mechanism = "user" | "plain" | "apop";

/** A POP3 server on 127.0.0.1 that records every line it receives as raw bytes. */
class RecordingServer {
  readonly lines: Buffer[] = [];
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  /** `answer` gets the raw line and returns the reply (with CRLF). */
  constructor(answer: (line: Buffer) => string | Buffer) {
    this.#server = createServer((socket) => {
      this.#sockets.add(socket);
      socket.on("error", () => undefined);
      socket.on("close", () => this.#sockets.delete(socket));
      socket.write(`+OK ready ${TIMESTAMP}\r\n`);
      let input = Buffer.alloc(0);
      socket.on("data", (chunk: Buffer) => {
        input = Buffer.concat([input, chunk]);
        for (let end = input.indexOf("\r\n"); end !== -1; end = input.indexOf("\r\n")) {
          const line = input.subarray(0, end);
          input = input.subarray(end + 2);
          this.lines.push(line);
          socket.write(answer(line));
        }
      });
    });
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    const address = this.#server.address();
    if (address === null || typeof address === "string") throw new Error("no TCP address");
    return address.port;
  }

  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup) await step();
  cleanup = [];
});

async function recording(answer: (line: Buffer) => string | Buffer) {
  const server = new RecordingServer(answer);
  const port = await server.start();
  const client = await Pop3Client.connect({
    host: "127.0.0.1",
    port,
    tls: "none",
    allowPlaintext: true,
    commandTimeoutMs: 5_000,
  });
  cleanup.push(async () => {
    client.destroy();
    await server.stop();
  });
  return { server, client };
}

const okToEverything = (): string => "+OK\r\n";

/** Every readable form of an error and of its causes. */
function errorTexts(error: unknown, depth = 0): string[] {
  if (depth > 8 || error === undefined || error === null) return [];
  const texts = [String(error), inspect(error, { depth: 6, showHidden: true }), JSON.stringify(error) ?? ""];
  if (error instanceof Error) {
    texts.push(error.message, error.stack ?? "");
    const hint = (error as { hint?: unknown }).hint;
    if (typeof hint === "string") texts.push(hint);
    return [...texts, ...errorTexts(error.cause, depth + 1)];
  }
  return texts;
}

/** The password and every form a login puts on the wire or a server might echo. */
function secretForms(user: string, password: string): string[] {
  const utf8 = Buffer.from(password, "utf8");
  return [
    password,
    utf8.toString("latin1"),
    utf8.toString("base64"),
    Buffer.from(`\0${user}\0${password}`, "utf8").toString("base64"),
  ];
}

describe("POP3 credentials on the wire", () => {
  it.each([
    ["user", "CR LF", "pw\r\nDELE 1"],
    ["plain", "LF", "pw\nDELE 1"],
    ["apop", "CR", "pw\rDELE 1"],
    ["user", "NUL", "pw\0DELE 1"],
  ] as const)(
    "refuses a password with a line break or NUL before writing it (%s, %s)",
    async (mechanism: Mechanism, _what, password) => {
      // Prepare
      const { server, client } = await recording(okToEverything);
      // Act
      const error = await rejection(client.login("alice", password, mechanism));
      // Assess
      expect(error).toBeInstanceOf(ConfigError);
      expect(errorTexts(error).join("\n")).not.toContain(password);
      expect(server.lines).toEqual([]);
    },
  );

  it.each(["alice\r\nDELE 1", "alice\nDELE 1", "alice\0x"])(
    "refuses a user name with a line break or NUL before writing it (%j)",
    async (user) => {
      // Prepare
      const { server, client } = await recording(okToEverything);
      // Act
      const error = await rejection(client.login(user, "pw", "user"));
      // Assess
      expect(error).toBeInstanceOf(ConfigError);
      expect(server.lines).toEqual([]);
    },
  );

  it("a password with CR LF cannot inject DELE 1 into a real session", async () => {
    // Prepare
    const message = makeMessage("keep", ["me"]);
    const { server, connect, stop } = await startServer({ messages: [message], users: { alice: "pw" } });
    cleanup.push(stop);
    const client = await connect();
    // Act
    const error = await rejection(client.login("alice", "pw\r\nDELE 1", "user"));
    await client.quit();
    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect(server.remainingMessages()).toEqual([message]);
    expect(server.committedDeletions).toBe(0);
  });

  it("refuses a stored password with a line break at secret load, naming the secret only", async () => {
    // Prepare
    const mailbox = mailboxSchema.parse({
      id: "box",
      pop3: {
        host: "127.0.0.1",
        port: 1,
        tls: "none",
        allowPlaintext: true,
        user: "alice",
        passwordSecret: "box-pop3",
      },
      gmail: { user: "box@example.test", credentialsSecret: "box-google" },
    });
    const source = new Pop3MailboxSource({ secrets: { get: async () => "Sekret-pw\n" } });
    // Act
    const error = await rejection(source.open(mailbox));
    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain('"box-pop3"');
    expect(errorTexts(error).join("\n")).not.toContain("Sekret-pw");
  });

  it.each(["user", "plain", "apop"] as const)(
    "sends a non-ASCII user name and password as UTF-8 (%s)",
    async (mechanism) => {
      // Prepare
      const user = "jürgen";
      const password = "pässwörd-€-密码";
      const { server, client } = await recording(okToEverything);
      // Act
      await client.login(user, password, mechanism);
      // Assess
      const utf8 = (text: string) => Buffer.from(text, "utf8");
      const expected = {
        user: [Buffer.concat([utf8("USER "), utf8(user)]), Buffer.concat([utf8("PASS "), utf8(password)])],
        plain: [utf8(`AUTH PLAIN ${utf8(`\0${user}\0${password}`).toString("base64")}`)],
        apop: [
          Buffer.concat([
            utf8(`APOP ${user} `),
            utf8(
              createHash("md5")
                .update(utf8(TIMESTAMP + password))
                .digest("hex"),
            ),
          ]),
        ],
      }[mechanism];
      expect(server.lines).toEqual(expected);
    },
  );

  it.each(["user", "plain", "apop"] as const)(
    "keeps the server's echo of the password out of the login error (%s)",
    async (mechanism) => {
      // Prepare
      const user = "alice";
      const password = "Echo-5f1c9a-Sekret-ö";
      const echo = (line: Buffer): Buffer => {
        const text = line.toString("latin1");
        if (text.startsWith("USER")) return Buffer.from("+OK\r\n");
        // A hostile or careless server: the refusal repeats what it got, and the password it holds.
        return Buffer.concat([
          Buffer.from(`-ERR [AUTH] refused ${text} `, "latin1"),
          Buffer.from(`stored=${password} b64=${Buffer.from(password).toString("base64")}\r\n`, "utf8"),
        ]);
      };
      const { client } = await recording(echo);
      // Act
      const error = await rejection(client.login(user, password, mechanism));
      // Assess
      const texts = errorTexts(error).join("\n");
      expect((error as { code?: string }).code).toBe("CREDENTIALS_REJECTED");
      expect(texts).toContain("refused");
      for (const form of secretForms(user, password)) expect(texts).not.toContain(form);
      expect(texts).not.toContain("Echo-5f1c9a-Sekret");
    },
  );

  it("keeps a password echoed in a malformed reply out of the error", async () => {
    // Prepare
    const password = "Malformed-77b2-Sekret";
    const { client } = await recording((line) =>
      line.toString("latin1").startsWith("USER") ? "+OK\r\n" : `?? ${line.toString("latin1")}\r\n`,
    );
    // Act
    const error = await rejection(client.login("alice", password, "user"));
    // Assess
    expect(errorTexts(error).join("\n")).not.toContain(password);
  });
});
