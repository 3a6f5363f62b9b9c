import { createHash } from "node:crypto";
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import {
  ConfigError,
  ConnectionClosedError,
  MessageTooLargeError,
  Pop2GmailError,
  ProtocolError,
  TimeoutError,
  TlsError,
} from "../../core/errors";
import {
  parseScanListing,
  parseUniqueIdListing,
  splitListingLines,
  type UniqueIdEntry,
} from "./listing-lines";
import { openTcpSocket, openTlsSocket } from "./open-pop3-socket";
import { Pop3ClientBusyError } from "./pop3-client-busy-error";
import { errorForErrReply } from "./pop3-reply-errors";
import { Pop3Wire } from "./pop3-wire";
import { parseStatusLine, printable, type StatusLine } from "./status-line";

/** How to reach and trust a POP3 server, and the bounds that protect us from a hostile one. */
export interface Pop3ConnectOptions {
  host: string;
  port: number;
  tls: "implicit" | "starttls" | "none";
  /** Must be true with tls "none", else `connect` throws before connecting. */
  allowPlaintext?: boolean;
  /** PEM of a private CA. */
  ca?: string | Buffer;
  /** Pinned server certificate fingerprint (hex, colons optional): accepts a self-signed cert only if it matches. */
  certificateSha256?: string;
  servername?: string;
  /** One budget for the whole connection (default 10 min). */
  connectionDeadlineMs?: number;
  /** Per command, and per period of silence while streaming (default 30 s). */
  commandTimeoutMs?: number;
  /** Bound for status and listing lines (default 8 KiB; RFC 2449 §4 allows servers 512). */
  maxLineBytes?: number;
  /** Bound for LIST, UIDL and CAPA bodies (default 64 MiB: ~800k messages). */
  maxListingBytes?: number;
}

const DEFAULTS = {
  connectionDeadlineMs: 10 * 60_000,
  commandTimeoutMs: 30_000,
  maxLineBytes: 8 * 1024,
  maxListingBytes: 64 * 1024 * 1024,
};
const DEFAULT_TOP_MAX_BYTES = 1024 * 1024;
/** Gmail's import limit: a larger message could never be delivered anyway. */
const DEFAULT_RETR_MAX_BYTES = 150 * 1024 * 1024;
/** Readable buffer of a RETR stream: bytes held for a slow consumer before the socket is paused. */
const RETR_HIGH_WATER_MARK = 64 * 1024;

type Mechanism = "auto" | "user" | "plain" | "apop";
type ClientBounds = Required<Pick<Pop3ConnectOptions, "maxLineBytes" | "maxListingBytes">>;

/**
 * A small POP3 client (RFC 1939, 2449, 2595, 5034) that never alters, loses or buffers a message.
 *
 * Commands are serialized: each waits for the previous one. A command issued while a RETR stream
 * is still open is rejected with `Pop3ClientBusyError` (read the stream to its end, or destroy it,
 * which drops the connection). After any connection-level failure (timeout, close, protocol
 * violation, oversize message) the client is unusable and every command fails with that error.
 */
export class Pop3Client {
  readonly greeting: string;
  readonly #wire: Pop3Wire;
  readonly #options: ClientBounds;
  readonly #deadline: NodeJS.Timeout;
  #queue: Promise<unknown> = Promise.resolve();
  #streamOpen = false;
  #capabilities: string[] | undefined;

  private constructor(wire: Pop3Wire, greeting: string, deadline: NodeJS.Timeout, options: ClientBounds) {
    this.#wire = wire;
    this.greeting = greeting;
    this.#deadline = deadline;
    this.#options = options;
  }

  /**
   * Connects, reads the greeting and, for tls "starttls", upgrades with STLS (RFC 2595 §4).
   * Throws `ConfigError` for plaintext without `allowPlaintext`, `TlsError` for certificate
   * problems or a server without STLS, `TimeoutError`, `ConnectionClosedError`, `MailboxBusyError`.
   */
  static async connect(options: Pop3ConnectOptions): Promise<Pop3Client> {
    if (options.tls === "none" && options.allowPlaintext !== true) {
      throw new ConfigError("pop3.allowPlaintext", "tls 'none' sends the password in clear text", {
        hint: "Set allowPlaintext: true to confirm plaintext POP3, or use tls 'implicit' or 'starttls'.",
      });
    }
    const limits = {
      commandTimeoutMs: options.commandTimeoutMs ?? DEFAULTS.commandTimeoutMs,
      maxLineBytes: options.maxLineBytes ?? DEFAULTS.maxLineBytes,
    };
    const deadlineMs = options.connectionDeadlineMs ?? DEFAULTS.connectionDeadlineMs;
    const connectTimeout = Math.min(limits.commandTimeoutMs, deadlineMs);
    const tlsSettings = {
      host: options.host,
      port: options.port,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      ...(options.certificateSha256 === undefined ? {} : { certificateSha256: options.certificateSha256 }),
      ...(options.servername === undefined ? {} : { servername: options.servername }),
    };

    let socket: Socket =
      options.tls === "implicit"
        ? await openTlsSocket(tlsSettings, connectTimeout)
        : await openTcpSocket(options.host, options.port, connectTimeout);
    let wire = new Pop3Wire(socket, limits);
    const deadline = setTimeout(
      () => wire.fail(new TimeoutError("pop3", `The POP3 connection exceeded its ${deadlineMs} ms budget`)),
      deadlineMs,
    );
    // An open socket keeps the process alive by itself; the budget timer alone must not.
    deadline.unref();
    try {
      const greeting = parseStatusLine(await wire.readLine());
      if (greeting.kind !== "ok") {
        throw greeting.kind === "err"
          ? errorForErrReply("greeting", greeting, false)
          : new ProtocolError("pop3", "The server's greeting is not +OK");
      }
      if (options.tls === "starttls") {
        wire.send("STLS");
        const reply = parseStatusLine(await wire.readLine());
        if (reply.kind !== "ok") {
          throw new TlsError(`The server at ${options.host}:${options.port} refused STLS: ${reply.text}`, {
            hint: "The server does not offer STLS on this port: use tls 'implicit' (usually port 995).",
          });
        }
        socket = await openTlsSocket(tlsSettings, connectTimeout, wire.detach());
        wire = new Pop3Wire(socket, limits);
      }
      return new Pop3Client(wire, greeting.text, deadline, {
        maxLineBytes: limits.maxLineBytes,
        maxListingBytes: options.maxListingBytes ?? DEFAULTS.maxListingBytes,
      });
    } catch (error) {
      clearTimeout(deadline);
      wire.fail(toPop3Error(error));
      socket.destroy();
      throw error;
    }
  }

  /** True while a slow RETR consumer holds the socket paused (exposed for tests and metrics). */
  get receivePaused(): boolean {
    return this.#wire.paused;
  }

  /** CAPA (RFC 2449): the capability lines, or an empty list if the server answers -ERR. */
  capabilities(): Promise<string[]> {
    return this.#enqueue(async () => {
      this.#wire.send("CAPA");
      const reply = await this.#readReply("CAPA", false, { allowErr: true });
      if (reply.kind !== "ok") return [];
      const body = await this.#readBody(this.#options.maxListingBytes, "CAPA");
      this.#capabilities = splitListingLines(body, this.#options.maxLineBytes);
      return [...this.#capabilities];
    });
  }

  /**
   * Authenticates. "auto" uses AUTH PLAIN (RFC 5034) when CAPA lists SASL PLAIN, else USER/PASS.
   * Throws `ConfigError` before writing anything when the user name or password holds CR, LF or
   * NUL (they would end the command line and start another), `CredentialsError` (wrong password,
   * `[AUTH]`), `MailboxBusyError` (`[IN-USE]`, `[LOGIN-DELAY]`) or `Pop3CommandError`
   * (`[SYS/TEMP]`, `[SYS/PERM]`). User name and password go on the wire as UTF-8. The password
   * never appears in an error, not even when the server echoes it (docs/pipeline.md "POP3
   * credentials").
   */
  async login(user: string, password: string, mechanism: Mechanism = "auto"): Promise<void> {
    // The last guard before the wire: config and secret loading refuse these too.
    assertCredentialSafe(user, "user name", "pop3.user");
    assertCredentialSafe(password, "password", "pop3.passwordSecret");
    let chosen = mechanism;
    if (chosen === "auto") {
      const capabilities = this.#capabilities ?? (await this.capabilities());
      const sasl = capabilities.find((line) => line.toUpperCase().startsWith("SASL "));
      chosen = sasl?.toUpperCase().split(" ").includes("PLAIN") ? "plain" : "user";
    }
    const plainResponse = Buffer.from(`\0${user}\0${password}`, "utf8").toString("base64");
    const secrets = secretFormsOf(password, [plainResponse]);
    const reply = (command: string, allow: { allowContinue?: boolean } = {}) =>
      this.#readReply(command, true, allow, secrets);
    return this.#enqueue(async () => {
      if (chosen === "plain") {
        // RFC 5034 §4: the initial response may go on the AUTH line; a server that wants it
        // separately answers "+ " and gets it on its own line. RFC 4616: UTF-8 inside base64.
        this.#wire.send(`AUTH PLAIN ${plainResponse}`);
        const first = await reply("AUTH", { allowContinue: true });
        if (first.kind === "continue") {
          this.#wire.send(plainResponse);
          await reply("AUTH");
        }
        return;
      }
      if (chosen === "apop") {
        // RFC 1939 §7: APOP digests the greeting's timestamp with the shared secret.
        const timestamp = /<[^<>]+>/.exec(this.greeting)?.[0];
        if (timestamp === undefined) {
          throw new ProtocolError("pop3", "APOP was requested but the greeting carries no timestamp");
        }
        const digest = createHash("md5")
          .update(timestamp + password, "utf8")
          .digest("hex");
        this.#wire.send(asUtf8Line(`APOP ${user} ${digest}`));
        await reply("APOP");
        return;
      }
      this.#wire.send(asUtf8Line(`USER ${user}`));
      await reply("USER");
      this.#wire.send(asUtf8Line(`PASS ${password}`));
      await reply("PASS");
    });
  }

  /**
   * UTF8 (RFC 6856 §2): asks the server to serve messages as stored, raw UTF-8 headers included,
   * instead of downgrading them (Courier serves a "Cannot display Unicode content" notice in
   * their place). True on +OK, false on -ERR; the session goes on either way.
   */
  utf8(): Promise<boolean> {
    return this.#enqueue(async () => {
      this.#wire.send("UTF8");
      return (await this.#readReply("UTF8", false, { allowErr: true })).kind === "ok";
    });
  }

  /** STAT: message count and maildrop size in octets. */
  stat(): Promise<{ count: number; size: number }> {
    return this.#enqueue(async () => {
      this.#wire.send("STAT");
      const reply = await this.#readReply("STAT", false);
      const match = /^(\d{1,15}) (\d{1,15})(?: |$)/.exec(reply.text);
      if (!match) throw new ProtocolError("pop3", `Malformed STAT reply: "${reply.text}"`);
      return { count: Number(match[1]), size: Number(match[2]) };
    });
  }

  /** LIST: every message's number and size. */
  list(): Promise<Array<{ number: number; size: number }>> {
    return this.#enqueue(async () => parseScanListing(await this.#listing("LIST")));
  }

  /**
   * UIDL: every message's unique id. An id that breaks RFC 1939 §7 is reported (stand-in and
   * reason), never thrown for the whole listing; an id listed twice is returned twice.
   */
  uidl(): Promise<UniqueIdEntry[]> {
    return this.#enqueue(async () => {
      this.#wire.send("UIDL");
      await this.#readReply("UIDL", false);
      const body = await this.#readBody(this.#options.maxListingBytes, "UIDL");
      return parseUniqueIdListing(body, this.#options.maxLineBytes);
    });
  }

  /** TOP: the headers and the first `lines` body lines, bounded by `maxBytes` (default 1 MiB). */
  top(messageNumber: number, lines: number, options: { maxBytes?: number } = {}): Promise<Buffer> {
    assertCount(messageNumber, 1);
    assertCount(lines, 0);
    return this.#enqueue(async () => {
      this.#wire.send(`TOP ${messageNumber} ${lines}`);
      await this.#readReply("TOP", false);
      return this.#readBody(options.maxBytes ?? DEFAULT_TOP_MAX_BYTES, "TOP");
    });
  }

  /**
   * RETR as a byte stream: dot-stuffing removed, every other byte as served, with backpressure.
   * More than `maxBytes` (default 150 MiB) errors the stream with `MessageTooLargeError` and
   * drops the connection. Any failure errors the stream with its typed error; a short message is
   * never reported as complete. Destroying the stream early drops the connection.
   */
  retrieve(messageNumber: number, options: { maxBytes?: number } = {}): Readable {
    assertCount(messageNumber, 1);
    const maxBytes = options.maxBytes ?? DEFAULT_RETR_MAX_BYTES;
    let finished = false;
    let ownsConnection = false;
    const stream = new Readable({
      highWaterMark: RETR_HIGH_WATER_MARK,
      read: () => this.#wire.resume(),
      destroy: (error, callback) => {
        if (!ownsConnection) {
          callback(error);
          return;
        }
        this.#streamOpen = false;
        if (!finished) {
          // The rest of the body is still on the wire: the reply stream is out of step for good.
          this.#wire.fail(
            new ConnectionClosedError(
              "pop3",
              "The RETR stream was closed before its end; the connection was dropped",
            ),
          );
        }
        callback(error);
      },
    });
    const transfer = async (): Promise<void> => {
      this.#wire.send(`RETR ${messageNumber}`);
      await this.#readReply("RETR", false);
      let received = 0;
      await this.#wire.readBody((piece) => {
        received += piece.length;
        if (received > maxBytes) {
          this.#wire.fail(
            new MessageTooLargeError(maxBytes, `Message ${messageNumber} is larger than ${maxBytes} bytes`),
          );
          return false;
        }
        return stream.destroyed ? true : stream.push(piece);
      });
      finished = true;
      if (!stream.destroyed) stream.push(null);
    };
    if (this.#streamOpen) {
      // A second stream would wait for the first; if its reader waits for the second, both hang.
      stream.destroy(
        new Pop3ClientBusyError("A RETR stream is still open: read it to its end or destroy it first"),
      );
      return stream;
    }
    this.#streamOpen = true;
    ownsConnection = true;
    const run = this.#queue.then(async () => {
      try {
        if (!stream.destroyed) await transfer();
      } catch (error) {
        finished = true;
        if (!stream.destroyed) stream.destroy(toPop3Error(error));
      } finally {
        this.#streamOpen = false;
      }
    });
    this.#queue = run;
    return stream;
  }

  /** DELE: marks a message; it is removed only if `quit()` reports `committed` (RFC 1939 §6). */
  dele(messageNumber: number): Promise<void> {
    assertCount(messageNumber, 1);
    return this.#simple(`DELE ${messageNumber}`, "DELE");
  }

  /** RSET: unmarks every message marked for deletion in this session. */
  rset(): Promise<void> {
    return this.#simple("RSET", "RSET");
  }

  /** NOOP: keeps the session alive and checks that it still is. */
  noop(): Promise<void> {
    return this.#simple("NOOP", "NOOP");
  }

  /**
   * QUIT. RFC 1939 §6: the server enters UPDATE state and removes the marked messages, then
   * answers; so only a +OK proves the deletions took effect. A -ERR, a closed connection or a
   * dead client yields `committed: false`. The connection is closed in every case.
   */
  async quit(): Promise<{ committed: boolean }> {
    try {
      return await this.#enqueue(async () => {
        this.#wire.send("QUIT");
        const reply = parseStatusLine(await this.#wire.readLine());
        return { committed: reply.kind === "ok" };
      });
    } catch {
      return { committed: false };
    } finally {
      this.destroy();
    }
  }

  /** Drops the connection without QUIT: the server never enters UPDATE, nothing marked is deleted. */
  destroy(): void {
    clearTimeout(this.#deadline);
    this.#wire.fail(new ConnectionClosedError("pop3", "The POP3 client was destroyed (no QUIT was sent)"));
  }

  async #simple(line: string, command: string): Promise<void> {
    await this.#enqueue(async () => {
      this.#wire.send(line);
      await this.#readReply(command, false);
    });
  }

  async #listing(command: "LIST"): Promise<string[]> {
    this.#wire.send(command);
    await this.#readReply(command, false);
    return splitListingLines(
      await this.#readBody(this.#options.maxListingBytes, command),
      this.#options.maxLineBytes,
    );
  }

  /** Reads a multi-line body into memory; only for bounded, small replies (never RETR). */
  async #readBody(maxBytes: number, command: string): Promise<Buffer> {
    const pieces: Buffer[] = [];
    let size = 0;
    await this.#wire.readBody((piece) => {
      size += piece.length;
      if (size > maxBytes) {
        this.#wire.fail(new ProtocolError("pop3", `The ${command} reply is larger than ${maxBytes} bytes`));
        return false;
      }
      pieces.push(Buffer.from(piece));
      return true;
    });
    return Buffer.concat(pieces, size);
  }

  /**
   * Reads one status line. `secrets` (login only): forms of the password to cut out of the
   * server's text before it can reach an error, since some servers echo what they were sent.
   */
  async #readReply(
    command: string,
    isLogin: boolean,
    allow: { allowErr?: boolean; allowContinue?: boolean } = {},
    secrets: readonly string[] = [],
  ): Promise<StatusLine> {
    let reply: StatusLine;
    try {
      reply = parseStatusLine(await this.#wire.readLine());
    } catch (error) {
      let typed = toPop3Error(error);
      if (secrets.length > 0 && typed instanceof ProtocolError) {
        // The malformed line's text is quoted in the error: after a login command, do not quote it.
        typed = new ProtocolError("pop3", `The server's reply to ${command} is neither +OK nor -ERR`);
      }
      this.#wire.fail(typed);
      throw typed;
    }
    if (reply.kind === "err" && secrets.length > 0) reply = { ...reply, text: redact(reply.text, secrets) };
    if (reply.kind === "err" && !allow.allowErr) throw errorForErrReply(command, reply, isLogin);
    if (reply.kind === "continue" && !allow.allowContinue) {
      const error = new ProtocolError("pop3", `Unexpected "+" continuation in reply to ${command}`);
      this.#wire.fail(error);
      throw error;
    }
    return reply;
  }

  #enqueue<T>(task: () => Promise<T>): Promise<T> {
    if (this.#streamOpen) {
      return Promise.reject(
        new Pop3ClientBusyError("A RETR stream is still open: read it to its end or destroy it first"),
      );
    }
    const result = this.#queue.then(task);
    this.#queue = result.catch(() => undefined);
    return result;
  }
}

/** CR, LF or NUL end a POP3 command line (RFC 1939 §3) or a SASL PLAIN field (RFC 4616). */
const LINE_BREAKING = /[\r\n\0]/;

/**
 * Throws `ConfigError` when a credential holds CR, LF or NUL: on the wire they would end the
 * command and start another (a password "pw\r\nDELE 1" deletes message 1). The value itself is
 * never put in the error.
 */
export function assertCredentialSafe(value: string, what: string, field: string, source?: string): void {
  if (!LINE_BREAKING.test(value)) return;
  const where = source === undefined ? "" : ` in ${source}`;
  throw new ConfigError(field, `the POP3 ${what}${where} contains a line break (CR or LF) or a NUL byte`, {
    hint: `Store the ${what} without CR, LF or NUL (a trailing newline from a file or from echo is the usual cause).`,
  });
}

/** The wire writes each character as one byte (latin1): hand it the UTF-8 bytes of `line`. */
function asUtf8Line(line: string): string {
  return Buffer.from(line, "utf8").toString("latin1");
}

/** The forms of a password a server could echo back in a status line, as `printable` shows them. */
function secretFormsOf(password: string, extra: readonly string[]): string[] {
  const utf8 = Buffer.from(password, "utf8");
  const forms = [password, utf8.toString("latin1"), utf8.toString("base64"), ...extra];
  return [...new Set([...forms, ...forms.map(printable)])]
    .filter((form) => form.length > 0)
    .sort((a, b) => b.length - a.length);
}

function redact(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of secrets) result = result.split(secret).join("[redacted]");
  return result;
}

function assertCount(value: number, minimum: number): void {
  if (!Number.isSafeInteger(value) || value < minimum) {
    throw new RangeError(`Expected an integer >= ${minimum}, got ${value}`);
  }
}

/** Anything thrown below is already typed; this only guards against a stray library error. */
function toPop3Error(error: unknown): Pop2GmailError {
  if (error instanceof Pop2GmailError) return error;
  return new ProtocolError("pop3", "Unexpected failure in the POP3 client", { cause: error });
}
