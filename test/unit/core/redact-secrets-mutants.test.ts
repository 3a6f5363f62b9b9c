import { describe, expect, it } from "vitest";
import { REDACTED, redactSecrets } from "../../../shared/core/redact-secrets";

describe("redactSecrets (mutation survivors)", () => {
  it("redacts every kind of credential it knows, keeping the text around it", () => {
    // Prepare
    const cases: Array<[string, string]> = [
      ["Authorization: Bearer abc.def-123", `Authorization: ${REDACTED}`],
      ['{"access_token": "tok123", "x": 1}', `{"access_token": "${REDACTED}", "x": 1}`],
      ["refresh_token=r1&scope=s", `refresh_token=${REDACTED}&scope=s`],
      ["CLIENT_SECRET : s3cr3t;", `CLIENT_SECRET : ${REDACTED};`],
      ["x-goog-api-key=k1)", `x-goog-api-key=${REDACTED})`],
      ["sent Bearer abcd then", `sent Bearer ${REDACTED} then`],
      ["basic QWxhZGRpbjpvcGVu", `basic ${REDACTED}`],
      ["token ya29.A0b-c_d/e+f= end", `token ${REDACTED} end`],
      ["rt 1//0gAbCdEfGh end", `rt ${REDACTED} end`],
      ["(1//0gAbCdEfGh)", `(${REDACTED})`],
      ["id GOCSPX-abc_DEF-1 end", `id ${REDACTED} end`],
      ["jwt eyJhbGci.eyJzdWIi.sig-_1 end", `jwt ${REDACTED} end`],
      ["key -----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- end", `key ${REDACTED} end`],
      ["cut -----BEGIN PRIVATE KEY-----\nMIIE", `cut ${REDACTED}`],
    ];
    for (const [text, redacted] of cases) {
      // Act
      const out = redactSecrets(text);
      // Assess
      expect({ text, out }).toEqual({ text, out: redacted });
    }
  });

  it("leaves alone what only looks like a credential", () => {
    // Prepare
    const texts = [
      "Bearer abc",
      "my_password_policy is strict",
      "a1//0gAbCdEfGh",
      "1//short",
      "xya29.token",
      "eyJa.b.c",
      "GOCSPXabc",
      "tokens: 3 left",
      "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
    ];
    for (const text of texts) {
      // Act
      const out = redactSecrets(text);
      // Assess
      expect(out).toBe(text);
    }
  });
});
