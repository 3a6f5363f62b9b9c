import { createHash } from "node:crypto";
import { createServer as createTcpServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, TLSSocket } from "node:tls";

/**
 * How the server puts one reply on the wire. Real servers split writes wherever their buffers
 * end; these let a test choose the split, or misbehave on purpose.
 */
export type Delivery =
  | { readonly kind: "whole" }
  /** One write per piece, cut at these byte offsets, each flushed before the next. */
  | { readonly kind: "split"; readonly at: readonly number[] }
  | { readonly kind: "byte-by-byte" }
  /** Send the first `afterBytes` bytes, then go silent (the session ignores later commands). */
  | { readonly kind: "stall"; readonly afterBytes: number }
  /** Send the first `afterBytes` bytes, then close cleanly (FIN). */
  | { readonly kind: "close"; readonly afterBytes: number }
  /** Send the first `afterBytes` bytes, then reset (RST). */
  | { readonly kind: "reset"; readonly afterBytes: number };

/** What the server is about to answer, handed to the `deliver` and `reply` hooks. */
export interface ReplyContext {
  /** Upper-case verb, e.g. "RETR". */
  readonly command: string;
  /** The argument text; empty for PASS and AUTH so a hook never sees a password. */
  readonly argument: string;
  /** How many times this verb was received on this server so far (1 for the first). */
  readonly count: number;
}

export interface ScriptedPop3ServerOptions {
  /** user name -> password */
  readonly users: Readonly<Record<string, string>>;
  /** The maildrop, shared by every session; QUIT commits deletions into it. */
  readonly messages: readonly Buffer[];
  /** Unique ids (default: SHA-256 prefix of each message); lets a test make the server lie. */
  readonly uidls?: readonly string[];
  /** implicit: TLS from the first byte; starttls: plaintext with STLS offered. */
  readonly tls?: {
    readonly key: string | Buffer;
    readonly cert: string | Buffer;
    readonly mode: "implicit" | "starttls";
  };
  /** Offer SASL PLAIN in CAPA and accept AUTH PLAIN (default true). */
  readonly saslPlain?: boolean;
  /** Put an APOP timestamp in the greeting and accept APOP (default false). */
  readonly apop?: boolean;
  /** Answer CAPA with -ERR, as RFC 1939-only servers do (default false). */
  readonly noCapa?: boolean;
  /** RFC 1939 §8 maildrop lock: a second session gets `-ERR [IN-USE]` (default true). */
  readonly lockMaildrop?: boolean;
  /** Raw bytes to send instead of the normal reply (e.g. an over-long line, a forced -ERR). */
  readonly reply?: (context: ReplyContext) => Buffer | string | undefined;
  /** How to deliver a reply (default whole). */
  readonly deliver?: (context: ReplyContext) => Delivery | undefined;
  /**
   * Courier's RFC 6856 behaviour: CAPA lists `UTF8 USER`, the `UTF8` command is accepted before
   * and after login, and a message with raw UTF-8 in its header is served wrapped in a notice
   * ("Cannot display Unicode content", the original as `message/global`) unless the session
   * sent `UTF8` (default false).
   */
  readonly utf8?: boolean;
  /**
   * RFC 2449 LOGIN-DELAY, as Cyrus enforces `popminpoll`: CAPA lists `LOGIN-DELAY <seconds>` and
   * a login within that many seconds of the previous successful one gets `-ERR [LOGIN-DELAY]`.
   */
  readonly loginDelay?: { readonly seconds: number; readonly now: () => number };
}

const DEFAULT_UIDL = (message: Buffer): string =>
  createHash("sha256").update(message).digest("hex").slice(0, 32);

/**
 * An in-process POP3 server on 127.0.0.1 that speaks enough RFC 1939 / 2449 / 2595 / 5034 for
 * the client and the demo, and can be told to split, stall, close, reset and lie
 * (the pattern of imapflow's test server).
 */
export class ScriptedPop3Server {
  readonly #options: ScriptedPop3ServerOptions;
  #maildrop: Buffer[];
  #uidls: string[];
  readonly #sessions = new Set<Session>();
  readonly #counts = new Map<string, number>();
  #server: Server | undefined;
  #locked = false;
  #connections = 0;
  #committedDeletions = 0;
  #lastLoginAt: number | undefined;

  constructor(options: ScriptedPop3ServerOptions) {
    this.#options = options;
    this.#maildrop = [...options.messages];
    this.#uidls = options.messages.map((message, index) => options.uidls?.[index] ?? DEFAULT_UIDL(message));
  }

  /** Listens on a random free port of 127.0.0.1. */
  async start(): Promise<{ port: number }> {
    const tls = this.#options.tls;
    const server =
      tls?.mode === "implicit"
        ? createTlsServer({ key: tls.key, cert: tls.cert }, (socket) => this.#accept(socket, socket))
        : createTcpServer((socket) => this.#accept(socket, socket));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no TCP address");
    return { port: address.port };
  }

  /** Closes every session (without committing) and the listener. */
  async stop(): Promise<void> {
    for (const session of this.#sessions) session.destroy();
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The messages still in the maildrop (deletions count only once a QUIT committed them). */
  remainingMessages(): Buffer[] {
    return [...this.#maildrop];
  }

  /** How many messages QUIT has removed so far. */
  get committedDeletions(): number {
    return this.#committedDeletions;
  }

  /** How many connections were accepted. */
  get connections(): number {
    return this.#connections;
  }

  /**
   * Writes `data` to every open session unprompted (e.g. "-ERR idle too long\r\n"), then closes
   * them; resolves once the clients have closed their side, i.e. after they have read it.
   */
  async sendUnsolicitedAndClose(data: string | Buffer): Promise<void> {
    await Promise.all([...this.#sessions].map((session) => session.sendAndClose(Buffer.from(data))));
  }

  #accept(transport: Socket, raw: Socket): void {
    this.#connections += 1;
    const session = new Session(this, transport, raw);
    this.#sessions.add(session);
    raw.once("close", () => {
      this.#sessions.delete(session);
      session.releaseLock();
    });
    session.greet();
  }

  // --- used by sessions ---

  get options(): ScriptedPop3ServerOptions {
    return this.#options;
  }

  snapshot(): { messages: Buffer[]; uidls: string[] } {
    return { messages: [...this.#maildrop], uidls: [...this.#uidls] };
  }

  count(command: string): number {
    const next = (this.#counts.get(command) ?? 0) + 1;
    this.#counts.set(command, next);
    return next;
  }

  tryLock(): boolean {
    if (this.#options.lockMaildrop === false) return true;
    if (this.#locked) return false;
    this.#locked = true;
    return true;
  }

  unlock(): void {
    this.#locked = false;
  }

  /** LOGIN-DELAY: false when the previous login was less than the delay ago; else records this one. */
  admitLogin(): boolean {
    const delay = this.#options.loginDelay;
    if (delay === undefined) return true;
    const now = delay.now();
    if (this.#lastLoginAt !== undefined && now - this.#lastLoginAt < delay.seconds * 1000) return false;
    this.#lastLoginAt = now;
    return true;
  }

  /** RFC 1939 §6: remove the marked messages (by their index in the session's snapshot). */
  commit(snapshot: Buffer[], deleted: ReadonlySet<number>): void {
    const doomed = new Set([...deleted].map((index) => snapshot[index]));
    const keepIndexes = this.#maildrop
      .map((message, index) => (doomed.has(message) ? -1 : index))
      .filter((i) => i >= 0);
    this.#committedDeletions += this.#maildrop.length - keepIndexes.length;
    this.#uidls = keepIndexes.map((index) => this.#uidls[index] as string);
    this.#maildrop = keepIndexes.map((index) => this.#maildrop[index] as Buffer);
  }
}

/** One client connection. */
class Session {
  readonly #server: ScriptedPop3Server;
  #transport: Socket;
  readonly #raw: Socket;
  #input = Buffer.alloc(0);
  #chain: Promise<void> = Promise.resolve();
  #state: "authorization" | "transaction" | "gone" = "authorization";
  #user: string | undefined;
  #utf8 = false;
  #holdsLock = false;
  #stalled = false;
  #messages: Buffer[] = [];
  #uidls: string[] = [];
  readonly #deleted = new Set<number>();
  readonly #timestamp = `<${process.pid}.${Date.now()}@scripted.test>`;
  readonly #onData = (chunk: Buffer): void => this.#receive(chunk);

  constructor(server: ScriptedPop3Server, transport: Socket, raw: Socket) {
    this.#server = server;
    this.#transport = transport;
    this.#raw = raw;
    raw.setNoDelay(true);
    // Resets and aborted handshakes are part of the script; they must not crash the test run.
    transport.on("error", () => undefined);
    raw.on("error", () => undefined);
    transport.on("data", this.#onData);
  }

  greet(): void {
    const stamp = this.#server.options.apop ? ` ${this.#timestamp}` : "";
    this.#enqueue("GREETING", "", `+OK scripted POP3 ready${stamp}\r\n`);
  }

  destroy(): void {
    this.#state = "gone";
    this.#raw.destroy();
  }

  releaseLock(): void {
    if (this.#holdsLock) this.#server.unlock();
    this.#holdsLock = false;
  }

  sendAndClose(data: Buffer): Promise<void> {
    return new Promise((resolve) => {
      this.#raw.once("close", () => resolve());
      this.#transport.end(data);
    });
  }

  #receive(chunk: Buffer): void {
    this.#input = Buffer.concat([this.#input, chunk]);
    for (;;) {
      const lineFeed = this.#input.indexOf(0x0a);
      if (lineFeed === -1) return;
      const line = this.#input.toString("latin1", 0, lineFeed).replace(/\r$/, "");
      this.#input = this.#input.subarray(lineFeed + 1);
      const space = line.indexOf(" ");
      const verb = (space === -1 ? line : line.slice(0, space)).toUpperCase();
      const argument = space === -1 ? "" : line.slice(space + 1);
      if (verb === "STLS") {
        // RFC 2595 §4: anything the client pipelined after STLS is discarded.
        this.#input = Buffer.alloc(0);
        this.#chain = this.#chain.then(() => this.#startTls());
        return;
      }
      this.#chain = this.#chain.then(() => this.#handle(verb, argument));
    }
  }

  async #startTls(): Promise<void> {
    const tls = this.#server.options.tls;
    const count = this.#server.count("STLS");
    if (tls?.mode !== "starttls" || this.#transport instanceof TLSSocket) {
      await this.#send({ command: "STLS", argument: "", count }, "-ERR STLS not available\r\n");
      return;
    }
    await this.#send({ command: "STLS", argument: "", count }, "+OK Begin TLS negotiation\r\n");
    this.#transport.off("data", this.#onData);
    const secure = new TLSSocket(this.#raw, { isServer: true, key: tls.key, cert: tls.cert });
    secure.on("error", () => undefined);
    secure.on("data", this.#onData);
    this.#transport = secure;
  }

  async #handle(verb: string, argument: string): Promise<void> {
    if (this.#stalled || this.#state === "gone") return;
    const secret = verb === "PASS" || verb === "AUTH" || verb === "APOP";
    const context: ReplyContext = {
      command: verb,
      argument: secret ? "" : argument,
      count: this.#server.count(verb),
    };
    const override = this.#server.options.reply?.(context);
    if (override !== undefined) {
      if (secret && Buffer.from(override).toString("latin1").startsWith("+OK")) this.#enterTransaction();
      await this.#send(context, override);
      return;
    }
    await this.#send(context, this.#answer(verb, argument));
    if (verb === "QUIT") {
      this.#state = "gone";
      this.#transport.end();
    }
  }

  #answer(verb: string, argument: string): Buffer | string {
    const options = this.#server.options;
    switch (verb) {
      case "CAPA": {
        if (options.noCapa) return "-ERR unknown command\r\n";
        const lines = ["CAPA", "TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"];
        if (options.saslPlain !== false) lines.push("SASL PLAIN");
        if (options.utf8) lines.push("UTF8 USER");
        if (options.loginDelay !== undefined) lines.push(`LOGIN-DELAY ${options.loginDelay.seconds}`);
        if (options.tls?.mode === "starttls" && !(this.#transport instanceof TLSSocket)) lines.push("STLS");
        return `+OK\r\n${lines.join("\r\n")}\r\n.\r\n`;
      }
      case "NOOP":
        return "+OK\r\n";
      case "UTF8":
        if (!options.utf8) return "-ERR unknown command\r\n";
        this.#utf8 = true;
        return "+OK UTF8 enabled\r\n";
      case "QUIT":
        return this.#quit();
    }
    if (this.#state === "authorization") return this.#authorize(verb, argument);
    return this.#transact(verb, argument);
  }

  #authorize(verb: string, argument: string): string {
    const { users, apop, saslPlain } = this.#server.options;
    switch (verb) {
      case "USER":
        this.#user = argument;
        return "+OK\r\n";
      case "PASS":
        return this.#login(this.#user, (user) => users[user] === argument);
      case "APOP": {
        if (!apop) return "-ERR APOP not supported\r\n";
        const [user, digest] = argument.split(" ");
        return this.#login(user, (name) => {
          const password = users[name];
          return (
            password !== undefined &&
            createHash("md5")
              .update(this.#timestamp + password)
              .digest("hex") === digest
          );
        });
      }
      case "AUTH": {
        const [mechanism, initial] = argument.split(" ");
        if (saslPlain === false || mechanism?.toUpperCase() !== "PLAIN" || initial === undefined) {
          return "-ERR unsupported authentication mechanism\r\n";
        }
        const [, user, password] = Buffer.from(initial, "base64").toString("utf8").split("\0");
        return this.#login(user, (name) => password !== undefined && users[name] === password);
      }
      default:
        return "-ERR not allowed before login\r\n";
    }
  }

  #login(user: string | undefined, check: (user: string) => boolean): string {
    if (user === undefined || !check(user)) return "-ERR [AUTH] Authentication failed\r\n";
    if (!this.#server.admitLogin()) return "-ERR [LOGIN-DELAY] Logins must be at least 1 minute apart\r\n";
    if (!this.#server.tryLock()) return "-ERR [IN-USE] Mailbox is locked by another session\r\n";
    this.#holdsLock = this.#server.options.lockMaildrop !== false;
    this.#enterTransaction();
    return `+OK Logged in, ${this.#messages.length} messages\r\n`;
  }

  #enterTransaction(): void {
    const { messages, uidls } = this.#server.snapshot();
    this.#messages = messages;
    this.#uidls = uidls;
    this.#state = "transaction";
  }

  #transact(verb: string, argument: string): Buffer | string {
    const live = this.#messages
      .map((message, index) => ({ message, index, number: index + 1 }))
      .filter((entry) => !this.#deleted.has(entry.index));
    const pick = (): { message: Buffer; index: number } | undefined => {
      const number = Number(argument.split(" ")[0]);
      const index = number - 1;
      const message = this.#messages[index];
      return message === undefined || this.#deleted.has(index) ? undefined : { message, index };
    };
    switch (verb) {
      case "STAT":
        return `+OK ${live.length} ${live.reduce((sum, entry) => sum + entry.message.length, 0)}\r\n`;
      case "LIST":
        return `+OK\r\n${live.map((entry) => `${entry.number} ${entry.message.length}\r\n`).join("")}.\r\n`;
      case "UIDL":
        return `+OK\r\n${live.map((entry) => `${entry.number} ${this.#uidls[entry.index]}\r\n`).join("")}.\r\n`;
      case "RETR": {
        const found = pick();
        if (!found) return "-ERR no such message\r\n";
        const served =
          this.#server.options.utf8 && !this.#utf8 ? courierUnicodeNotice(found.message) : found.message;
        return Buffer.concat([Buffer.from(`+OK ${served.length} octets\r\n`), dotStuff(served)]);
      }
      case "TOP": {
        const found = pick();
        const lines = Number(argument.split(" ")[1]);
        if (!found || !Number.isInteger(lines)) return "-ERR no such message\r\n";
        return Buffer.concat([Buffer.from("+OK\r\n"), dotStuff(headAndLines(found.message, lines))]);
      }
      case "DELE": {
        const found = pick();
        if (!found) return "-ERR no such message\r\n";
        this.#deleted.add(found.index);
        return "+OK marked\r\n";
      }
      case "RSET":
        this.#deleted.clear();
        return "+OK\r\n";
      default:
        return "-ERR unknown command\r\n";
    }
  }

  #quit(): string {
    if (this.#state === "transaction") {
      this.#server.commit(this.#messages, this.#deleted);
    }
    this.releaseLock();
    return "+OK bye\r\n";
  }

  #enqueue(command: string, argument: string, reply: string): void {
    this.#chain = this.#chain.then(() =>
      this.#send({ command, argument, count: this.#server.count(command) }, reply),
    );
  }

  async #send(context: ReplyContext, reply: Buffer | string): Promise<void> {
    const bytes = Buffer.from(reply);
    const delivery = this.#server.options.deliver?.(context) ?? { kind: "whole" };
    switch (delivery.kind) {
      case "whole":
        await this.#write(bytes);
        return;
      case "split": {
        let start = 0;
        for (const offset of [...delivery.at, bytes.length]) {
          await this.#write(bytes.subarray(start, offset));
          start = offset;
        }
        return;
      }
      case "byte-by-byte":
        for (let index = 0; index < bytes.length; index += 1)
          await this.#write(bytes.subarray(index, index + 1));
        return;
      case "stall":
        await this.#write(bytes.subarray(0, delivery.afterBytes));
        this.#stalled = true;
        return;
      case "close":
        await this.#write(bytes.subarray(0, delivery.afterBytes));
        this.#state = "gone";
        this.#transport.end();
        return;
      case "reset":
        await this.#write(bytes.subarray(0, delivery.afterBytes));
        this.#state = "gone";
        this.#raw.resetAndDestroy();
        return;
    }
  }

  /** Writes and waits until the bytes are handed to the kernel, then one turn more, so pieces leave as separate segments. */
  #write(bytes: Buffer): Promise<void> {
    if (bytes.length === 0 || this.#state === "gone" || this.#transport.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      this.#transport.write(bytes, () => setImmediate(resolve));
    });
  }
}

/** RFC 1939 §3: a line starting with "." gets another; the body ends with CRLF "." CRLF. */
export function dotStuff(message: Buffer): Buffer {
  const parts: Buffer[] = [];
  let lineStart = 0;
  while (lineStart < message.length) {
    const next = message.indexOf("\r\n", lineStart);
    const lineEnd = next === -1 ? message.length : next + 2;
    if (message[lineStart] === 0x2e) parts.push(Buffer.from("."));
    parts.push(message.subarray(lineStart, lineEnd));
    lineStart = lineEnd;
  }
  // A message without a final CRLF gets one, as Dovecot does, so the terminator stands on its own line.
  const endsWithCrlf =
    message.length >= 2 && message[message.length - 2] === 0x0d && message[message.length - 1] === 0x0a;
  if (message.length > 0 && !endsWithCrlf) parts.push(Buffer.from("\r\n"));
  parts.push(Buffer.from(".\r\n"));
  return Buffer.concat(parts);
}

/**
 * What Courier 1.0 serves a client that did not send `UTF8` (RFC 6856 §3) for a message with raw
 * 8-bit bytes in its header: a notice from "Mail Delivery Subsystem" with a per-session boundary
 * and the original attached as `message/global`. Other messages are served as they are.
 */
function courierUnicodeNotice(message: Buffer): Buffer {
  const headerEnd = message.indexOf("\r\n\r\n");
  const header = message.subarray(0, headerEnd === -1 ? message.length : headerEnd);
  if (!header.some((byte) => byte >= 0x80)) return message;
  const boundary = `=_${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  return Buffer.concat([
    Buffer.from(
      [
        "From: Mail Delivery Subsystem <postmaster>",
        "Subject: Cannot display Unicode content",
        "Mime-Version: 1.0",
        `Content-Type: multipart/mixed; boundary="${boundary}"`,
        "",
        `--${boundary}`,
        "Content-Type: text/plain",
        "",
        "This E-mail message was determined to be Unicode-formatted",
        "but your E-mail reader does not support Unicode E-mail.",
        "",
        `--${boundary}`,
        "Content-Type: message/global",
        "",
        "",
      ].join("\r\n"),
    ),
    message,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
}

/** TOP: the header, the blank line, then the first `lines` lines of the body. */
function headAndLines(message: Buffer, lines: number): Buffer {
  const headerEnd = message.indexOf("\r\n\r\n");
  if (headerEnd === -1) return message;
  let end = headerEnd + 4;
  for (let taken = 0; taken < lines && end < message.length; taken += 1) {
    const next = message.indexOf("\r\n", end);
    end = next === -1 ? message.length : next + 2;
  }
  return message.subarray(0, end);
}
