import { writeFile } from "node:fs/promises";
import { join } from "node:path";

/** Settings of a generated local config for one Dovecot mailbox and the Gmail API stand-in. */
export interface LocalConfigFixture {
  readonly dir: string;
  readonly pop3: { host: string; port: number; tls: "implicit" | "none"; user: string; caFile?: string };
  readonly google: { baseUrl: string; tokenUrl: string };
  readonly gmailUser: string;
  readonly tenant?: string;
  readonly mailboxId?: string;
}

/** Writes `<dir>/local.json` and returns its path; secrets are named, never written here. */
export async function writeLocalConfig(fixture: LocalConfigFixture): Promise<string> {
  const path = join(fixture.dir, "local.json");
  const config = {
    tenant: fixture.tenant ?? "acme",
    google: {
      apiBaseUrl: fixture.google.baseUrl,
      tokenUrl: fixture.google.tokenUrl,
      quotaUnitsPerMinute: 1_000_000,
    },
    local: { dataDir: "./data", maxRetryWaitSeconds: 0 },
    mailboxes: [
      {
        id: fixture.mailboxId ?? "info@acme.example",
        pop3: {
          host: fixture.pop3.host,
          port: fixture.pop3.port,
          tls: fixture.pop3.tls,
          ...(fixture.pop3.tls === "none" ? { allowPlaintext: true } : {}),
          ...(fixture.pop3.caFile === undefined ? {} : { caFile: fixture.pop3.caFile }),
          user: fixture.pop3.user,
          passwordSecret: "acme/pop3",
        },
        gmail: { user: fixture.gmailUser, credentialsSecret: "acme/google" },
      },
    ],
  };
  await writeFile(path, JSON.stringify(config, null, 2));
  return path;
}

/** The environment that hands the child process its two secrets. */
export function secretEnv(
  password: string,
  google: { clientId: string; clientSecret: string; refreshToken: string },
) {
  return {
    POP2GMAIL_SECRET_ACME_POP3: password,
    POP2GMAIL_SECRET_ACME_GOOGLE: JSON.stringify(google),
  };
}
