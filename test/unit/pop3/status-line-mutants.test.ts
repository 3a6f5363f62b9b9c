import { describe, expect, it } from "vitest";
import { parseStatusLine, printable } from "../../../shared/adapters/pop3/status-line";
import { ProtocolError } from "../../../shared/core/errors";

const line = (text: string) => Buffer.from(text, "latin1");

describe("parseStatusLine (mutation survivors)", () => {
  it("reads a bare -ERR as an error without code or text", () => {
    // Act
    const reply = parseStatusLine(line("-ERR"));
    // Assess
    expect(reply).toEqual({ kind: "err", code: undefined, text: "" });
  });

  it("takes an extended code only right after -ERR, upper-cased, with the text after it", () => {
    // Act
    const spaced = parseStatusLine(line("-ERR [in-use] mailbox locked"));
    const glued = parseStatusLine(line("-ERR [AUTH]denied"));
    const later = parseStatusLine(line("-ERR see [AUTH] later"));
    // Assess
    expect(spaced).toEqual({ kind: "err", code: "IN-USE", text: "mailbox locked" });
    expect(glued).toEqual({ kind: "err", code: "AUTH", text: "denied" });
    expect(later).toEqual({ kind: "err", code: undefined, text: "see [AUTH] later" });
  });

  it("reads a bare + and a '+ challenge' as SASL continuations", () => {
    // Act
    const bare = parseStatusLine(line("+"));
    const challenge = parseStatusLine(line("+ PDEyMzQ+"));
    // Assess
    expect(bare).toEqual({ kind: "continue", text: "" });
    expect(challenge).toEqual({ kind: "continue", text: "PDEyMzQ+" });
  });

  it("refuses a line that is none of +OK, -ERR and +, quoting it printably", () => {
    // Prepare
    const replies = ["+OKAY", "-ERRATIC", "x+ ", "HELLO\x01"];
    for (const reply of replies) {
      // Act
      const act = () => parseStatusLine(line(reply));
      // Assess
      expect(act).toThrow(ProtocolError);
    }
    try {
      parseStatusLine(line("HELLO\x01"));
    } catch (error) {
      expect(error).toMatchObject({
        service: "pop3",
        message: 'The server sent a reply that is neither +OK nor -ERR: "HELLO?"',
      });
    }
  });
});

describe("printable (mutation survivors)", () => {
  it("replaces every non-printable byte by one question mark", () => {
    // Act
    const cleaned = printable("a\x00b\x7fc\xe9\r\n");
    // Assess
    expect(cleaned).toBe("a?b?c???");
  });

  it("keeps 200 characters whole and cuts longer text to 200 plus an ellipsis", () => {
    // Prepare
    const exact = "x".repeat(200);
    const longer = `${"y".repeat(200)}z`;
    // Act
    const kept = printable(exact);
    const cut = printable(longer);
    // Assess
    expect(kept).toBe(exact);
    expect(cut).toBe(`${"y".repeat(200)}...`);
  });
});
