import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  decodeSnapshot,
  encodeSnapshot,
  type SnapshotEntries,
  sameSnapshot,
  uidlHash,
} from "../../../shared/core/mailbox-snapshot";

const HASH = "0011223344556677";

/** A format-2 body with one entry whose kind code and generation the test chooses. */
function body(format: number, kindCode: number, generation: number, entryBytes = 15): Uint8Array {
  const out = Buffer.alloc(5 + entryBytes);
  out.writeUInt8(format, 0);
  out.writeUInt32BE(1, 1);
  out.write(HASH, 5, 8, "hex");
  out.writeUInt8(kindCode, 13);
  out.writeUInt32BE(7, 14);
  if (entryBytes === 15) out.writeUInt16BE(generation, 18);
  return new Uint8Array(out);
}

describe("mailbox snapshot (mutation survivors)", () => {
  it("hashes a UIDL's latin1 bytes", () => {
    // Act
    const hash = uidlHash("caf\xe9");
    // Assess
    expect(hash).toBe(
      createHash("sha256")
        .update(Buffer.from([0x63, 0x61, 0x66, 0xe9]))
        .digest("hex")
        .slice(0, 16),
    );
  });

  it("codes the kinds pending, copied and parked as 0, 1 and 2", () => {
    // Prepare
    const entries: SnapshotEntries = new Map([
      ["0000000000000001", { kind: "pending", at: 1_000 }],
      ["0000000000000002", { kind: "copied", at: 1_000 }],
      ["0000000000000003", { kind: "parked", at: 1_000 }],
    ]);
    // Act
    const encoded = Buffer.from(encodeSnapshot(entries));
    // Assess
    expect([encoded[13], encoded[28], encoded[43]]).toEqual([0, 1, 2]);
    expect(decodeSnapshot(body(2, 2, 1))).toEqual(new Map([[HASH, { kind: "parked", at: 7_000 }]]));
  });

  it("reads a body shorter than its header, an unknown format, a bad kind or generation 0 as empty", () => {
    // Prepare
    const bodies = [
      new Uint8Array([2, 0, 0, 0]),
      body(3, 0, 1, 13),
      body(3, 0, 1),
      body(2, 3, 1),
      body(2, 0, 0),
    ];
    // Act
    const decoded = bodies.map((b) => decodeSnapshot(b).size);
    // Assess
    expect(decoded).toEqual([0, 0, 0, 0, 0]);
    expect(decodeSnapshot(body(1, 1, 1, 13))).toEqual(new Map([[HASH, { kind: "copied", at: 7_000 }]]));
  });

  it("tells snapshots apart by identity and by kind", () => {
    // Prepare
    const a: SnapshotEntries = new Map([[HASH, { kind: "pending", at: 1_000 }]]);
    const otherHash: SnapshotEntries = new Map([["ffffffffffffffff", { kind: "pending", at: 1_000 }]]);
    const otherKind: SnapshotEntries = new Map([[HASH, { kind: "copied", at: 1_000 }]]);
    const same: SnapshotEntries = new Map([[HASH, { kind: "pending", at: 1_000 }]]);
    // Act
    const verdicts = [sameSnapshot(a, otherHash), sameSnapshot(a, otherKind), sameSnapshot(a, same)];
    // Assess
    expect(verdicts).toEqual([false, false, true]);
  });
});
