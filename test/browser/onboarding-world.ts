import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";
import { type OnboardingServer, startOnboardingServer } from "../../cli/commands/serve";
import { type LocalConfig, loadLocalConfig } from "../../shared/config/local-config";
import { type DovecotServer, startDovecot } from "../fakes/dovecot";
import { GmailApiStandIn } from "../fakes/gmail-api-stand-in";
import { GoogleOAuthStandIn } from "../fakes/google-oauth-stand-in";
import { type CliResult, runCli } from "../integration/support/cli-process";

/** The Google account that consents in the stand-in, and the Gmail address the mailbox goes to. */
export const ACCOUNT = "mario.rossi@gmail.example";
export const MAILBOX = "info@acme.example";
export const CLIENT = { clientId: "web-client.apps.example", clientSecret: "web-client-secret-0123" };
const POP3_PASSWORD = "info-password";

/**
 * Debian's Chromium (scripts/setup.sh installs it), driven by playwright-core: headless, no
 * sandbox (CI runs as root), nothing that talks to the network on its own, a fresh profile.
 */
export async function launchChromium(
  profileDir: string,
  viewport = { width: 1280, height: 900 },
): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    viewport,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * Everything the onboarding flow touches, on 127.0.0.1: Dovecot with one mailbox, the Gmail API
 * stand-in, the Google OAuth stand-in in front of it, a local config whose `google` section
 * points at both, and `pop2gmail serve`'s server for that config.
 */
export interface OnboardingWorld {
  readonly dovecot: DovecotServer;
  readonly gmail: GmailApiStandIn;
  readonly google: GoogleOAuthStandIn;
  readonly dir: string;
  readonly configPath: string;
  readonly config: LocalConfig;
  readonly server: OnboardingServer;
  /** `pop2gmail invite` as a child process; the link it printed. */
  invite(extra?: readonly string[]): Promise<string>;
  /** `pop2gmail run --once` as a child process. */
  runOnce(): Promise<CliResult>;
  /** The parsed local credentials file. */
  credentials(): Promise<Record<string, Record<string, unknown>>>;
  close(): Promise<void>;
}

export async function startOnboardingWorld(
  options: { maxMessageBytes?: number } = {},
): Promise<OnboardingWorld> {
  const dir = await mkdtemp(join(tmpdir(), "pop2gmail-onboarding-"));
  const dovecot = await startDovecot({ users: { info: POP3_PASSWORD } });
  const gmail = new GmailApiStandIn();
  const api = await gmail.start();
  const google = new GoogleOAuthStandIn({ gmail, account: ACCOUNT, client: CLIENT });
  const oauth = await google.start(api.tokenUrl);
  const caFile = join(dir, "ca.pem");
  await writeFile(caFile, dovecot.caPem);
  const configPath = join(dir, "acme.local.json");
  await writeFile(
    configPath,
    JSON.stringify(
      {
        tenant: "acme",
        google: {
          apiBaseUrl: api.baseUrl,
          tokenUrl: oauth.tokenUrl,
          authorizeUrl: oauth.authorizeUrl,
          revokeUrl: oauth.revokeUrl,
          quotaUnitsPerMinute: 1_000_000,
        },
        local: { dataDir: "./data", maxRetryWaitSeconds: 0 },
        mailboxes: [
          {
            id: MAILBOX,
            pop3: {
              host: dovecot.host,
              port: dovecot.tlsPort,
              tls: "implicit",
              user: "info",
              caFile,
              passwordSecret: "acme/pop3",
            },
            gmail: { user: ACCOUNT, credentialsSecret: "acme/info/google" },
            ...(options.maxMessageBytes === undefined ? {} : { maxMessageBytes: options.maxMessageBytes }),
          },
        ],
      },
      null,
      2,
    ),
  );
  const config = await loadLocalConfig(configPath);
  const server = await startOnboardingServer(config, { port: 0 });
  const env = { POP2GMAIL_SECRET_ACME_POP3: POP3_PASSWORD };
  return {
    dovecot,
    gmail,
    google,
    dir,
    configPath,
    config,
    server,
    async invite(extra = []) {
      const result = await runCli(
        [
          "invite",
          "--config",
          configPath,
          "--mailbox",
          MAILBOX,
          "--url",
          server.url,
          "--client-id",
          CLIENT.clientId,
          "--client-secret",
          CLIENT.clientSecret,
          "--json",
          ...extra,
        ],
        env,
      );
      if (result.code !== 0) throw new Error(`invite failed: ${result.stderr}`);
      return (JSON.parse(result.stdout) as { link: string }).link;
    },
    runOnce: () => runCli(["run", "--config", configPath, "--once", "--json"], env),
    async credentials() {
      return JSON.parse(await readFile(join(dir, "data", "credentials.json"), "utf8"));
    },
    async close() {
      await server.close();
      await google.stop();
      await gmail.stop();
      await dovecot.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
