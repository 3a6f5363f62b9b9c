import fc from "fast-check";
import type { HostileScript, ReplyBody, ReplyStep, ReplyTail } from "./hostile-pop3-server";

/** Bounds the client is run with in the hostile-server properties (small, so bounds trip fast). */
export const CLIENT_BOUNDS = {
  commandTimeoutMs: 300,
  connectionDeadlineMs: 2_000,
  maxLineBytes: 512,
  maxListingBytes: 16 * 1024,
  retrMaxBytes: 64 * 1024,
  topMaxBytes: 8 * 1024,
} as const;

const bytes = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "latin1"));
const latin1 = (data: Uint8Array): string => Buffer.from(data).toString("latin1");

/** Short server text: printable, control characters, 8-bit, CR or LF in odd places. */
const serverText = fc
  .array(
    fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.constantFrom("\r", "\n", "\0", "\t", " ", "\u00ff", "[", "]", "."),
    ),
    { maxLength: 6 },
  )
  .map((parts) => parts.join(""));

/** RFC 2449 §8 codes, real and invented, well-formed and not. */
const responseCode = fc.oneof(
  fc.constantFrom("IN-USE", "LOGIN-DELAY", "SYS/TEMP", "SYS/PERM", "AUTH", "in-use", "UTF8"),
  fc.string({ minLength: 0, maxLength: 70 }),
);

/** A -ERR line, sometimes with an extended code, sometimes malformed ("-ERRX", no CRLF). */
const errLine = fc
  .record({
    head: fc.constantFrom("-ERR ", "-ERR", "-ERR\t", "-ERRX ", "-err "),
    code: fc.option(responseCode, { nil: undefined }),
    text: serverText,
    end: fc.constantFrom("\r\n", "\n", "\r\n", ""),
  })
  .map(({ head, code, text, end }) => bytes(`${head}${code === undefined ? "" : `[${code}] `}${text}${end}`));

const okLine = fc
  .record({ head: fc.constantFrom("+OK", "+OK ", "+ok ", "+", "+ ", "OK "), text: serverText })
  .map(({ head, text }) => bytes(`${head}${text}\r\n`));

/** Scan or unique-id listing lines that look right and are wrong. */
const listingLine = fc.oneof(
  fc
    .tuple(fc.integer({ min: -5, max: 5 }), fc.integer({ min: -10, max: 1_000 }))
    .map(([n, s]) => `${n} ${s}`),
  fc.constantFrom(
    "1 99999999999999999999999",
    "1 -1",
    "0 10",
    "1 1e3",
    "1",
    " 1 2",
    "1  2",
    "01 5",
    "4294967296 1",
    "1 uid-1",
    "1 uid with spaces",
    `1 ${"u".repeat(71)}`,
    "1 \u0001ctl",
    "1 \u00e9",
    "2 uid-1",
    "1 ",
    ".",
    "..",
    ". ",
  ),
  fc.string({ maxLength: 30 }),
);

/** A multi-line reply that lies: duplicates, bad numbers, sometimes no terminator at all. */
const garbageListing = fc
  .record({
    status: fc.constantFrom("+OK\r\n", "+OK 3 messages\r\n", "+OK\n"),
    lines: fc.array(listingLine, { maxLength: 8 }),
    duplicate: fc.boolean(),
    terminator: fc.constantFrom(".\r\n", ".\r\n", ".\n", "", ". \r\n"),
  })
  .map(({ status, lines, duplicate, terminator }) => {
    const all = duplicate && lines.length > 0 ? [...lines, lines[0] as string] : lines;
    return bytes(`${status}${all.map((l) => `${l}\r\n`).join("")}${terminator}`);
  });

/** A line longer than the client's bound, with or without its CRLF. */
const overlongLine = fc
  .record({
    head: fc.constantFrom("+OK ", "-ERR ", "", "1 "),
    extra: fc.integer({ min: 1, max: 4096 }),
    crlf: fc.boolean(),
  })
  .map(({ head, extra, crlf }) =>
    bytes(`${head}${"x".repeat(CLIENT_BOUNDS.maxLineBytes + extra)}${crlf ? "\r\n" : ""}`),
  );

/** A dot-stuffed body after +OK; `terminated` false leaves the final "." CRLF out. */
const multilineBody = fc
  .record({
    pieces: fc.array(fc.constantFrom(".", "..", "\r\n", "\r", "\n", "x", "\0", "\u00ff", ".\r\n"), {
      maxLength: 40,
    }),
    terminated: fc.boolean(),
  })
  .map(({ pieces, terminated }) => bytes(`+OK\r\n${pieces.join("")}${terminated ? "\r\n.\r\n" : ""}`));

const rawBytes = fc.uint8Array({ maxLength: 200 });

/** Any reply the server might send in place of the right one. */
export const hostileReplyBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 2, arbitrary: rawBytes },
  { weight: 2, arbitrary: okLine },
  { weight: 3, arbitrary: errLine },
  { weight: 3, arbitrary: garbageListing },
  { weight: 2, arbitrary: multilineBody },
  { weight: 1, arbitrary: overlongLine },
);

/** An endless line with no "." anywhere, so it can never form the terminator. */
const endlessLine = fc
  .oneof(
    fc.uint8Array({ minLength: 1, maxLength: 300 }),
    fc.integer({ min: 1, max: 1e6 }).map((n) => bytes(`${n} ${n * 7}\r\n`)),
    fc.integer({ min: 1, max: 1e6 }).map((n) => bytes(`${n} uid-${n}\r\n`)),
  )
  .map((line) => new Uint8Array(Buffer.from(line).map((b) => (b === 0x2e ? 0x2f : b))));

const body: fc.Arbitrary<ReplyBody> = fc.oneof(
  { weight: 12, arbitrary: fc.constant<ReplyBody>({ kind: "proper" }) },
  { weight: 8, arbitrary: hostileReplyBytes.map((b): ReplyBody => ({ kind: "raw", bytes: b })) },
  {
    weight: 2,
    arbitrary: fc
      .record({ prefix: fc.constantFrom("+OK\r\n", "+OK ", "", "+OK\r\nx"), line: endlessLine })
      .map(({ prefix, line }): ReplyBody => ({ kind: "endless", prefix: bytes(prefix), line })),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom("+OK\r\n", "+OK ", "")
      .map((prefix): ReplyBody => ({ kind: "trickle", prefix: bytes(prefix) })),
  },
);

const tail: fc.Arbitrary<ReplyTail> = fc.oneof(
  { weight: 10, arbitrary: fc.constant<ReplyTail>({ kind: "none" }) },
  { weight: 1, arbitrary: fc.constant<ReplyTail>({ kind: "stall" }) },
  { weight: 2, arbitrary: fc.constant<ReplyTail>({ kind: "close" }) },
  { weight: 2, arbitrary: fc.constant<ReplyTail>({ kind: "reset" }) },
  {
    weight: 3,
    arbitrary: fc
      .oneof(hostileReplyBytes, fc.constant(bytes("-ERR [IN-USE] go away\r\n")))
      .map((b): ReplyTail => ({ kind: "unsolicited", bytes: b })),
  },
);

const step: fc.Arbitrary<ReplyStep> = fc
  .record({
    body,
    splits: fc.array(fc.nat({ max: 400 }), { maxLength: 4 }),
    cutAt: fc.option(fc.nat({ max: 300 }), { nil: undefined }),
    tail,
  })
  .map(({ cutAt, ...rest }) => (cutAt === undefined ? rest : { ...rest, cutAt }));

/** Greetings are mostly proper, so most runs get past connect and into the session. */
const greeting: fc.Arbitrary<ReplyStep> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constant<ReplyStep>({ body: { kind: "proper" }, splits: [], tail: { kind: "none" } }),
  },
  { weight: 1, arbitrary: step },
);

export const hostileScript: fc.Arbitrary<HostileScript> = fc.record({
  greeting,
  replies: fc.array(step, { maxLength: 10 }),
  afterwards: fc.constantFrom("proper", "close", "stall"),
});

/** What the client is asked to do. A step of two operations issues both at once. */
export type ClientOp =
  | "capa"
  | "login-auto"
  | "login-user"
  | "login-plain"
  | "login-apop"
  | "stat"
  | "list"
  | "uidl"
  | "top"
  | "retr"
  | "retr-abandon"
  | "dele"
  | "rset"
  | "noop"
  | "quit";

const op = fc.constantFrom<ClientOp>(
  "capa",
  "login-auto",
  "login-user",
  "login-plain",
  "login-apop",
  "stat",
  "list",
  "uidl",
  "top",
  "retr",
  "retr",
  "retr-abandon",
  "dele",
  "rset",
  "noop",
  "quit",
);

export const clientPlan: fc.Arbitrary<ClientOp[][]> = fc.array(fc.array(op, { minLength: 1, maxLength: 2 }), {
  minLength: 1,
  maxLength: 8,
});

/** For failure messages: the script with its bytes shown as latin1 text. */
export function describeScript(script: HostileScript): string {
  return JSON.stringify(script, (_key, value: unknown) =>
    value instanceof Uint8Array ? latin1(value).slice(0, 120) : value,
  );
}
