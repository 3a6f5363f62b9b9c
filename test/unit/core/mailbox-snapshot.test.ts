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
            fc.integer({ min: 1, max: 0xffff }),
          ),
          { maxLength: 50 },
        ),
        (rows) => {
          // Prepare
          const entries: SnapshotEntries = new Map(
            rows.map(([uidl, kind, at, generation]) => [
              uidlHash(uidl),
              {
                kind: kind as "pending",
                at: Math.ceil(at / 1000) * 1000,
                ...(generation === 1 ? {} : { generation }),
              },
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
    expect(body.length).toBe(5 + 5000 * 15);
    expect(body.length).toBeLessThan((400 * 1024) / 4);
  });

  it("remembers the ledger generation of each identity, so an idle poll after a UIDL reuse stays one read", () => {
    // Prepare
    const entries: SnapshotEntries = new Map([
      [uidlHash("reused"), { kind: "copied", at: 1_768_000_000_000, generation: 3 }],
      [uidlHash("fresh"), { kind: "pending", at: 1_768_000_000_000 }],
    ]);
    const otherGeneration: SnapshotEntries = new Map([
      [uidlHash("reused"), { kind: "copied", at: 1_768_000_000_000, generation: 2 }],
      [uidlHash("fresh"), { kind: "pending", at: 1_768_000_000_000 }],
    ]);

    // Act
    const decoded = decodeSnapshot(encodeSnapshot(entries));

    // Assess
    expect(decoded.get(uidlHash("reused"))?.generation).toBe(3);
    expect(decoded.get(uidlHash("fresh"))?.generation ?? 1).toBe(1);
    expect(sameSnapshot(decoded, otherGeneration)).toBe(false);
  });

  it("still reads a format-1 snapshot (no generations) as generation 1 everywhere", () => {
    // Prepare
    const v1 = Buffer.alloc(5 + 13);
    v1.writeUInt8(1, 0);
    v1.writeUInt32BE(1, 1);
    v1.write(uidlHash("old"), 5, 8, "hex");
    v1.writeUInt8(1, 13);
    v1.writeUInt32BE(1_768_000_000, 14);

    // Act
    const decoded = decodeSnapshot(new Uint8Array(v1));

    // Assess
    expect([...decoded]).toEqual([[uidlHash("old"), { kind: "copied", at: 1_768_000_000_000 }]]);
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
