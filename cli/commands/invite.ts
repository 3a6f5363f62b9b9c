import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { LocalSecretStore } from "../../shared/adapters/local/local-secret-store";
import { systemClock } from "../../shared/adapters/system-clock";
import {
  type OnboardingSecret,
  onboardingSecretOf,
  type WritableSecretStore,
} from "../../shared/adapters/web/onboarding-app";
import type { LocalConfig } from "../../shared/config/local-config";
import type { TenantConfig } from "../../shared/config/tenant-config";
import { ConfigError } from "../../shared/core/errors";
import { parseLinkLifetime, signInvite } from "../../shared/core/invite-link";
import { EXIT, UsageError } from "../output";
import { localPaths } from "../runtime/local-runtime";
import { awsContext } from "./aws-context";
import { configAndFlags } from "./local-context";
import { DEFAULT_ONBOARDING_PORT } from "./serve";

/** The flags of `invite`, locally and with `--aws`. */
const INVITE_FLAGS = {
  mailbox: { type: "string" },
  expires: { type: "string" },
  url: { type: "string" },
  "client-id": { type: "string" },
  "client-secret": { type: "string" },
  "client-file": { type: "string" },
} as const;

/**
 * `pop2gmail invite <tenant> --mailbox ID [--expires 7d] [--url URL] [--client-file web.json |
 * --client-id ID --client-secret S]`: prints a link that lets the mailbox's owner connect their
 * Gmail in their own browser (docs/onboarding.md). The link key is created on first use and kept
 * in the credentials file with the OAuth client of type "Web application"; neither is printed.
 */
export async function inviteCommand(args: readonly string[]): Promise<number> {
  const { config, values } = await configAndFlags("invite", args, INVITE_FLAGS);
  const link = await createInviteLink(config, {
    mailboxId: typeof values.mailbox === "string" ? values.mailbox : undefined,
    expires: typeof values.expires === "string" ? values.expires : "7d",
    url: typeof values.url === "string" ? values.url : `http://127.0.0.1:${DEFAULT_ONBOARDING_PORT}`,
    client: await clientFromFlags(values),
  });
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ link: link.url, expiresAt: new Date(link.expiresAt).toISOString() })}\n`,
    );
  } else {
    process.stdout.write(
      `Send this link to the owner of ${link.mailboxId}; it connects their Gmail once and shows the status afterwards (valid until ${new Date(link.expiresAt).toISOString()}):\n\n  ${link.url}\n\n`,
    );
    if (link.url.startsWith("http://127.0.0.1"))
      process.stdout.write(`It opens while \`pop2gmail serve ${config.tenant}\` runs on this machine.\n`);
  }
  return EXIT.ok;
}

/** Makes (and keeps the key and client for) one invite link; shared with `init`. */
export async function createInviteLink(
  config: LocalConfig | TenantConfig,
  options: {
    mailboxId: string | undefined;
    expires: string;
    url: string;
    client?: { clientId: string; clientSecret: string } | undefined;
    /** Where the onboarding secret lives; the local credentials file unless given. */
    secrets?: { store: WritableSecretStore; where: "local" | "aws" };
  },
): Promise<{ url: string; expiresAt: number; mailboxId: string }> {
  if (options.mailboxId === undefined) throw new UsageError("invite needs --mailbox ID");
  const mailbox = config.mailboxes.find((m) => m.id === options.mailboxId);
  if (mailbox === undefined)
    throw new UsageError(
      `no mailbox ${options.mailboxId} in the config`,
      `Mailboxes: ${config.mailboxes.map((m) => m.id).join(", ")}`,
    );
  if (mailbox.gmail.auth !== "oauth")
    throw new UsageError(
      `${mailbox.id} imports with a Workspace service account: it needs no link`,
      "Domain-wide delegation is granted by the Workspace admin (docs/onboarding.md).",
    );
  const sharing = config.mailboxes.filter(
    (m) => m.id !== mailbox.id && m.gmail.credentialsSecret === mailbox.gmail.credentialsSecret,
  );
  if (sharing.length > 0)
    throw new ConfigError(
      `mailboxes.${mailbox.id}.gmail.credentialsSecret`,
      `${mailbox.id} shares its Google secret "${mailbox.gmail.credentialsSecret}" with ${sharing.map((m) => m.id).join(", ")}: a link would connect them all`,
      {
        hint: `Give ${mailbox.id} its own gmail.credentialsSecret, e.g. "${options.secrets?.where === "aws" ? "pop2gmail/" : ""}${config.tenant}/${mailbox.id}/google".`,
      },
    );
  const lifetime = parseLinkLifetime(options.expires);
  if (lifetime === undefined)
    throw new UsageError(
      `--expires ${options.expires}: use a number of days, hours or minutes (7d, 12h, 30m), at most 90d`,
    );
  const base = parseBaseUrl(options.url);
  const secrets =
    options.secrets ??
    ({
      store: new LocalSecretStore(localPaths((config as LocalConfig).local.dataDir).credentials),
      where: "local",
    } as const);
  const name = onboardingSecretOf(config, secrets.where);
  const existing = await secrets.store
    .get(name)
    .then((value) => JSON.parse(value) as Partial<OnboardingSecret>)
    .catch(() => ({}) as Partial<OnboardingSecret>);
  const secret = {
    ...existing,
    linkKey: existing.linkKey ?? randomBytes(32).toString("base64"),
    ...(options.client ?? {}),
  };
  if (secret.clientId === undefined || secret.clientSecret === undefined)
    throw new UsageError(
      "invite needs the OAuth client the link signs in with: --client-file web_client.json (once; it is kept)",
      'Create an OAuth client of type "Web application" in the Google Cloud console with the redirect URI <url>/oauth/callback (docs/onboarding.md).',
    );
  if (existing.linkKey === undefined || options.client !== undefined) await secrets.store.set(name, secret);
  const expiresAt = systemClock.now() + lifetime;
  const { token } = signInvite(Buffer.from(secret.linkKey, "base64"), {
    tenant: config.tenant,
    mailboxId: mailbox.id,
    expiresAt,
  });
  return { url: new URL(`/o/${token}`, base).href, expiresAt, mailboxId: mailbox.id };
}

function parseBaseUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--url ${text} is not a URL`);
  }
  const loopback = url.hostname === "127.0.0.1" || url.hostname === "localhost";
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback))
    throw new UsageError(`--url ${text}: use https (plain http only on 127.0.0.1)`);
  return url;
}

async function clientFromFlags(
  values: Record<string, unknown>,
): Promise<{ clientId: string; clientSecret: string } | undefined> {
  if (typeof values["client-id"] === "string" && typeof values["client-secret"] === "string")
    return { clientId: values["client-id"], clientSecret: values["client-secret"] };
  if (typeof values["client-file"] !== "string") return undefined;
  const json = JSON.parse(await readFile(values["client-file"], "utf8")) as {
    web?: { client_id?: string; client_secret?: string };
  };
  if (json.web?.client_id && json.web.client_secret)
    return { clientId: json.web.client_id, clientSecret: json.web.client_secret };
  throw new ConfigError(
    "--client-file",
    `${values["client-file"]} is not a "Web application" OAuth client file`,
    {
      hint: 'Download the JSON of an OAuth client of type "Web application" from the Google Cloud console.',
    },
  );
}

/**
 * `pop2gmail invite --aws --tenant T --mailbox ID --url FUNCTION_URL [--expires 7d]
 * [--client-file web_client.json]`: the link for a deployed tenant, signed with the key in the
 * secret `pop2gmail/<tenant>/onboarding` (made there on first use; needs the operator's
 * GetSecretValue and PutSecretValue on it). `--url` is the stack output `OnboardingUrl`.
 */
export async function inviteAwsCommand(args: readonly string[]): Promise<number> {
  const context = await awsContext("invite", args, [], INVITE_FLAGS);
  try {
    const { values } = context;
    if (typeof values.url !== "string")
      throw new UsageError(
        "invite --aws needs --url: the stack output OnboardingUrl",
        "Run `npx cdk deploy` and copy the OnboardingUrl output, or read it in the CloudFormation console.",
      );
    const { SecretsManagerClient } = await import("@aws-sdk/client-secrets-manager");
    const { SecretsManagerSecretWriter } = await import(
      "../../shared/adapters/secrets-manager/secrets-manager-secret-writer"
    );
    const client = new SecretsManagerClient(context.region === undefined ? {} : { region: context.region });
    try {
      const link = await createInviteLink(context.config, {
        mailboxId: typeof values.mailbox === "string" ? values.mailbox : undefined,
        expires: typeof values.expires === "string" ? values.expires : "7d",
        url: values.url,
        client: await clientFromFlags(values),
        secrets: { store: new SecretsManagerSecretWriter(client), where: "aws" },
      });
      process.stdout.write(
        values.json
          ? `${JSON.stringify({ link: link.url, expiresAt: new Date(link.expiresAt).toISOString() })}\n`
          : `Send this link to the owner of ${link.mailboxId} (valid until ${new Date(link.expiresAt).toISOString()}):\n\n  ${link.url}\n\n`,
      );
      return EXIT.ok;
    } finally {
      client.destroy();
    }
  } finally {
    context.close();
  }
}
