const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const HELD_CR = Buffer.from([CR]);

/** Where the decoder stands between two bytes; kept across chunks so any split point works. */
type State = "line-start" | "dot" | "dot-cr" | "mid-line";

/** What one chunk yielded: body pieces (views into the chunk, not copies) and whether the end was reached. */
export interface DecodedChunk {
  readonly pieces: Buffer[];
  readonly done: boolean;
  /** Bytes after the terminator (only when `done`); a POP3 server should send none. */
  readonly rest: Buffer;
}

/**
 * Incremental decoder for an RFC 1939 §3 multi-line response body. It removes the byte-stuffed
 * "." at the start of a line, keeps every other byte (CRLF, bare CR or LF, 8-bit, NUL) exactly as
 * served, and finds the terminating CRLF "." CRLF wherever the TCP chunks happen to split it.
 * The CRLF before the final "." belongs to the body (it ends the last line), so a message is
 * returned as the server stored it. Memory use is constant: it never holds more than one byte.
 */
export class MultilineDecoder {
  #state: State = "line-start";
  /** In "mid-line": whether the last byte of the previous chunk was CR (a line may end across chunks). */
  #previousWasCr = false;
  #done = false;

  /** True once the terminator has been seen. */
  get done(): boolean {
    return this.#done;
  }

  /** Decodes one chunk. Must not be called again after a result with `done`. */
  decode(chunk: Buffer): DecodedChunk {
    if (this.#done) throw new Error("MultilineDecoder: terminator already seen");
    const pieces: Buffer[] = [];
    const length = chunk.length;
    let position = 0;
    let runStart = 0;
    while (position < length) {
      switch (this.#state) {
        case "line-start": {
          if (chunk[position] === DOT) {
            if (position > runStart) pieces.push(chunk.subarray(runStart, position));
            position += 1;
            runStart = position;
            this.#state = "dot";
          } else {
            this.#enterMidLine(false);
          }
          break;
        }
        case "dot": {
          if (chunk[position] === CR) {
            // Possibly the terminator: hold the CR back until the next byte decides.
            position += 1;
            runStart = position;
            this.#state = "dot-cr";
          } else {
            // A stuffed line: the leading "." is dropped, the rest of the line is body.
            this.#enterMidLine(false);
          }
          break;
        }
        case "dot-cr": {
          if (chunk[position] === LF) {
            this.#done = true;
            return { pieces, done: true, rest: chunk.subarray(position + 1) };
          }
          // "." CR without LF is not the terminator; lenient like Dovecot: keep the CR as body.
          pieces.push(HELD_CR);
          this.#enterMidLine(true);
          break;
        }
        case "mid-line": {
          const lineFeed = chunk.indexOf(LF, position);
          if (lineFeed === -1) {
            this.#previousWasCr = chunk[length - 1] === CR;
            position = length;
            break;
          }
          const crBefore = lineFeed > position ? chunk[lineFeed - 1] === CR : this.#previousWasCr;
          position = lineFeed + 1;
          // Only CRLF ends a line (RFC 1939 §3); a bare LF followed by "." is body.
          if (crBefore) this.#state = "line-start";
          else this.#previousWasCr = false;
          break;
        }
      }
    }
    if (length > runStart) pieces.push(chunk.subarray(runStart, length));
    return { pieces, done: false, rest: chunk.subarray(length) };
  }

  #enterMidLine(previousWasCr: boolean): void {
    this.#state = "mid-line";
    this.#previousWasCr = previousWasCr;
  }
}
