import { createServer, type Server, type Socket } from "node:net";

/** What one reply carries, before delivery quirks are applied. */
export type ReplyBody =
  /** The correct answer for the verb received (over a fixed two-message maildrop). */
  | { readonly kind: "proper" }
  /** Exactly these bytes, whatever was asked: garbage, lies, long lines, -ERR, ... */
  | { readonly kind: "raw"; readonly bytes: Uint8Array }
  /** `prefix`, then `line` repeated for as long as the client keeps the connection open. */
  | { readonly kind: "endless"; readonly prefix: Uint8Array; readonly line: Uint8Array }
  /** `prefix`, then one harmless byte every 40 ms: never silent, never done. */
  | { readonly kind: "trickle"; readonly prefix: Uint8Array };

/** What the server does after (part of) a reply. */
export type ReplyTail =
  | { readonly kind: "none" }
  /** Answer nothing more, ever (the connection stays open). */
  | { readonly kind: "stall" }
  /** Close cleanly (FIN). */
  | { readonly kind: "close" }
  /** Reset (RST). */
  | { readonly kind: "reset" }
  /** Extra bytes nobody asked for, right after the reply. */
  | { readonly kind: "unsolicited"; readonly bytes: Uint8Array };

/** One reply: its body, where writes are split, where it is cut short, and what follows. */
export interface ReplyStep {
  readonly body: ReplyBody;
  /** Byte offsets at which the reply is split into separately flushed writes. */
  readonly splits: readonly number[];
  /** With a stall/close/reset tail: send only this many bytes first (clamped to the length). */
  readonly cutAt?: number;
  readonly tail: ReplyTail;
}

/** The whole conversation: a greeting, then one step per command line, then `afterwards`. */
export interface HostileScript {
  readonly greeting: ReplyStep;
  readonly replies: readonly ReplyStep[];
  readonly afterwards: "proper" | "close" | "stall";
}

const CRLF = "\r\n";
/** The maildrop "proper" replies describe. Message 2 needs dot-stuffing. */
export const PROPER_MESSAGES: readonly Buffer[] = [
  Buffer.from(`From: a@example.test${CRLF}Subject: one${CRLF}${CRLF}hello${CRLF}`),
  Buffer.from(
    `From: b@example.test${CRLF}Subject: two${CRLF}${CRLF}.${CRLF}..x${CRLF}\u00e9\0${CRLF}`,
    "latin1",
  ),
];

/** RFC 1939 §3 byte-stuffing plus the terminator; the body must end with CRLF (or be empty). */
export function stuff(body: Uint8Array): Buffer {
  const bytes = Buffer.from(body);
  const parts: Buffer[] = [];
  let start = 0;
  while (start < bytes.length) {
    const next = bytes.indexOf(CRLF, start);
    const end = next === -1 ? bytes.length : next + 2;
    if (bytes[start] === 0x2e) parts.push(Buffer.from("."));
    parts.push(bytes.subarray(start, end));
    start = end;
  }
  parts.push(Buffer.from(`.${CRLF}`));
  return Buffer.concat(parts);
}

function properReply(verb: string): { bytes: Buffer; thenClose: boolean } {
  const text = (s: string) => ({ bytes: Buffer.from(s, "latin1"), thenClose: false });
  const multi = (lines: string[]) => text(`+OK${CRLF}${lines.map((l) => l + CRLF).join("")}.${CRLF}`);
  const sizes = PROPER_MESSAGES.map((m) => m.length);
  switch (verb) {
    case "GREETING":
      return text(`+OK hostile POP3 ready <1.2@hostile.test>${CRLF}`);
    case "CAPA":
      return multi(["CAPA", "TOP", "UIDL", "USER", "SASL PLAIN"]);
    case "USER":
    case "PASS":
    case "AUTH":
    case "APOP":
    case "DELE":
    case "RSET":
    case "NOOP":
      return text(`+OK${CRLF}`);
    case "STAT":
      return text(`+OK ${sizes.length} ${sizes.reduce((a, b) => a + b, 0)}${CRLF}`);
    case "LIST":
      return multi(sizes.map((size, i) => `${i + 1} ${size}`));
    case "UIDL":
      return multi(sizes.map((_, i) => `${i + 1} uid-${i + 1}`));
    case "RETR":
    case "TOP":
      return {
        bytes: Buffer.concat([Buffer.from(`+OK${CRLF}`), stuff(PROPER_MESSAGES[1] ?? Buffer.alloc(0))]),
        thenClose: false,
      };
    case "QUIT":
      return { bytes: Buffer.from(`+OK bye${CRLF}`), thenClose: true };
    default:
      return text(`-ERR unknown command${CRLF}`);
  }
}

/**
 * A TCP server on 127.0.0.1 that answers each command line with the next step of a script, with
 * the script's splits, cuts, stalls, closes, resets, endless and unsolicited bytes. It honours
 * TCP backpressure itself, so an endless reply cannot grow this process's memory either.
 */
export class HostilePop3Server {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #script: HostileScript | undefined;
  /** Bytes this server wrote, all connections together. */
  bytesWritten = 0;

  constructor() {
    this.#server = createServer((socket) => this.#accept(socket));
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(0, "127.0.0.1", () => resolve());
    });
    const address = this.#server.address();
    if (address === null || typeof address === "string") throw new Error("no TCP address");
    return address.port;
  }

  /** The script the next connections play. */
  play(script: HostileScript): void {
    this.#script = script;
    this.bytesWritten = 0;
  }

  /** Drops every open connection (between runs, and on stop). */
  dropAll(): void {
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
  }

  async stop(): Promise<void> {
    this.dropAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: Socket): void {
    const script = this.#script;
    this.#sockets.add(socket);
    socket.setNoDelay(true);
    socket.on("error", () => undefined);
    socket.on("close", () => this.#sockets.delete(socket));
    if (script === undefined) {
      socket.destroy();
      return;
    }
    let input = Buffer.alloc(0);
    let chain = this.#step(socket, script.greeting, "GREETING");
    let index = 0;
    let silent = false;
    socket.on("data", (chunk: Buffer) => {
      input = Buffer.concat([input, chunk]);
      for (;;) {
        const lineFeed = input.indexOf(0x0a);
        if (lineFeed === -1) break;
        const line = input.toString("latin1", 0, lineFeed).replace(/\r$/, "");
        input = input.subarray(lineFeed + 1);
        const verb = (line.split(" ")[0] ?? "").toUpperCase();
        const step = script.replies[index];
        index += 1;
        chain = chain.then(async (stopped) => {
          if (stopped || silent) return true;
          if (step !== undefined) return this.#step(socket, step, verb);
          if (script.afterwards === "stall") {
            silent = true;
            return true;
          }
          if (script.afterwards === "close") {
            socket.end();
            return true;
          }
          return this.#step(socket, { body: { kind: "proper" }, splits: [], tail: { kind: "none" } }, verb);
        });
      }
    });
  }

  /** Plays one step; resolves true when the connection will say nothing more. */
  async #step(socket: Socket, step: ReplyStep, verb: string): Promise<boolean> {
    let bytes: Buffer;
    let closeAfter = false;
    switch (step.body.kind) {
      case "proper": {
        const proper = properReply(verb);
        bytes = proper.bytes;
        closeAfter = proper.thenClose;
        break;
      }
      case "raw":
        bytes = Buffer.from(step.body.bytes);
        break;
      default:
        bytes = Buffer.from(step.body.prefix);
    }
    const tail = step.tail;
    const cut =
      tail.kind === "none" || tail.kind === "unsolicited" ? bytes.length : (step.cutAt ?? bytes.length);
    await this.#writeSplit(socket, bytes.subarray(0, Math.min(cut, bytes.length)), step.splits);
    if (cut >= bytes.length) {
      if (step.body.kind === "endless") {
        await this.#endless(socket, Buffer.from(step.body.line));
        return true;
      }
      if (step.body.kind === "trickle") {
        await this.#trickle(socket);
        return true;
      }
    }
    switch (tail.kind) {
      case "stall":
        return true;
      case "close":
        socket.end();
        return true;
      case "reset":
        socket.resetAndDestroy();
        return true;
      case "unsolicited":
        await this.#write(socket, Buffer.from(tail.bytes));
        break;
      case "none":
        break;
    }
    if (closeAfter) {
      socket.end();
      return true;
    }
    return false;
  }

  async #writeSplit(socket: Socket, bytes: Buffer, splits: readonly number[]): Promise<void> {
    const offsets = [...new Set(splits.filter((o) => o > 0 && o < bytes.length))].sort((a, b) => a - b);
    let start = 0;
    for (const offset of [...offsets, bytes.length]) {
      await this.#write(socket, bytes.subarray(start, offset));
      start = offset;
    }
  }

  /** Writes, then waits until the bytes left (or the socket died) and one more turn of the loop. */
  #write(socket: Socket, bytes: Buffer): Promise<void> {
    if (bytes.length === 0 || socket.destroyed || socket.writableEnded) return Promise.resolve();
    this.bytesWritten += bytes.length;
    return new Promise((resolve) => {
      socket.write(bytes, () => setImmediate(resolve));
    });
  }

  async #endless(socket: Socket, line: Buffer): Promise<void> {
    const piece = Buffer.concat(
      Array.from({ length: Math.max(1, Math.ceil(16_384 / line.length)) }, () => line),
    );
    while (!socket.destroyed && !socket.writableEnded) {
      this.bytesWritten += piece.length;
      if (!socket.write(piece)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            socket.off("drain", done);
            socket.off("close", done);
            resolve();
          };
          socket.on("drain", done);
          socket.on("close", done);
        });
      } else {
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  }

  async #trickle(socket: Socket): Promise<void> {
    while (!socket.destroyed && !socket.writableEnded) {
      await new Promise<void>((resolve) => setTimeout(resolve, 40));
      if (socket.destroyed) return;
      this.bytesWritten += 1;
      socket.write("z");
    }
  }
}
