import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeSnapshot,
  encodeSnapshot,
  type SnapshotEntries,
  sameSnapshot,
  uidlHash,
} from "../../../shared/core/mailbox-snapshot";

describe("mailbox snapshot", () => {
  it("round-trips any entries at second precision", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.string({ minLength: 1, maxLength: 70 }),
            fc.constantFrom("pending", "copied", "parked"),
            fc.integer({ min: 0, max: 4e12 }),
          ),
          { maxLength: 50 },
        ),
        (rows) => {
          // Prepare
          const entries: SnapshotEntries = new Map(
            rows.map(([uidl, kind, at]) => [
              uidlHash(uidl),
              { kind: kind as "pending", at: Math.ceil(at / 1000) * 1000 },
            ]),
          );

          // Act
          const decoded = decodeSnapshot(encodeSnapshot(entries));

          // Assess
          expect(decoded).toEqual(entries);
          expect(sameSnapshot(decoded, entries)).toBe(true);
        },
      ),
      { numRuns: 50 },
    );
  });

  it("stays far below DynamoDB's 400 KB item limit for 5,000 UIDLs", () => {
    // Prepare
    const entries: SnapshotEntries = new Map();
    for (let i = 0; i < 5000; i++)
      entries.set(uidlHash(`uidl-${i}`), { kind: "copied", at: 1_768_000_000_000 });

    // Act
    const body = encodeSnapshot(entries);

    // Assess
    expect(body.length).toBe(5 + 5000 * 13);
    expect(body.length).toBeLessThan((400 * 1024) / 4);
  });

  it("treats a damaged or foreign body as empty, which costs one full rescan and nothing else", () => {
    // Prepare
    const damaged = encodeSnapshot(new Map([[uidlHash("a"), { kind: "pending", at: 0 }]])).slice(0, 10);

    // Act
    const decoded = [
      decodeSnapshot(damaged),
      decodeSnapshot(new Uint8Array([9, 0, 0, 0, 0])),
      decodeSnapshot(undefined),
    ];

    // Assess
    expect(decoded.map((d) => d.size)).toEqual([0, 0, 0]);
  });
});
