/**
 * A bounded reader for the header block of a message on its way to the archive. It reads ahead
 * at most `maxBytes` of the stream, parses the few headers the pipeline needs, and hands back a
 * stream that replays what it read followed by the rest: one pass over the bytes, flat memory.
 */

/** Headers the pipeline uses: Message-ID for Gmail's merge, topmost Received date for DeliveryDelay. */
export interface MessageHeaders {
  readonly messageId?: string;
  /** Epoch ms of the date in the topmost `Received:` header (the provider's arrival stamp). */
  readonly receivedAt?: number;
}

/** Default read-ahead: header blocks beyond 64 KB are rare and are parsed as far as they go. */
export const DEFAULT_HEADER_LIMIT_BYTES = 64 * 1024;

/** Message-IDs longer than this are not kept (RFC 5322 sets no limit; a hostile one could be huge). */
const MAX_MESSAGE_ID_LENGTH = 998;

/**
 * Reads the header block from the front of `body` (up to `maxBytes`) without consuming the rest.
 * Returns the parsed headers and a stream that yields every byte of `body`, unchanged.
 */
export async function readHeaderBlock(
  body: AsyncIterable<Uint8Array>,
  maxBytes: number = DEFAULT_HEADER_LIMIT_BYTES,
): Promise<{ headers: MessageHeaders; body: AsyncIterable<Uint8Array> }> {
  const iterator = body[Symbol.asyncIterator]();
  const buffered: Uint8Array[] = [];
  let bufferedBytes = 0;
  let exhausted = false;
  while (bufferedBytes < maxBytes) {
    const next = await iterator.next();
    if (next.done) {
      exhausted = true;
      break;
    }
    buffered.push(next.value);
    // Search only the new chunk plus the 3 bytes before it (a CRLFCRLF may straddle chunks).
    const tail = concat([...lastBytes(buffered.slice(0, -1), 3), next.value]);
    bufferedBytes += next.value.length;
    if (endOfHeaders(tail) >= 0) break;
  }
  const head = concat(buffered);
  const end = endOfHeaders(head);
  const headerBytes = head.subarray(0, Math.min(end >= 0 ? end : head.length, maxBytes));
  return { headers: parseHeaders(headerBytes), body: replay(buffered, iterator, exhausted) };
}

async function* replay(
  buffered: readonly Uint8Array[],
  rest: AsyncIterator<Uint8Array>,
  exhausted: boolean,
): AsyncIterable<Uint8Array> {
  yield* buffered;
  if (exhausted) return;
  for (;;) {
    const next = await rest.next();
    if (next.done) return;
    yield next.value;
  }
}

/** The last `count` bytes of `chunks`, as chunks. */
function lastBytes(chunks: readonly Uint8Array[], count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let left = count;
  for (let i = chunks.length - 1; i >= 0 && left > 0; i--) {
    const chunk = chunks[i] as Uint8Array;
    const part = chunk.subarray(Math.max(0, chunk.length - left));
    out.unshift(part);
    left -= part.length;
  }
  return out;
}

/** Index of the empty line that ends the header block (RFC 5322 §2.1), or -1. Bare LF is tolerated. */
function endOfHeaders(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length - 1; i++) {
    if (bytes[i] !== 0x0a) continue;
    if (bytes[i + 1] === 0x0a) return i;
    if (bytes[i + 1] === 0x0d && bytes[i + 2] === 0x0a) return i;
  }
  return -1;
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1 && chunks[0]) return chunks[0];
  const total = chunks.reduce((sum, c) => sum + c.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** Parses the headers the pipeline needs from a raw header block. Exported for tests. */
export function parseHeaders(block: Uint8Array): MessageHeaders {
  // latin1 maps every byte to one char, so 8-bit garbage cannot break the parse.
  const text = Buffer.from(block.buffer, block.byteOffset, block.byteLength).toString("latin1");
  let messageId: string | undefined;
  let receivedAt: number | undefined;
  let sawReceived = false;
  for (const field of unfold(text)) {
    const colon = field.indexOf(":");
    if (colon <= 0) continue;
    const name = field.slice(0, colon).trim().toLowerCase();
    const value = field.slice(colon + 1).trim();
    if (name === "message-id" && messageId === undefined && value.length > 0) {
      if (value.length <= MAX_MESSAGE_ID_LENGTH) messageId = value;
    } else if (name === "received" && !sawReceived) {
      // Only the topmost Received: the provider's own stamp of arrival (RFC 5321 §4.4).
      sawReceived = true;
      receivedAt = receivedDate(value);
    }
  }
  return {
    ...(messageId === undefined ? {} : { messageId }),
    ...(receivedAt === undefined ? {} : { receivedAt }),
  };
}

/** Header fields with folding undone (RFC 5322 §2.2.3: CRLF followed by WSP continues a field). */
function unfold(text: string): string[] {
  const fields: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const last = fields.length - 1;
    if ((line.startsWith(" ") || line.startsWith("\t")) && last >= 0) {
      fields[last] = `${fields[last]} ${line.trim()}`;
    } else if (line.length > 0) {
      fields.push(line);
    }
  }
  return fields;
}

/** The date-time after the last ";" of a Received value (RFC 5321 §4.4 Time-stamp-line). */
function receivedDate(value: string): number | undefined {
  const semicolon = value.lastIndexOf(";");
  if (semicolon < 0) return undefined;
  const date = value
    .slice(semicolon + 1)
    .replace(/\([^)]*\)/g, " ") // RFC 5322 comments such as "(CEST)"
    .trim();
  const ms = Date.parse(date);
  return Number.isFinite(ms) ? ms : undefined;
}
