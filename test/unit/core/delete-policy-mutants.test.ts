import { describe, expect, it } from "vitest";
import { deleteDueAt, isDeleteDue, isSafelyCopied } from "../../../shared/core/delete-policy";
import type { LedgerEntry } from "../../../shared/core/model";

const DAY = 86_400_000;

const copied: LedgerEntry = {
  tenant: "acme",
  mailboxId: "info@acme.it",
  uidl: "u1",
  state: "retained",
  listedSize: 10,
  listedAt: 1,
  archiveKey: "acme/info%40acme.it/u1.eml",
  sha256: "ab".repeat(32),
  archivedSize: 10,
  gmailId: "g1",
  importedAt: 1_000,
  attempts: 0,
};

describe("deleteDueAt (mutation survivors)", () => {
  it("counts N days of 86,400,000 ms from the import, and never for 'never'", () => {
    // Act
    const twoDays = deleteDueAt("2d", 1_000);
    const never = deleteDueAt("never", 1_000);
    // Assess
    expect(twoDays).toBe(1_000 + 2 * DAY);
    expect(never).toBeUndefined();
  });
});

describe("isDeleteDue (mutation survivors)", () => {
  it("is due at the exact due time, not a millisecond before", () => {
    // Act
    const atDue = isDeleteDue(copied, "2d", 1_000 + 2 * DAY);
    const before = isDeleteDue(copied, "2d", 1_000 + 2 * DAY - 1);
    // Assess
    expect(atDue).toBe(true);
    expect(before).toBe(false);
  });

  it("is never due for an entry missing any proof of the copy", () => {
    // Prepare
    const fields = ["archiveKey", "sha256", "archivedSize", "gmailId", "importedAt"] as const;
    for (const field of fields) {
      const { [field]: _dropped, ...rest } = copied;
      const partial: LedgerEntry = rest;
      // Act
      const safe = isSafelyCopied(partial);
      const due = isDeleteDue(partial, "immediately", Number.MAX_SAFE_INTEGER);
      // Assess
      expect({ field, safe, due }).toEqual({ field, safe: false, due: false });
    }
    expect(isSafelyCopied(copied)).toBe(true);
  });
});
