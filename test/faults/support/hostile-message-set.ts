/** What the pipeline must do with a message: deliver it, or quarantine it with this code. */
export type Fate = { readonly kind: "delivered" } | { readonly kind: "quarantined"; readonly code: string };

/** One message of the set. */
export interface FaultMessage {
  readonly name: string;
  readonly bytes: Buffer;
  readonly fate: Fate;
  /** Gmail is told to refuse it with a 400. */
  readonly gmailRejects?: boolean;
}

const CRLF = "\r\n";
const DELIVERED: Fate = { kind: "delivered" };
/** The mailbox's maxMessageBytes in these tests: above every hostile message but one. */
export const MAX_MESSAGE_BYTES = 300_000;
/** The header reader's default read-ahead (DEFAULT_HEADER_LIMIT_BYTES). */
const HEADER_LIMIT = 64 * 1024;

function latin1(text: string): Buffer {
  return Buffer.from(text, "latin1");
}

function normal(index: number): FaultMessage {
  return {
    name: `normal-${index}`,
    fate: DELIVERED,
    bytes: latin1(
      [
        "From: Anna <anna@example.it>",
        "To: info@acme.it",
        `Subject: normal ${index}`,
        `Message-ID: <normal-${index}@example.it>`,
        "Date: Mon, 5 Jan 2026 10:00:00 +0100",
        "",
        `Body of normal message ${index}.`,
        ".",
        "",
      ].join(CRLF),
    ),
  };
}

/** The hostile messages of DESIGN.md invariant 5 and issue 7, in the order they are served. */
function hostile(): FaultMessage[] {
  const header8bit = Buffer.concat([
    latin1("From: "),
    Buffer.from("Jürgen Groß <jurgen@example.de>", "utf8"),
    latin1(`${CRLF}To: info@acme.it${CRLF}Subject: `),
    latin1("Caff\xe8 \xfcber \xff\x80"),
    latin1(`${CRLF}X-Raw: `),
    Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xfe]),
    latin1(`${CRLF}Message-ID: <8bit-h\xe9aders@example.it>${CRLF}${CRLF}body${CRLF}`),
  ]);
  const hugeHeaders = [
    "From: Bulk <bulk@example.it>",
    "To: info@acme.it",
    "Subject: a header block larger than the header reader's bound",
    ...Array.from(
      { length: Math.ceil((HEADER_LIMIT * 1.5) / 80) },
      (_, i) => `X-Filler-${i}: ${"f".repeat(60)}`,
    ),
    "Message-ID: <beyond-the-bound@example.it>",
    "",
    "body after 96 KB of headers",
    "",
  ].join(CRLF);
  const tooLargeBody = Buffer.alloc(MAX_MESSAGE_BYTES + 100_000, "a");
  for (let i = 76; i < tooLargeBody.length; i += 78) {
    tooLargeBody[i] = 0x0d;
    tooLargeBody[i + 1] = 0x0a;
  }
  return [
    { name: "empty", fate: DELIVERED, bytes: Buffer.alloc(0) },
    {
      name: "no-headers",
      fate: DELIVERED,
      bytes: latin1(`Just text, not a single header.${CRLF}Second line: no colon before it.${CRLF}`),
    },
    {
      name: "duplicate-from",
      fate: DELIVERED,
      bytes: latin1(
        `From: one@example.it${CRLF}From: two@example.org${CRLF}To: info@acme.it${CRLF}` +
          `Subject: two From fields${CRLF}Message-ID: <dup-from@example.it>${CRLF}${CRLF}hi${CRLF}`,
      ),
    },
    {
      name: "bare-lf-only",
      fate: DELIVERED,
      bytes: latin1(
        "From: lf@example.it\nTo: info@acme.it\nSubject: bare LF\nMessage-ID: <bare-lf@example.it>\n\n" +
          "line one\n.dot line after a bare LF\n\nlast line\n",
      ),
    },
    { name: "8-bit-headers", fate: DELIVERED, bytes: header8bit },
    {
      name: "200-kb-single-line",
      fate: DELIVERED,
      bytes: latin1(
        `From: long@example.it${CRLF}Subject: one line of 200 KB${CRLF}Message-ID: <long-line@example.it>${CRLF}${CRLF}` +
          `.${"L".repeat(200 * 1024)}${CRLF}`,
      ),
    },
    {
      name: "nul-bytes",
      fate: DELIVERED,
      bytes: Buffer.concat([
        latin1(`From: nul@example.it${CRLF}Subject: NUL`),
        Buffer.from([0x00]),
        latin1(`in header${CRLF}Message-ID: <nul@example.it>${CRLF}${CRLF}`),
        Buffer.from([0x00, 0x00, 0x0d, 0x0a, 0x2e, 0x00, 0x0d, 0x0a, 0x41, 0x00, 0x42, 0x0d, 0x0a]),
      ]),
    },
    { name: "header-block-above-bound", fate: DELIVERED, bytes: latin1(hugeHeaders) },
    {
      name: "above-max-message-bytes",
      fate: { kind: "quarantined", code: "MESSAGE_TOO_LARGE" },
      bytes: Buffer.concat([
        latin1(`From: big@example.it${CRLF}Message-ID: <too-big@example.it>${CRLF}${CRLF}`),
        tooLargeBody,
        latin1(CRLF),
      ]),
    },
    {
      name: "gmail-rejects",
      fate: { kind: "quarantined", code: "MESSAGE_REJECTED" },
      gmailRejects: true,
      bytes: latin1(
        `From: not an address at all${CRLF}Subject: Gmail says no${CRLF}` +
          `Message-ID: <rejected@example.it>${CRLF}${CRLF}rejected${CRLF}`,
      ),
    },
  ];
}

/** The hostile messages, each between two normal ones: normal, hostile, normal, hostile, ..., normal. */
export function hostileMessageSet(): FaultMessage[] {
  const set: FaultMessage[] = [normal(0)];
  hostile().forEach((message, index) => {
    set.push(message, normal(index + 1));
  });
  return set;
}

/**
 * What a POP3 server serves for a stored message: the same bytes, plus a CRLF if the last line
 * has none (RFC 1939 §3 needs one before the terminator; Dovecot and the scripted server add it).
 */
export function servedBytes(bytes: Buffer): Buffer {
  if (bytes.length === 0 || bytes.subarray(-2).toString("latin1") === CRLF) return bytes;
  return Buffer.concat([bytes, latin1(CRLF)]);
}
