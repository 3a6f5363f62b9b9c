import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parseLinkLifetime, signInvite, verifyInvite } from "../../../shared/core/invite-link";

/** The onboarding link's signature, expiry and parsing (docs/onboarding.md, "The link"). */
describe("invite links", () => {
  const key = randomBytes(32);
  const now = Date.UTC(2026, 11, 1, 10, 0, 0);

  it("verifies a link it signed until the moment it expires, then calls it expired", () => {
    // Prepare
    const { token, claims } = signInvite(key, {
      tenant: "acme",
      mailboxId: "info@acme.it",
      expiresAt: now + 1000,
    });
    // Act + Assess
    expect(verifyInvite(key, "acme", token, now + 999)).toEqual({ ok: true, claims });
    expect(verifyInvite(key, "acme", token, now + 1000)).toEqual({ ok: false, problem: "expired" });
  });

  it("seals the mailbox: the link names the tenant, not the address", () => {
    // Act
    const { token } = signInvite(key, { tenant: "acme", mailboxId: "info@acme.it", expiresAt: now });
    // Assess
    const [tenant, sealed = ""] = token.split(".");
    expect(tenant).toBe("acme");
    expect(Buffer.from(sealed, "base64url").toString("latin1")).not.toContain("info@acme.it");
  });

  it("gives every link its own id", () => {
    // Act
    const ids = new Set(
      Array.from(
        { length: 50 },
        () => signInvite(key, { tenant: "acme", mailboxId: "m", expiresAt: now }).claims.linkId,
      ),
    );
    // Assess
    expect(ids.size).toBe(50);
  });

  it("refuses any changed character, another key, another tenant, and garbage", () => {
    // Prepare
    const { token } = signInvite(key, { tenant: "acme", mailboxId: "info@acme.it", expiresAt: now + 60_000 });
    const changed = [...token].map(
      (c, i) => `${token.slice(0, i)}${c === "A" ? "B" : "A"}${token.slice(i + 1)}`,
    );
    // Act
    const results = changed.map((t) => verifyInvite(key, "acme", t, now));
    // Assess
    expect(results.every((r) => !r.ok)).toBe(true);
    expect(verifyInvite(randomBytes(32), "acme", token, now)).toEqual({ ok: false, problem: "tampered" });
    expect(verifyInvite(key, "globex", token, now)).toEqual({ ok: false, problem: "foreign-tenant" });
    for (const garbage of ["", ".", "acme..sig", "ACME.x.y", "acme.sealed", "a.b.c.d", "x".repeat(2000)]) {
      expect(verifyInvite(key, "acme", garbage, now)).toEqual({ ok: false, problem: "malformed" });
    }
  });

  it("reads lifetimes in days, hours and minutes, up to 90 days", () => {
    // Act + Assess
    expect(parseLinkLifetime("7d")).toBe(7 * 86_400_000);
    expect(parseLinkLifetime("12h")).toBe(12 * 3_600_000);
    expect(parseLinkLifetime("30m")).toBe(30 * 60_000);
    expect(parseLinkLifetime("90d")).toBe(90 * 86_400_000);
    for (const bad of ["91d", "0d", "7", "7w", "-1d", "d", ""])
      expect(parseLinkLifetime(bad), bad).toBeUndefined();
  });
});
