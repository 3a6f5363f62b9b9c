import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseUniqueIdListing } from "../../../shared/adapters/pop3/listing-lines";
import { ProtocolError } from "../../../shared/core/errors";
import { invalidUidlStandIn, isValidUidl } from "../../../shared/core/message-identity";

/** Raw unique-id bytes a hostile server might send: valid ids, twins, too long, spaces, 8-bit, control. */
const rawId = fc.oneof(
  fc.stringMatching(/^[\x21-\x7e]{1,70}$/).map((s) => Buffer.from(s, "latin1")),
  fc.constantFrom("twin", "twin", "same-id").map((s) => Buffer.from(s)),
  fc.integer({ min: 71, max: 6000 }).map((n) => Buffer.alloc(n, 0x75)),
  fc.uint8Array({ minLength: 0, maxLength: 120 }).map((bytes) =>
    // No CR LF pair inside an id: the line ends there.
    Buffer.from(bytes).map((b) => (b === 0x0d || b === 0x0a ? 0x20 : b)),
  ),
);

describe("parseUniqueIdListing (RFC 1939 §7, issue 10 item 9)", () => {
  it("never fails a listing over a bad id: every line comes back, bad ones as stand-ins with a bounded reason", () => {
    fc.assert(
      fc.property(fc.array(rawId, { maxLength: 40 }), (ids) => {
        // Prepare
        const body = Buffer.concat(
          ids.map((id, i) => Buffer.concat([Buffer.from(`${i + 1} `), id, Buffer.from("\r\n")])),
        );
        // Act
        const entries = parseUniqueIdListing(body, 1024);
        // Assess
        expect(entries.map((e) => e.number)).toEqual(ids.map((_, i) => i + 1));
        for (const [i, entry] of entries.entries()) {
          const raw = ids[i] as Buffer;
          const text = raw.toString("latin1");
          if (isValidUidl(text) && raw.length + 8 <= 1024) {
            expect(entry).toEqual({ number: i + 1, uidl: text });
          } else {
            expect(entry.uidl).toBe(invalidUidlStandIn(raw));
            expect(entry.invalid?.length ?? Number.POSITIVE_INFINITY).toBeLessThanOrEqual(200);
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it.each([
    ["a line without a message number", "uid-only\r\n"],
    ["a message number listed twice", "1 a\r\n1 b\r\n"],
    ["a message number of 11 digits", "12345678901 a\r\n"],
  ])("still refuses %s: the listing cannot be mapped to messages", (_label, body) => {
    // Act
    const parse = () => parseUniqueIdListing(Buffer.from(body), 1024);
    // Assess
    expect(parse).toThrow(ProtocolError);
  });
});
