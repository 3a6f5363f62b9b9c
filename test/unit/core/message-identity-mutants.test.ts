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
  matchesContent,
} from "../../../shared/core/message-identity";

const SHA = "0123456789abcdef".repeat(4);
const STAND_IN = invalidUidlStandIn(Buffer.from("bad id"));

describe("message identity (mutation survivors)", () => {
  it("accepts UIDLs of 1 to 70 characters 0x21-0x7E and nothing around them", () => {
    // Prepare
    const valid = ["a", "!", "~", "x".repeat(70)];
    const invalid = ["", "x".repeat(71), "a b", " a", "a ", "\x20", "\x7f", "ab\x7f", "\x7fab"];
    // Act
    const verdicts = [...valid, ...invalid].map((uidl) => isValidUidl(uidl));
    // Assess
    expect(verdicts).toEqual([...valid.map(() => true), ...invalid.map(() => false)]);
  });

  it("knows a ledger id: UIDL or stand-in, an optional content part, an optional generation of 2 or more", () => {
    // Prepare
    const ids = [
      "u",
      "x".repeat(70),
      STAND_IN,
      `u #12.${SHA.slice(0, 16)}`,
      "u 2",
      "u 9",
      "u 10",
      "u 123456789",
      `u #1.${SHA.slice(0, 16)} 3`,
    ];
    const notIds = [
      "",
      "x".repeat(71),
      " u",
      "u ",
      "u 1",
      "u 0",
      "u 01",
      "u 1234567890",
      "u x",
      `u #12.${SHA.slice(0, 15)}`,
      `u #12.${SHA.slice(0, 17)}`,
      `u #12.${"G".repeat(16)}`,
      `u #x.${SHA.slice(0, 16)}`,
      `u #1234567890123456.${SHA.slice(0, 16)}`,
      `!invalid-uidl!${"g".repeat(64)}${"x".repeat(10)}`,
      "a b c",
      "u 2 ",
      "\x7f",
    ];
    // Act
    const verdicts = [...ids, ...notIds].map((id) => [id, isLedgerId(id)]);
    // Assess
    expect(verdicts).toEqual([...ids.map((id) => [id, true]), ...notIds.map((id) => [id, false])]);
  });

  it("refuses a generation that is not a positive safe integer", () => {
    // Assess
    for (const generation of [0, -1, 1.5, Number.MAX_SAFE_INTEGER + 1, Number.NaN]) {
      expect(() => ledgerIdFor("u", generation)).toThrow(
        new RangeError(`generation must be a positive integer, got ${generation}`),
      );
    }
    expect([ledgerIdFor("u"), ledgerIdFor("u", 1), ledgerIdFor("u", 2)]).toEqual(["u", "u", "u 2"]);
  });

  it("reads a generation only from a suffix of 1-9 digits without a leading zero", () => {
    // Prepare
    const ids = [
      "u",
      "u 2",
      "u 123456789",
      "u 1234567890",
      "u 02",
      "u x2",
      "u 2x",
      "u x",
      `u #1.${SHA.slice(0, 16)}`,
    ];
    // Act
    const generations = ids.map((id) => [generationOf(id), baseOf(id)]);
    // Assess
    expect(generations).toEqual([
      [1, "u"],
      [2, "u"],
      [123_456_789, "u"],
      [1, "u 1234567890"],
      [1, "u 02"],
      [1, "u x2"],
      [1, "u 2x"],
      [1, "u x"],
      [1, `u #1.${SHA.slice(0, 16)}`],
    ]);
  });

  it("reads size and hash prefix from a content identity only", () => {
    // Prepare
    const content = contentIdFor("u", 42, SHA);
    // Act
    const parsed = [
      contentOf(content),
      contentOf(`${content} 3`),
      contentOf("u"),
      contentOf("u 2"),
      contentOf(`u x#42.${SHA.slice(0, 16)}`),
      contentOf(`u #42.${SHA.slice(0, 16)}x`),
      contentOf(`u #4x2.${SHA.slice(0, 16)}`),
      contentOf(`u #42.${SHA.slice(0, 15)}`),
      contentOf(`u #42.${"A".repeat(16)}`),
      contentOf(`u #1234567890123456.${SHA.slice(0, 16)}`),
      contentOf(`u #42.${SHA.slice(0, 16)} x`),
    ];
    // Assess
    expect(content).toBe(`u #42.${SHA.slice(0, 16)}`);
    expect(parsed).toEqual([
      { listedSize: 42, sha256Prefix: SHA.slice(0, 16) },
      { listedSize: 42, sha256Prefix: SHA.slice(0, 16) },
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });

  it("matches content by listed size and hash prefix, never for a plain UIDL", () => {
    // Prepare
    const id = contentIdFor("u", 42, SHA);
    const reversed = [...SHA].reverse().join("");
    // Act
    const verdicts = [
      matchesContent(id, 42, { size: 1, sha256: SHA }),
      matchesContent(id, 43, { size: 1, sha256: SHA }),
      matchesContent(id, 42, { size: 1, sha256: reversed }),
      matchesContent(id, 42, { size: 1, sha256: `${"f".repeat(48)}${SHA.slice(0, 16)}` }),
      matchesContent("u", 42, { size: 1, sha256: SHA }),
    ];
    // Assess
    expect(verdicts).toEqual([true, false, false, false, false]);
  });

  it("tells a stand-in by its prefix and its exact length, in any generation", () => {
    // Act
    const verdicts = [
      isInvalidUidlStandIn(STAND_IN),
      isInvalidUidlStandIn(`${STAND_IN} 2`),
      isInvalidUidlStandIn(`${STAND_IN}0`),
      isInvalidUidlStandIn(STAND_IN.slice(0, -1)),
      isInvalidUidlStandIn(`?${STAND_IN.slice(1)}`),
      isInvalidUidlStandIn("u"),
    ];
    // Assess
    expect(STAND_IN.startsWith("!invalid-uidl!")).toBe(true);
    expect(STAND_IN).toHaveLength(78);
    expect(verdicts).toEqual([true, true, false, false, false, false]);
  });
});
