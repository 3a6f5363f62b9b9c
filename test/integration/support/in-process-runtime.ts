import { join } from "node:path";
import { createLocalRuntime, type LocalRuntimeOverrides } from "../../../cli/runtime/local-runtime";
import { parseLocalConfig } from "../../../shared/config/local-config";
import type { MailboxKey } from "../../../shared/core/model";
import type { SecretStore } from "../../../shared/ports/secret-store";
import { TestClock } from "../../fakes/in-memory-clock";

/** One plaintext loopback POP3 mailbox, the Gmail API stand-in, and the secrets for both. */
export interface InProcessRuntimeFixture {
  /** Parent folder; the runtime's data dir is `<dir>/<name>`. */
  readonly dir: string;
  /** Names the data dir and the mailbox (`<name>@acme.example`). */
  readonly name: string;
  readonly port: number;
  readonly google: { readonly baseUrl: string; readonly tokenUrl: string };
  readonly gmailUser: string;
  readonly pop3User: string;
  readonly pop3Password: string;
  readonly oauth: { readonly clientId: string; readonly clientSecret: string; readonly refreshToken: string };
  readonly overrides?: LocalRuntimeOverrides;
}

/**
 * The local runtime in-process (tenant `acme`, a `TestClock`, no retry waits) for one mailbox:
 * what a test of `runOnce` needs without a child process. Returns the runtime and its mailbox key.
 */
export function inProcessRuntime(fixture: InProcessRuntimeFixture) {
  const mailboxId = `${fixture.name}@acme.example`;
  const config = parseLocalConfig(
    {
      tenant: "acme",
      google: { apiBaseUrl: fixture.google.baseUrl, tokenUrl: fixture.google.tokenUrl },
      local: { dataDir: join(fixture.dir, fixture.name), maxRetryWaitSeconds: 0 },
      mailboxes: [
        {
          id: mailboxId,
          pop3: {
            host: "127.0.0.1",
            port: fixture.port,
            tls: "none",
            allowPlaintext: true,
            user: fixture.pop3User,
            passwordSecret: "pop3",
          },
          gmail: { user: fixture.gmailUser, credentialsSecret: "google" },
        },
      ],
    },
    fixture.dir,
  );
  const secrets: SecretStore = {
    get: async (name) => (name === "pop3" ? fixture.pop3Password : JSON.stringify(fixture.oauth)),
  };
  const runtime = createLocalRuntime(config, { secrets, clock: new TestClock(), ...fixture.overrides });
  const key: MailboxKey = { tenant: "acme", mailboxId };
  return { runtime, key };
}
