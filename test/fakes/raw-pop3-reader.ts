import { connect, type Socket } from "node:net";

const TERMINATOR = Buffer.from("\r\n.\r\n");
const EMPTY_BODY = Buffer.from(".\r\n");

/**
 * A deliberately simple POP3 reader over plaintext TCP, used as the oracle of the conformance
 * tests: it buffers every reply whole and shares no code with the client under test, so "the
 * client returns what this returns" means "the client returns what the server put on the wire".
 * One command at a time; replies are read to their end before the next command is sent.
 */
export class RawPop3Reader {
  readonly #socket: Socket;
  readonly #chunks: Buffer[] = [];
  #buffered = 0;
  #wake: (() => void) | undefined;
  #closed = false;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      this.#wake?.();
    });
    socket.on("close", () => {
      this.#closed = true;
      this.#wake?.();
    });
    socket.on("error", () => {});
  }

  /** Connects, reads the greeting and logs in with USER/PASS. */
  static async login(host: string, port: number, user: string, password: string): Promise<RawPop3Reader> {
    const socket = connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const reader = new RawPop3Reader(socket);
    await reader.#status();
    await reader.command(`USER ${user}`);
    await reader.command(`PASS ${password}`);
    return reader;
  }

  /** Sends a one-line command and returns its `+OK` status line; throws on `-ERR`. */
  async command(line: string): Promise<string> {
    this.#socket.write(`${line}\r\n`);
    return this.#status();
  }

  /** Sends a multi-line command and returns its body exactly as sent, still dot-stuffed. */
  async multiline(line: string): Promise<Buffer> {
    await this.command(line);
    // The server sends nothing after the terminator until the next command, so the reply is
    // complete exactly when everything buffered ends with it; only the tail is checked per chunk.
    for (;;) {
      const tail = this.#tail(TERMINATOR.length);
      const done =
        (this.#buffered === EMPTY_BODY.length && tail.equals(EMPTY_BODY)) ||
        (this.#buffered >= TERMINATOR.length && tail.equals(TERMINATOR));
      if (done) break;
      await this.#more();
    }
    const body = Buffer.concat(this.#chunks);
    this.#chunks.length = 0;
    this.#buffered = 0;
    // Keep the CRLF that ends the last line; drop only the ".\r\n" terminator line.
    return body.subarray(0, body.length - EMPTY_BODY.length);
  }

  /** RETR `number`, dot-unstuffed (RFC 1939 §3): the oracle's "what the server served". */
  async retrieve(number: number): Promise<Buffer> {
    return unstuff(await this.multiline(`RETR ${number}`));
  }

  /** QUIT and close. */
  async quit(): Promise<void> {
    await this.command("QUIT").catch(() => "");
    this.#socket.destroy();
  }

  async #status(): Promise<string> {
    for (;;) {
      const all = Buffer.concat(this.#chunks);
      const end = all.indexOf("\r\n");
      if (end >= 0) {
        this.#chunks.length = 0;
        if (end + 2 < all.length) this.#chunks.push(all.subarray(end + 2));
        this.#buffered = all.length - end - 2;
        const line = all.subarray(0, end).toString("latin1");
        if (!line.startsWith("+OK")) throw new Error(`POP3 server answered: ${line}`);
        return line;
      }
      await this.#more();
    }
  }

  /** The last `length` buffered bytes (fewer if fewer are buffered), across chunk borders. */
  #tail(length: number): Buffer {
    const pieces: Buffer[] = [];
    let needed = length;
    for (let index = this.#chunks.length - 1; index >= 0 && needed > 0; index -= 1) {
      const chunk = this.#chunks[index] as Buffer;
      const piece = chunk.subarray(Math.max(0, chunk.length - needed));
      pieces.unshift(piece);
      needed -= piece.length;
    }
    return Buffer.concat(pieces);
  }

  /** Resolves when more bytes arrive; throws if the connection closed instead. */
  async #more(): Promise<void> {
    if (this.#closed) throw new Error("POP3 connection closed before the reply was complete");
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
    });
    this.#wake = undefined;
  }
}

/** Removes the first "." of every line that starts with one (RFC 1939 §3 byte-stuffing). */
export function unstuff(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let start = body[0] === 0x2e ? 1 : 0;
  for (;;) {
    const lineStart = body.indexOf("\r\n.", start);
    if (lineStart < 0) break;
    parts.push(body.subarray(start, lineStart + 2));
    start = lineStart + 3;
  }
  parts.push(body.subarray(start));
  return Buffer.concat(parts);
}

/** UIDL listing by the raw reader: `number uidl` lines. */
export async function uidlListing(reader: RawPop3Reader): Promise<{ number: number; uidl: string }[]> {
  const body = (await reader.multiline("UIDL")).toString("latin1");
  return body
    .split("\r\n")
    .filter((line) => line.length > 0)
    .map((line) => {
      const [number, uidl] = line.split(" ");
      return { number: Number(number), uidl: uidl ?? "" };
    });
}
