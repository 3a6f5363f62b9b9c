import { describe, expect, it } from "vitest";
import { closestName, editDistance } from "../../../shared/config/closest-name";

describe("closestName", () => {
  it("counts insertions, deletions, substitutions and swaps of neighbours as one edit", () => {
    // Act
    const distances = [
      editDistance("deleteAftr", "deleteAfter"),
      editDistance("deleteAfterr", "deleteAfter"),
      editDistance("deleteAfter", "deleteAftex"),
      editDistance("delteeAfter", "deleteAfter"),
      editDistance("", "abc"),
    ];

    // Assess
    expect(distances).toEqual([1, 1, 1, 1, 3]);
  });

  it("suggests the nearest known name, ignoring case, and nothing when none is near", () => {
    // Prepare
    const known = ["deleteAfter", "pollSeconds", "maxMessageBytes", "id", "pop3", "gmail"];

    // Act
    const typo = closestName("deleteAftr", known);
    const caseOnly = closestName("POLLSECONDS", known);
    const unrelated = closestName("colour", known);
    const short = closestName("ip", known);

    // Assess
    expect(typo).toBe("deleteAfter");
    expect(caseOnly).toBe("pollSeconds");
    expect(unrelated).toBeUndefined();
    expect(short).toBe("id");
  });
});
