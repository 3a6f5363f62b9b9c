import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  gmailCopyOf,
  splitGmailCopy,
  syntheticMessageIdFor,
  traceIdFor,
} from "../../../shared/core/gmail-copy";

const SHA = "ab".repeat(32);
const source = { tenant: "acm\u00e9", mailboxId: "info@acme.it", uidl: "u1 2", sha256: SHA };

/** The digest rule written out independently: each part as UTF-8 followed by a NUL, 32 hex digits. */
function expectedDigest(parts: string[]): string {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(Buffer.concat([Buffer.from(part, "utf8"), Buffer.from([0])]));
  return hash.digest("hex").slice(0, 32);
}

const latin1 = (text: string) => new Uint8Array(Buffer.from(text, "latin1"));
const text = (bytes: Uint8Array) => Buffer.from(bytes).toString("latin1");

describe("Gmail copy (mutation survivors)", () => {
  it("derives the trace id from tenant, mailbox, ledger id and content, and the Message-ID from the server UIDL", () => {
    // Act
    const traceId = traceIdFor(source);
    const messageId = syntheticMessageIdFor(source);
    // Assess
    expect(traceId).toBe(expectedDigest(["trace-v1", "acm\u00e9", "info@acme.it", "u1 2", SHA]));
    expect(messageId).toBe(
      `<${expectedDigest(["msgid-v1", "acm\u00e9", "info@acme.it", "u1", SHA])}@pop2gmail.invalid>`,
    );
  });

  it("prepends only the trace line to a message with its own Message-ID, in latin1", () => {
    // Act
    const copy = gmailCopyOf({ ...source, messageIdHeader: "<caf\u00e9@x>" });
    // Assess
    expect(copy.syntheticMessageId).toBe(false);
    expect(copy.messageIdHeader).toBe("<caf\u00e9@x>");
    expect(Buffer.from(copy.prefix)).toEqual(
      Buffer.from(`X-Pop2Gmail-Id: ${traceIdFor(source)}\r\n`, "latin1"),
    );
  });

  it("prepends the trace line and a synthesized Message-ID to a message without one", () => {
    // Act
    const copy = gmailCopyOf(source);
    // Assess
    expect(copy.syntheticMessageId).toBe(true);
    expect(copy.messageIdHeader).toBe(syntheticMessageIdFor(source));
    expect(text(copy.prefix)).toBe(
      `X-Pop2Gmail-Id: ${traceIdFor(source)}\r\nMessage-ID: ${syntheticMessageIdFor(source)}\r\n`,
    );
  });
});

describe("splitGmailCopy (mutation survivors)", () => {
  const trace = traceIdFor(source);
  const synthetic = syntheticMessageIdFor(source);

  it("takes off our trace line and our synthesized Message-ID, and nothing else", () => {
    // Prepare
    const both = latin1(`X-Pop2Gmail-Id: ${trace}\r\nMessage-ID: ${synthetic}\r\nSubject: s\r\n`);
    const traceOnly = latin1(`X-Pop2Gmail-Id: ${trace}\r\nMessage-ID: <own@x>\r\n`);
    const traceAtEnd = latin1(`X-Pop2Gmail-Id: ${trace}\r\nSubject: s`);
    // Act
    const [a, b, c] = [both, traceOnly, traceAtEnd].map((bytes) => splitGmailCopy(bytes));
    // Assess
    expect([a?.traceId, a?.syntheticMessageId, text(a?.original ?? new Uint8Array())]).toEqual([
      trace,
      synthetic,
      "Subject: s\r\n",
    ]);
    expect([b?.traceId, b?.syntheticMessageId, text(b?.original ?? new Uint8Array())]).toEqual([
      trace,
      undefined,
      "Message-ID: <own@x>\r\n",
    ]);
    expect([c?.traceId, text(c?.original ?? new Uint8Array())]).toEqual([trace, "Subject: s"]);
  });

  it("does not take a Message-ID line with anything before or after our synthesized id", () => {
    // Prepare
    const before = latin1(`X-Pop2Gmail-Id: ${trace}\r\nX-Message-ID: ${synthetic}\r\n`);
    const after = latin1(`X-Pop2Gmail-Id: ${trace}\r\nMessage-ID: ${synthetic}x\r\n`);
    // Act
    const results = [before, after].map((bytes) => splitGmailCopy(bytes).syntheticMessageId);
    // Assess
    expect(results).toEqual([undefined, undefined]);
  });

  it("gives bytes without our trace line back whole", () => {
    // Prepare
    const inputs = [
      latin1("Subject: s\r\n\r\nbody"),
      latin1(`X-Pop2Gmail-Id: ${trace}`),
      latin1(`X-Pop2Gmail-Id: ${trace}x\r\n`),
      latin1(`${"x".repeat(250)}\r\n`),
    ];
    for (const bytes of inputs) {
      // Act
      const split = splitGmailCopy(bytes);
      // Assess
      expect(split).toStrictEqual({ original: bytes });
    }
  });
});
