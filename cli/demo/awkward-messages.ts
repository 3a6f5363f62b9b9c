import { seededBytes, seededInteger, seededRandom } from "./seeded-bytes";

/** A generated RFC 5322 message and what a test needs to know about it. */
export interface GeneratedMessage {
  /** Short, stable label for test names and failure messages. */
  readonly name: string;
  readonly bytes: Buffer;
  /** The Message-ID header value, if the message has one. */
  readonly messageId: string | undefined;
}

const CRLF = "\r\n";
const FIXED_DATE = "Fri, 27 Nov 2026 03:00:00 +0000";

/** Header block with CRLF line ends; `messageId` undefined leaves the header out. */
function headers(subject: string, messageId: string | undefined, extra: string[] = []): string {
  return [
    "From: Sender <sender@example.test>",
    "To: Mailbox <mailbox@example.test>",
    `Subject: ${subject}`,
    `Date: ${FIXED_DATE}`,
    ...(messageId === undefined ? [] : [`Message-ID: ${messageId}`]),
    "MIME-Version: 1.0",
    ...extra,
  ]
    .map((line) => line + CRLF)
    .join("");
}

const textHeaders = (charset: string, encoding = "7bit"): string[] => [
  `Content-Type: text/plain; charset=${charset}`,
  `Content-Transfer-Encoding: ${encoding}`,
];

/**
 * Lines that POP3 must dot-stuff (RFC 1939 §3): a line that is only ".", lines starting with
 * "." and "..", and a body whose first and last lines are dots.
 */
export function messageWithDotLines(): GeneratedMessage {
  const id = "<dots@pop2gmail.test>";
  const body = [".", "..", "...", ".leading dot", "..two leading dots", "middle . dot", ". ", "", "."];
  return {
    name: "dot-lines",
    messageId: id,
    bytes: Buffer.from(`${headers("Dots", id, textHeaders("us-ascii"))}${CRLF}${body.join(CRLF)}${CRLF}`),
  };
}

/** Latin-1 text sent as raw 8-bit bytes, and every byte from 0x80 to 0xFF. */
export function messageWith8BitBytes(): GeneratedMessage {
  const id = "<eight-bit@pop2gmail.test>";
  const head = Buffer.from(`${headers("8-bit", id, textHeaders("iso-8859-1", "8bit"))}${CRLF}`);
  const latin1 = Buffer.from(`Gr\u00fc\u00dfe aus K\u00f6ln, \u00e7a co\u00fbte 5 \u00a3${CRLF}`, "latin1");
  const highBytes = Buffer.alloc(128);
  for (let index = 0; index < 128; index += 1) highBytes[index] = 0x80 + index;
  return {
    name: "8-bit",
    messageId: id,
    bytes: Buffer.concat([head, latin1, highBytes, Buffer.from(CRLF), Buffer.from(`.\xff${CRLF}`, "latin1")]),
  };
}

/** NUL bytes in the body: at a line start, mid-line, and a run of them. */
export function messageWithNulBytes(): GeneratedMessage {
  const id = "<nul@pop2gmail.test>";
  const body = Buffer.concat([
    Buffer.from(`before${CRLF}`),
    Buffer.from([0x00]),
    Buffer.from(`line starting with NUL${CRLF}mid`),
    Buffer.from([0x00, 0x00, 0x00]),
    Buffer.from(`line${CRLF}.`),
    Buffer.from([0x00]),
    Buffer.from(CRLF),
  ]);
  return {
    name: "nul",
    messageId: id,
    bytes: Buffer.concat([
      Buffer.from(`${headers("NUL", id, textHeaders("us-ascii", "8bit"))}${CRLF}`),
      body,
    ]),
  };
}

/** The last line has no CRLF: the server must still end the reply with its own line break. */
export function messageWithoutFinalNewline(): GeneratedMessage {
  const id = "<no-final-newline@pop2gmail.test>";
  return {
    name: "no-final-newline",
    messageId: id,
    bytes: Buffer.from(`${headers("No final newline", id, textHeaders("us-ascii"))}${CRLF}first${CRLF}last`),
  };
}

/** Bare LF and bare CR line ends mixed into a CRLF message (servers may normalize them). */
export function messageWithBareLineEnds(): GeneratedMessage {
  const id = "<bare-line-ends@pop2gmail.test>";
  return {
    name: "bare-line-ends",
    messageId: id,
    bytes: Buffer.from(
      `${headers("Bare line ends", id, textHeaders("us-ascii"))}${CRLF}crlf${CRLF}bare lf\n.dot after bare lf\nbare cr\rend${CRLF}`,
    ),
  };
}

/** Lines far beyond RFC 5322's 998-octet limit, including one that starts with a dot. */
export function messageWithLongLines(lineLength = 100_000): GeneratedMessage {
  const id = "<long-lines@pop2gmail.test>";
  const line = "x".repeat(lineLength);
  return {
    name: "long-lines",
    messageId: id,
    bytes: Buffer.from(
      `${headers("Long lines", id, textHeaders("us-ascii"))}${CRLF}${line}${CRLF}.${line}${CRLF}${"y".repeat(999)}${CRLF}`,
    ),
  };
}

/** No Message-ID header: Gmail cannot merge re-imports of it, so the ledger must. */
export function messageWithoutMessageId(): GeneratedMessage {
  return {
    name: "no-message-id",
    messageId: undefined,
    bytes: Buffer.from(`${headers("No Message-ID", undefined, textHeaders("us-ascii"))}${CRLF}hello${CRLF}`),
  };
}

/**
 * multipart/mixed with a text part (with dot lines) and a base64 attachment of `attachmentBytes`
 * seeded pseudo-random bytes, in 76-character lines (RFC 2045 §6.8). The message is about
 * 4/3 of the attachment size.
 */
export function messageWithAttachment(attachmentBytes: number, seed = 1): GeneratedMessage {
  const id = `<attachment-${attachmentBytes}-${seed}@pop2gmail.test>`;
  const boundary = `=_pop2gmail_${seed}`;
  const head = [
    headers(`Attachment of ${attachmentBytes} bytes`, id, [
      `Content-Type: multipart/mixed; boundary="${boundary}"`,
    ]),
    CRLF,
    `--${boundary}${CRLF}`,
    textHeaders("us-ascii").join(CRLF),
    CRLF + CRLF,
    `See the attachment.${CRLF}.${CRLF}..${CRLF}`,
    `--${boundary}${CRLF}`,
    `Content-Type: application/octet-stream; name="data-${seed}.bin"${CRLF}`,
    `Content-Disposition: attachment; filename="data-${seed}.bin"${CRLF}`,
    `Content-Transfer-Encoding: base64${CRLF}${CRLF}`,
  ].join("");
  const tail = `--${boundary}--${CRLF}`;
  return {
    name: `attachment-${attachmentBytes}`,
    messageId: id,
    bytes: Buffer.concat([
      Buffer.from(head),
      base64Lines(seededBytes(attachmentBytes, seed)),
      Buffer.from(tail),
    ]),
  };
}

/** Base64 in CRLF-terminated lines of 76 characters, without building one huge string per line. */
function base64Lines(data: Buffer): Buffer {
  const encoded = Buffer.from(data.toString("base64"), "latin1");
  const lineLength = 76;
  const lines = Math.ceil(encoded.length / lineLength);
  const out = Buffer.allocUnsafe(encoded.length + lines * 2);
  let target = 0;
  for (let start = 0; start < encoded.length; start += lineLength) {
    target += encoded.copy(out, target, start, Math.min(start + lineLength, encoded.length));
    out[target++] = 0x0d;
    out[target++] = 0x0a;
  }
  return out;
}

/**
 * Every awkward case once: dots, 8-bit, NUL, no final newline, bare line ends, long lines, no
 * Message-ID, and an attachment of `attachmentBytes` (0 leaves it out).
 */
export function awkwardMessages(options: { attachmentBytes?: number } = {}): GeneratedMessage[] {
  const attachmentBytes = options.attachmentBytes ?? 0;
  return [
    messageWithDotLines(),
    messageWith8BitBytes(),
    messageWithNulBytes(),
    messageWithoutFinalNewline(),
    messageWithBareLineEnds(),
    messageWithLongLines(),
    messageWithoutMessageId(),
    ...(attachmentBytes > 0 ? [messageWithAttachment(attachmentBytes)] : []),
  ];
}

/**
 * `count` varied messages from `seed` (same seed, same bytes): plain and 8-bit text of 100 B to
 * ~64 KiB with random dot lines, some without Message-ID or final newline, some with a small
 * base64 attachment. Every Message-ID is unique per (seed, index).
 */
export function generateMailbox(count: number, seed: number): GeneratedMessage[] {
  const next = seededRandom(seed);
  const messages: GeneratedMessage[] = [];
  for (let index = 0; index < count; index += 1) {
    const kind = next() % 10;
    const id = kind === 0 ? undefined : `<mailbox-${seed}-${index}@pop2gmail.test>`;
    const name = `mailbox-${seed}-${index}`;
    if (kind === 1) {
      const attached = messageWithAttachment(seededInteger(next, 1, 48 * 1024), seed * 100_003 + index);
      messages.push({ name, messageId: attached.messageId, bytes: attached.bytes });
      continue;
    }
    const eightBit = kind === 2;
    const head = headers(
      `Message ${index} of mailbox ${seed}`,
      id,
      textHeaders(eightBit ? "iso-8859-1" : "us-ascii", eightBit ? "8bit" : "7bit"),
    );
    const lines: Buffer[] = [Buffer.from(head + CRLF)];
    const lineCount = seededInteger(next, 1, 800);
    for (let line = 0; line < lineCount; line += 1) lines.push(randomLine(next, eightBit), Buffer.from(CRLF));
    // One in ten loses its final line break, as some mailers do.
    if (kind === 3) lines.pop();
    messages.push({ name, messageId: id, bytes: Buffer.concat(lines) });
  }
  return messages;
}

function randomLine(next: () => number, eightBit: boolean): Buffer {
  const roll = next() % 20;
  if (roll === 0) return Buffer.from(".");
  if (roll === 1) return Buffer.from(`..${"z".repeat(next() % 40)}`);
  const length = seededInteger(next, 0, 78);
  const line = Buffer.allocUnsafe(length);
  for (let index = 0; index < length; index += 1) {
    // Printable ASCII, or any byte but CR and LF for 8-bit text.
    let byte = eightBit ? next() % 256 : 0x20 + (next() % 95);
    if (byte === 0x0d || byte === 0x0a) byte = 0x20;
    line[index] = byte;
  }
  if (roll === 2 && length > 0) line[0] = 0x2e;
  return line;
}
