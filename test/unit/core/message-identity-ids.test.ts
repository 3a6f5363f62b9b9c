import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  baseOf,
  contentIdFor,
  contentOf,
  generationOf,
  invalidUidlStandIn,
  isInvalidUidlStandIn,
  isLedgerId,
  isValidUidl,
  ledgerIdFor,
  serverUidlOf,
} from "../../../shared/core/message-identity";

const uidl = fc.stringMatching(/^[\x21-\x7e]{1,70}$/);

describe('ledger ids (docs/pipeline.md "Message identity")', () => {
  it("keeps the first generation's id equal to the UIDL, so ledgers written before generations stay valid", () => {
    fc.assert(
      fc.property(uidl, (id) => {
        // Act
        const ledgerId = ledgerIdFor(id, 1);
        // Assess
        expect(ledgerId).toBe(id);
        expect(generationOf(ledgerId)).toBe(1);
        expect(serverUidlOf(ledgerId)).toBe(id);
        expect(isLedgerId(ledgerId)).toBe(true);
      }),
    );
  });

  it("maps every generation and content identity back to the server UIDL", () => {
    fc.assert(
      fc.property(
        uidl,
        fc.integer({ min: 2, max: 1_000_000 }),
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.stringMatching(/^[0-9a-f]{64}$/),
        (id, generation, size, sha256) => {
          // Prepare
          const content = contentIdFor(id, size, sha256);
          // Act
          const ids = [ledgerIdFor(id, generation), content, ledgerIdFor(content, generation)];
          // Assess
          for (const ledgerId of ids) {
            expect(serverUidlOf(ledgerId)).toBe(id);
            expect(isLedgerId(ledgerId)).toBe(true);
          }
          expect(generationOf(ids[0] as string)).toBe(generation);
          expect(baseOf(ids[0] as string)).toBe(id);
          expect(baseOf(ids[2] as string)).toBe(content);
          expect(contentOf(ids[2] as string)).toEqual({
            listedSize: size,
            sha256Prefix: sha256.slice(0, 16),
          });
          expect(contentOf(ids[0] as string)).toBeUndefined();
        },
      ),
    );
  });

  it("stands in for an invalid UIDL with a stable id no valid UIDL can equal", () => {
    // Prepare
    const raw = Buffer.from("v".repeat(5000));
    // Act
    const standIn = invalidUidlStandIn(raw);
    // Assess
    expect(standIn).toBe(invalidUidlStandIn(Buffer.from("v".repeat(5000))));
    expect(standIn.length).toBe(78);
    expect(isValidUidl(standIn)).toBe(false);
    expect(isInvalidUidlStandIn(standIn)).toBe(true);
    expect(isInvalidUidlStandIn(ledgerIdFor(standIn, 3))).toBe(true);
    expect(isLedgerId(standIn)).toBe(true);
    expect(isInvalidUidlStandIn("u".repeat(70))).toBe(false);
  });

  it.each([["a b"], ["has space"], ["x 1"], ["x 0"], ["x #12.abc"], [""], ["u".repeat(71)]])(
    "is no ledger id: %j",
    (id) => {
      expect(isLedgerId(id)).toBe(false);
    },
  );
});
