import { describe, expect, it } from "vitest";
import {
  parseScanListing,
  parseUniqueIdListing,
  splitListingLines,
} from "../../../shared/adapters/pop3/listing-lines";
import { ProtocolError } from "../../../shared/core/errors";

const bytes = (text: string) => Buffer.from(text, "latin1");

/** The error `act` throws (undefined when it returns). */
function thrownBy(act: () => unknown): unknown {
  try {
    act();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe("splitListingLines (mutation survivors)", () => {
  it("splits at CRLF, keeps a last line without CRLF, and bounds each line on its own", () => {
    // Act
    const lines = splitListingLines(bytes("1 10\r\n2 20\r\n3 30"), 4);
    // Assess
    expect(lines).toEqual(["1 10", "2 20", "3 30"]);
  });

  it("refuses a line one byte over the bound, naming the bound", () => {
    // Act
    const error = thrownBy(() => splitListingLines(bytes("1 10\r\n22 200\r\n"), 5));
    // Assess
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toMatchObject({ service: "pop3", message: "A listing line is longer than 5 bytes" });
  });
});

describe("parseScanListing (mutation survivors)", () => {
  it("reads number and size, ignoring what follows the size", () => {
    // Act
    const entries = parseScanListing(["1 10", "2 20 extra"]);
    // Assess
    expect(entries).toEqual([
      { number: 1, size: 10 },
      { number: 2, size: 20 },
    ]);
  });

  it("refuses a number or a size with anything before or after its digits", () => {
    // Prepare
    const cases: Array<[string, string]> = [
      ["a1 10", 'Malformed listing line: "a1 10"'],
      ["1a 10", 'Malformed listing line: "1a 10"'],
      ["0 10", 'Malformed listing line: "0 10"'],
      ["1", 'Malformed LIST line: "1"'],
      ["1 a10", 'Malformed LIST line: "1 a10"'],
      ["1 10a", 'Malformed LIST line: "1 10a"'],
    ];
    for (const [line, message] of cases) {
      // Act
      const error = thrownBy(() => parseScanListing([line]));
      // Assess
      expect(error).toBeInstanceOf(ProtocolError);
      expect(error).toMatchObject({ service: "pop3", message });
    }
  });

  it("refuses a listing that names one message twice", () => {
    // Act
    const error = thrownBy(() => parseScanListing(["1 10", "1 20"]));
    // Assess
    expect(error).toMatchObject({ service: "pop3", message: "LIST names message 1 twice" });
  });
});

describe("parseUniqueIdListing (mutation survivors)", () => {
  it("keeps a last line without CRLF and reads a 10-digit message number", () => {
    // Act
    const entries = parseUniqueIdListing(bytes("1 abc\r\n1234567890 def"), 100);
    // Assess
    expect(entries).toEqual([
      { number: 1, uidl: "abc" },
      { number: 1_234_567_890, uidl: "def" },
    ]);
  });

  it("reads the number of a line without a space even when a later line has one", () => {
    // Act
    const entries = parseUniqueIdListing(bytes("1\r\n2 b"), 100);
    // Assess
    expect(entries.map((e) => [e.number, e.invalid === undefined])).toEqual([
      [1, false],
      [2, true],
    ]);
  });

  it("reads the number of a last line without any space left in the listing", () => {
    // Act
    const entries = parseUniqueIdListing(bytes("1 a\r\n2"), 100);
    // Assess
    expect(entries.map((e) => [e.number, e.invalid === undefined])).toEqual([
      [1, true],
      [2, false],
    ]);
  });

  it("refuses a listing that names one message twice", () => {
    // Act
    const error = thrownBy(() => parseUniqueIdListing(bytes("1 a\r\n1 b"), 100));
    // Assess
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toMatchObject({ service: "pop3", message: "UIDL names message 1 twice" });
  });

  it("takes a line of exactly maxLineBytes as it is and makes a longer one a stand-in", () => {
    // Act
    const [exact] = parseUniqueIdListing(bytes("1 abcdefgh"), 10);
    const [longer] = parseUniqueIdListing(bytes("1 abcdefghi"), 10);
    // Assess
    expect(exact).toEqual({ number: 1, uidl: "abcdefgh" });
    expect(longer?.invalid).toBe(
      'UIDL of message 1 (9 bytes, "abcdefghi") breaks RFC 1939 §7 (1-70 characters 0x21-0x7E)',
    );
  });

  it("quotes at most 40 characters of an invalid id, marking a cut with '...'", () => {
    // Prepare
    const forty = `\x01${"a".repeat(39)}`;
    const fortyOne = `\x01${"a".repeat(40)}`;
    // Act
    const [whole] = parseUniqueIdListing(bytes(`1 ${forty}`), 100);
    const [cut] = parseUniqueIdListing(bytes(`1 ${fortyOne}`), 100);
    // Assess
    expect(whole?.invalid).toBe(
      `UIDL of message 1 (40 bytes, "?${"a".repeat(39)}") breaks RFC 1939 §7 (1-70 characters 0x21-0x7E)`,
    );
    expect(cut?.invalid).toBe(
      `UIDL of message 1 (41 bytes, "?${"a".repeat(39)}...") breaks RFC 1939 §7 (1-70 characters 0x21-0x7E)`,
    );
  });
});
