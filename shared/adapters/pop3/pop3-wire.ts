import type { Socket } from "node:net";
import { ConnectionClosedError, type Pop2GmailError, ProtocolError, TimeoutError } from "../../core/errors";
import { MultilineDecoder } from "./multiline-decoder";
import { errorForErrReply } from "./pop3-reply-errors";
import { parseStatusLine, printable } from "./status-line";

const EMPTY = Buffer.alloc(0);
const LF = 0x0a;
const CR = 0x0d;

/** Limits of one connection; see `Pop3ConnectOptions` for their meaning. */
export interface WireLimits {
  readonly commandTimeoutMs: number;
  readonly maxLineBytes: number;
}

/** Receives the bytes of a multi-line body as they arrive; returns false to ask for a pause. */
export type BodySink = (piece: Buffer) => boolean;

/** Whoever currently owns the incoming bytes. */
interface Reader {
  onData(chunk: Buffer): void;
  onFailure(error: Pop2GmailError): void;
}

/**
 * One POP3 connection's byte channel: writes command lines, reads status lines and multi-line
 * bodies, enforces the inactivity timeout and line bound, and turns every socket event (close,
 * reset, timeout, unsolicited bytes) into one typed failure. After the first failure the wire is
 * dead and every later call fails with the same error, so nothing hangs and nothing throws
 * uncaught.
 */
export class Pop3Wire {
  readonly #socket: Socket;
  readonly #limits: WireLimits;
  /** Bytes that arrived while no reader was active: a reply's tail, or unsolicited data. */
  #pending: Buffer = EMPTY;
  #reader: Reader | undefined;
  #failure: Pop2GmailError | undefined;
  #socketError: Error | undefined;
  #inactivity: NodeJS.Timeout | undefined;
  #paused = false;
  readonly #onData = (chunk: Buffer): void => this.#receive(chunk);
  readonly #onError = (error: Error): void => {
    this.#socketError = error;
  };
  readonly #onClose = (): void => this.fail(this.#closedError());

  constructor(socket: Socket, limits: WireLimits, initialBytes: Buffer = EMPTY) {
    this.#socket = socket;
    this.#limits = limits;
    this.#pending = initialBytes;
    socket.on("data", this.#onData);
    socket.on("error", this.#onError);
    socket.on("close", this.#onClose);
  }

  /** The first failure, once the wire is dead. */
  get failure(): Pop2GmailError | undefined {
    return this.#failure;
  }

  /** True while incoming bytes are held back because the RETR consumer is slow. */
  get paused(): boolean {
    return this.#paused;
  }

  /**
   * Sends one command line. Fails first if the server sent something while we were idle: POP3
   * servers speak only when spoken to (RFC 1939 §3), so such bytes mean it is closing on us
   * (`-ERR` then close) or the stream is out of step; either way replies can no longer be matched.
   */
  send(line: string): void {
    if (this.#failure) throw this.#failure;
    if (this.#pending.length > 0) {
      this.fail(this.#unsolicitedError());
      throw this.#failure;
    }
    this.#socket.write(`${line}\r\n`, "latin1");
  }

  /** Reads one status line (CRLF removed), bounded by `maxLineBytes`. */
  readLine(): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      let collected: Buffer = EMPTY;
      this.#read({
        onData: (chunk) => {
          const searchFrom = Math.max(0, collected.length - 1);
          collected = collected.length === 0 ? chunk : Buffer.concat([collected, chunk]);
          const lineFeed = collected.indexOf(LF, searchFrom);
          if (lineFeed === -1) {
            if (collected.length > this.#limits.maxLineBytes) {
              this.fail(
                new ProtocolError(
                  "pop3",
                  `The server sent a line longer than ${this.#limits.maxLineBytes} bytes`,
                ),
              );
            }
            return;
          }
          if (lineFeed > this.#limits.maxLineBytes) {
            this.fail(
              new ProtocolError(
                "pop3",
                `The server sent a line longer than ${this.#limits.maxLineBytes} bytes`,
              ),
            );
            return;
          }
          const end = lineFeed > 0 && collected[lineFeed - 1] === CR ? lineFeed - 1 : lineFeed;
          this.#release(collected.subarray(lineFeed + 1));
          resolve(collected.subarray(0, end));
        },
        onFailure: reject,
      });
    });
  }

  /**
   * Reads a multi-line body after its +OK line, handing dot-unstuffed pieces to `sink` as they
   * arrive. When the sink asks for a pause, the socket is paused (TCP pushes back on the server)
   * and the inactivity timer stops: a slow consumer is not a stalled server.
   */
  readBody(sink: BodySink): Promise<void> {
    return new Promise((resolve, reject) => {
      const decoder = new MultilineDecoder();
      this.#read({
        onData: (chunk) => {
          const { pieces, done, rest } = decoder.decode(chunk);
          let wantsMore = true;
          for (const piece of pieces) {
            wantsMore = sink(piece) && wantsMore;
            if (this.#failure) return;
          }
          if (done) {
            this.#release(rest);
            resolve();
          } else if (!wantsMore) {
            this.pause();
          }
        },
        onFailure: reject,
      });
    });
  }

  /** Holds back incoming bytes (backpressure). */
  pause(): void {
    if (this.#paused || this.#failure) return;
    this.#paused = true;
    this.#socket.pause();
    this.#disarmInactivity();
  }

  /** Lets incoming bytes flow again. */
  resume(): void {
    if (!this.#paused || this.#failure) return;
    this.#paused = false;
    if (this.#reader) this.#armInactivity();
    this.#socket.resume();
  }

  /** Kills the connection with `error`; the active reader, if any, receives it. Idempotent. */
  fail(error: Pop2GmailError): void {
    if (this.#failure) return;
    this.#failure = error;
    this.#disarmInactivity();
    this.#socket.destroy();
    const reader = this.#reader;
    this.#reader = undefined;
    reader?.onFailure(error);
  }

  /**
   * Stops listening and hands the socket over (for STLS). Refuses if bytes are pending: plaintext
   * sent after the STLS +OK would be treated as if it came through TLS (RFC 2595 §3.1 warns of
   * this injection; CVE-2011-0411), so it is a protocol violation.
   */
  detach(): Socket {
    if (this.#failure) throw this.#failure;
    if (this.#pending.length > 0) {
      this.fail(new ProtocolError("pop3", "The server sent data after STLS +OK before the TLS handshake"));
      throw this.#failure;
    }
    this.#disarmInactivity();
    this.#socket.off("data", this.#onData);
    this.#socket.off("error", this.#onError);
    this.#socket.off("close", this.#onClose);
    return this.#socket;
  }

  #read(reader: Reader): void {
    if (this.#failure) {
      reader.onFailure(this.#failure);
      return;
    }
    this.#reader = reader;
    this.#armInactivity();
    if (this.#pending.length > 0) {
      const pending = this.#pending;
      this.#pending = EMPTY;
      reader.onData(pending);
    }
  }

  #release(rest: Buffer): void {
    this.#reader = undefined;
    this.#disarmInactivity();
    this.#pending = rest.length > 0 ? Buffer.from(rest) : EMPTY;
    if (this.#paused) {
      // The body ended in a chunk that arrived while paused: the next reply must flow again.
      this.#paused = false;
      this.#socket.resume();
    }
  }

  #receive(chunk: Buffer): void {
    if (this.#failure) return;
    if (this.#reader) {
      if (!this.#paused) this.#armInactivity();
      this.#reader.onData(chunk);
      return;
    }
    // Unsolicited: keep a bounded amount so the next command can report what the server said.
    this.#pending = Buffer.concat([this.#pending, chunk]);
    if (this.#pending.length > this.#limits.maxLineBytes) this.fail(this.#unsolicitedError());
  }

  #unsolicitedError(): Pop2GmailError {
    const text = this.#pending.subarray(0, this.#limits.maxLineBytes);
    const lineFeed = text.indexOf(LF);
    const line = text
      .subarray(0, lineFeed === -1 ? text.length : lineFeed)
      .toString("latin1")
      .replace(/\r$/, "");
    // Only a well-formed -ERR is parsed: parseStatusLine throws on "-ERRX" or "-ERR<TAB>", and
    // this runs inside socket event handlers, where a throw would be an uncaught exception.
    if (line === "-ERR" || line.startsWith("-ERR ")) {
      const reply = parseStatusLine(Buffer.from(line, "latin1"));
      if (reply.kind === "err" && (reply.code === "IN-USE" || reply.code === "LOGIN-DELAY")) {
        return errorForErrReply("(unsolicited)", reply, false);
      }
      return new ConnectionClosedError(
        "pop3",
        `The server sent "${printable(line)}" unprompted and is closing`,
      );
    }
    return new ProtocolError("pop3", `The server sent data nobody asked for: "${printable(line)}"`);
  }

  #closedError(): Pop2GmailError {
    if (this.#pending.length > 0 && !this.#reader) return this.#unsolicitedError();
    const cause = this.#socketError;
    const detail = cause && "code" in cause ? ` (${String(cause.code)})` : "";
    return new ConnectionClosedError("pop3", `The POP3 connection closed${detail}`, cause ? { cause } : {});
  }

  #armInactivity(): void {
    if (this.#inactivity) {
      this.#inactivity.refresh();
      return;
    }
    this.#inactivity = setTimeout(() => {
      this.fail(
        new TimeoutError("pop3", `The POP3 server sent nothing for ${this.#limits.commandTimeoutMs} ms`),
      );
    }, this.#limits.commandTimeoutMs);
  }

  #disarmInactivity(): void {
    if (this.#inactivity) clearTimeout(this.#inactivity);
    this.#inactivity = undefined;
  }
}
