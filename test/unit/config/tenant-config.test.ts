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

describe("unknown config keys (docs/pipeline.md: a config key we do not know is an error)", () => {
  type Mutation = (input: Record<string, unknown>) => void;
  const mailboxOf = (input: Record<string, unknown>) => (input.mailboxes as Record<string, unknown>[])[0]!;
  const cases: [string, Mutation, string, string][] = [
    [
      "mailbox",
      (i) => {
        mailboxOf(i).deleteAftr = "never";
      },
      "mailboxes[0].deleteAftr",
      "deleteAfter",
    ],
    [
      "pop3",
      (i) => {
        (mailboxOf(i).pop3 as Record<string, unknown>).allowPlaintex = true;
      },
      "mailboxes[0].pop3.allowPlaintex",
      "allowPlaintext",
    ],
    [
      "gmail",
      (i) => {
        (mailboxOf(i).gmail as Record<string, unknown>).lables = ["INBOX"];
      },
      "mailboxes[0].gmail.lables",
      "labels",
    ],
    [
      "tenant",
      (i) => {
        i.alarmEmial = "ops@acme.it";
      },
      "alarmEmial",
      "alarmEmail",
    ],
    [
      "google",
      (i) => {
        i.google = { tokenURL: "https://x.test/" };
      },
      "google.tokenURL",
      "tokenUrl",
    ],
    [
      "archive",
      (i) => {
        i.archive = { expireAfterDay: 30 };
      },
      "archive.expireAfterDay",
      "expireAfterDays",
    ],
  ];

  it.each(cases)(
    "rejects an unknown key in the %s schema, naming it and the closest valid one",
    (_schema, mutate, field, closest) => {
      // Prepare
      const input = validTenant();
      mutate(input);

      // Act
      const error = parseError(input);

      // Assess
      expect(error.field).toBe(field);
      expect(error.message).toContain(`${field}: unknown key`);
      expect(error.message).toContain(`did you mean "${closest}"?`);
    },
  );

  it("names an unknown key without a guess when nothing valid is close", () => {
    // Prepare
    const input = validTenant();
    mailboxOf(input).colour = "blue";

    // Act
    const error = parseError(input);

    // Assess
    expect(error.message).toContain('mailboxes[0].colour: unknown key "colour"');
    expect(error.message).not.toContain("did you mean");
  });
});

describe("the dashboard option", () => {
  it("is off unless set, and leaves a config without it as it was", () => {
    // Act
    const without = parseTenantConfig(validTenant());
    const withDashboard = parseTenantConfig({ ...validTenant(), dashboard: true });

    // Assess
    expect(without.dashboard).toBeUndefined();
    expect(JSON.stringify(without)).not.toContain("dashboard");
    expect(withDashboard.dashboard).toBe(true);
  });

  it("refuses a misspelt or non-boolean dashboard, naming it", () => {
    // Act
    const typo = parseError({ ...validTenant(), dashbord: true });
    const text = parseError({ ...validTenant(), dashboard: "yes" });

    // Assess
    expect(typo.message).toContain('did you mean "dashboard"?');
    expect(text.field).toBe("dashboard");
  });
});
