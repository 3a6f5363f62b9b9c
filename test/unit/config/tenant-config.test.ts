import { describe, expect, it } from "vitest";
import { parseTenantConfig } from "../../../shared/config/parse-tenant-config";
import { ConfigError } from "../../../shared/core/errors";

function validTenant(): Record<string, unknown> {
  return {
    tenant: "acme",
    mailboxes: [
      {
        id: "info@acme.it",
        pop3: { host: "pop.acme.it", user: "info@acme.it", passwordSecret: "acme/info/pop3" },
        gmail: { user: "info.acme@gmail.com", credentialsSecret: "acme/info/google" },
      },
    ],
  };
}

function parseError(input: unknown): ConfigError {
  try {
    parseTenantConfig(input);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("parseTenantConfig", () => {
  it("fills the documented defaults", () => {
    // Act
    const config = parseTenantConfig(validTenant());

    // Assess
    const mailbox = config.mailboxes[0]!;
    expect(mailbox.pop3.tls).toBe("implicit");
    expect(mailbox.pop3.maxSessions).toBe(1);
    expect(mailbox.gmail.labels).toEqual(["INBOX", "UNREAD"]);
    expect(mailbox.gmail.neverMarkSpam).toBe(false);
    expect(mailbox.deleteAfter).toBe("immediately");
    expect(mailbox.pollSeconds).toBe(60);
    expect(config.google.quotaUnitsPerMinute).toBe(6000);
    expect(config.google.apiBaseUrl).toBe("https://gmail.googleapis.com/");
  });

  it("names the field of every problem", () => {
    // Prepare
    const input = validTenant();
    const mailbox = (input.mailboxes as Record<string, unknown>[])[0]!;
    mailbox.pollSeconds = 5;
    mailbox.deleteAfter = "soon";
    (mailbox.pop3 as Record<string, unknown>).host = "";

    // Act
    const error = parseError(input);

    // Assess
    expect(error.field).toBe("mailboxes[0].pop3.host");
    expect(error.message).toContain("mailboxes[0].pollSeconds: pollSeconds must be at least 10");
    expect(error.message).toContain("mailboxes[0].deleteAfter");
  });

  it("refuses plaintext POP3 without the explicit opt-in", () => {
    // Prepare
    const input = validTenant();
    const pop3 = (input.mailboxes as Record<string, Record<string, unknown>>[])[0]!.pop3!;
    pop3.tls = "none";

    // Act
    const error = parseError(input);

    // Assess
    expect(error.field).toBe("mailboxes[0].pop3.allowPlaintext");
    expect(error.message).toContain("clear text");
  });

  it("refuses a POP3 user name that could inject a command", () => {
    // Prepare
    const input = validTenant();
    const pop3 = (input.mailboxes as Record<string, Record<string, unknown>>[])[0]!.pop3!;
    pop3.user = "info\r\nDELE 1";

    // Act
    const error = parseError(input);

    // Assess
    expect(error.field).toBe("mailboxes[0].pop3.user");
  });

  it("refuses duplicate mailbox ids", () => {
    // Prepare
    const input = validTenant();
    const mailboxes = input.mailboxes as unknown[];
    mailboxes.push(structuredClone(mailboxes[0]));

    // Act
    const error = parseError(input);

    // Assess
    expect(error.message).toContain("mailbox ids must be unique");
  });
});
