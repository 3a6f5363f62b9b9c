import { createHash } from "node:crypto";

/** A small RFC 5322 message with 8-bit bytes, a NUL and CRLF line ends, as POP3 would serve it. */
export function smallTestMessage(messageId: string, extraBody = ""): Buffer {
  const head = Buffer.from(
    `From: Anna <anna@example.it>\r\nTo: info@acme.it\r\nSubject: prova ${messageId}\r\n` +
      `Message-ID: <${messageId}>\r\nDate: Mon, 5 Jan 2026 10:00:00 +0100\r\n` +
      "Content-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
    "latin1",
  );
  // 8-bit bytes (ISO-8859-1 "è", "ü"), a NUL, a bare CR and bytes that are invalid UTF-8.
  const body = Buffer.concat([
    Buffer.from("Caff\xe8 gi\xf9 \xfcber\r\n", "latin1"),
    Buffer.from([0x00, 0x0d, 0xff, 0xfe, 0x80, 0x0d, 0x0a]),
    Buffer.from(`${extraBody}.\r\n..dot line\r\n`, "latin1"),
  ]);
  return Buffer.concat([head, body]);
}

/** Deterministic pseudo-random bytes of `size` (fast xorshift fill), for large attachments. */
export function filler(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed | 1;
  for (let i = 0; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeInt32LE(x | 0, i);
  }
  for (let i = size - (size % 4); i < size; i += 1) out[i] = i & 0xff;
  return out;
}

/** A message of exactly `size` bytes: headers, then binary filler (with NULs and 8-bit bytes). */
export function largeTestMessage(messageId: string, size: number): Buffer {
  const head = smallTestMessage(messageId);
  return Buffer.concat([head, filler(Math.max(0, size - head.length), 7)]).subarray(0, size);
}

/** Streams `bytes` in pieces of `pieceBytes`, like an archive read would. */
export async function* streamOf(bytes: Uint8Array, pieceBytes = 64 * 1024): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < bytes.length; offset += pieceBytes) {
    yield bytes.subarray(offset, Math.min(bytes.length, offset + pieceBytes));
  }
}

/** SHA-256 hex, for comparing large buffers in assertions without printing them. */
export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
