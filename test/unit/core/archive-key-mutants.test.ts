import { describe, expect, it } from "vitest";
import { archiveKeyFor } from "../../../shared/core/archive-key";

const key = (uidl: string) => ({ tenant: "acme", mailboxId: "info@acme.it", uidl });

describe("archiveKeyFor (mutation survivors)", () => {
  it("percent-encodes the characters encodeURIComponent leaves alone, in upper case", () => {
    // Act
    const archiveKey = archiveKeyFor(key("a!'()*b"));
    // Assess
    expect(archiveKey).toBe("acme/info%40acme.it/a%21%27%28%29%2Ab.eml");
  });

  it("never lets a UIDL of '.' or '..' be a whole path segment, but keeps dots elsewhere", () => {
    // Act
    const one = archiveKeyFor(key("."));
    const two = archiveKeyFor(key(".."));
    const three = archiveKeyFor(key("..."));
    // Assess
    expect(one).toBe("acme/info%40acme.it/%2E.eml");
    expect(two).toBe("acme/info%40acme.it/%2E%2E.eml");
    expect(three).toBe("acme/info%40acme.it/....eml");
  });
});
