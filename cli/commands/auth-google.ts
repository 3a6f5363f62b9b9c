import { createHash, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { GoogleAccessTokens } from "../../shared/adapters/gmail/google-access-tokens";
import { LocalSecretStore } from "../../shared/adapters/local/local-secret-store";
import { systemClock } from "../../shared/adapters/system-clock";
import { ConfigError, CredentialsError } from "../../shared/core/errors";
import { EXIT, UsageError } from "../output";
import { localPaths } from "../runtime/local-runtime";
import { configAndFlags } from "./local-context";

const GOOGLE_AUTH_URL = "https://accounts.google.com/o/oauth2/v2/auth";
const IMPORT_SCOPES = [
  "https://www.googleapis.com/auth/gmail.insert",
  "https://www.googleapis.com/auth/gmail.labels",
];
const READ_SCOPE = "https://www.googleapis.com/auth/gmail.readonly";
const WAIT_MS = 5 * 60_000;

/**
 * `pop2gmail auth google --config FILE [--mailbox ID] [--client-id ID --client-secret S |
 * --client-file client_secret.json] [--read-scope]`: the OAuth installed-app flow (RFC 8252:
 * loopback redirect on 127.0.0.1, PKCE S256, a random state) that stores the refresh token in
 * the local credentials file under the mailbox's `gmail.credentialsSecret`. For a service
 * account it checks the domain-wide delegation by asking for a token. Tokens are never printed.
 */
export async function authGoogleCommand(args: readonly string[]): Promise<number> {
  const { config, values } = await configAndFlags("auth google", args, {
    mailbox: { type: "string" },
    "client-id": { type: "string" },
    "client-secret": { type: "string" },
    "client-file": { type: "string" },
    "read-scope": { type: "boolean" },
    "auth-url": { type: "string" },
  });
  const mailbox =
    typeof values.mailbox === "string"
      ? config.mailboxes.find((m) => m.id === values.mailbox)
      : config.mailboxes[0];
  if (mailbox === undefined) throw new UsageError(`no mailbox ${String(values.mailbox)} in the config`);
  const secrets = new LocalSecretStore(localPaths(config.local.dataDir).credentials);
  const tokens = () =>
    new GoogleAccessTokens({
      tokenUrl: config.google.tokenUrl,
      secrets,
      clock: systemClock,
      timeoutMs: 15_000,
      serviceAccountScopes: IMPORT_SCOPES,
    });
  if (mailbox.gmail.auth === "service-account") {
    const token = await tokens().get(mailbox.gmail);
    process.stdout.write(
      `ok: the service account may act for ${mailbox.gmail.user} (scopes: ${[...token.scopes].join(" ") || "not reported"})\n`,
    );
    return EXIT.ok;
  }
  const client = await clientCredentials(values, secrets, mailbox.gmail.credentialsSecret);
  const scopes = values["read-scope"] ? [...IMPORT_SCOPES, READ_SCOPE] : IMPORT_SCOPES;
  const code = await authorizationCode(
    typeof values["auth-url"] === "string" ? values["auth-url"] : GOOGLE_AUTH_URL,
    client.clientId,
    scopes,
  );
  const response = await fetch(config.google.tokenUrl, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: code.code,
      client_id: client.clientId,
      client_secret: client.clientSecret,
      redirect_uri: code.redirectUri,
      code_verifier: code.verifier,
    }),
    signal: AbortSignal.timeout(30_000),
  });
  const body = (await response.json().catch(() => ({}))) as {
    refresh_token?: string;
    scope?: string;
    error?: string;
  };
  if (!response.ok || typeof body.refresh_token !== "string") {
    throw new CredentialsError(
      "google",
      `Google did not issue a refresh token (${body.error ?? `HTTP ${response.status}`})`,
      {
        hint: "Check the OAuth client id and secret (a Desktop-app client), then run `pop2gmail auth google` again and accept every permission.",
      },
    );
  }
  await secrets.set(mailbox.gmail.credentialsSecret, {
    clientId: client.clientId,
    clientSecret: client.clientSecret,
    refreshToken: body.refresh_token,
  });
  process.stdout.write(
    `stored the refresh token for ${mailbox.gmail.user} as "${mailbox.gmail.credentialsSecret}" in ${localPaths(config.local.dataDir).credentials} (scopes: ${body.scope ?? scopes.join(" ")})\n`,
  );
  // Prove the stored grant works, as `check` would.
  await tokens().get(mailbox.gmail);
  process.stdout.write("ok: the token refreshes; run `pop2gmail check` for the full picture\n");
  return EXIT.ok;
}

async function clientCredentials(
  values: Record<string, unknown>,
  secrets: LocalSecretStore,
  secretName: string,
): Promise<{ clientId: string; clientSecret: string }> {
  if (typeof values["client-id"] === "string" && typeof values["client-secret"] === "string") {
    return { clientId: values["client-id"], clientSecret: values["client-secret"] };
  }
  if (typeof values["client-file"] === "string") {
    const json = JSON.parse(await readFile(values["client-file"], "utf8")) as {
      installed?: { client_id?: string; client_secret?: string };
    };
    const installed = json.installed;
    if (installed?.client_id && installed.client_secret)
      return { clientId: installed.client_id, clientSecret: installed.client_secret };
    throw new ConfigError(
      "--client-file",
      `${values["client-file"]} is not a Desktop-app OAuth client file`,
      {
        hint: 'Download the client JSON of an OAuth client of type "Desktop app" from the Google Cloud console.',
      },
    );
  }
  const existing = await secrets.get(secretName).catch(() => undefined);
  if (existing !== undefined) {
    const parsed = JSON.parse(existing) as { clientId?: string; clientSecret?: string };
    if (parsed.clientId && parsed.clientSecret)
      return { clientId: parsed.clientId, clientSecret: parsed.clientSecret };
  }
  throw new UsageError(
    "auth google needs the OAuth client: --client-id and --client-secret, or --client-file",
    'Create an OAuth client of type "Desktop app" in the Google Cloud console (docs/deploy.md) and pass its file with --client-file.',
  );
}

/** Opens the loopback redirect, prints the consent URL and waits for Google's redirect with the code. */
async function authorizationCode(
  authUrl: string,
  clientId: string,
  scopes: readonly string[],
): Promise<{ code: string; redirectUri: string; verifier: string }> {
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const state = randomBytes(16).toString("hex");
  let settle: (result: { code: string } | Error) => void = () => {};
  const received = new Promise<{ code: string } | Error>((resolve) => {
    settle = resolve;
  });
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (url.pathname !== "/callback") {
      res.writeHead(404).end();
      return;
    }
    const code = url.searchParams.get("code");
    const ok = url.searchParams.get("state") === state && code !== null;
    res.writeHead(ok ? 200 : 400, { "content-type": "text/plain; charset=utf-8" });
    res.end(
      ok
        ? "pop2gmail is authorised. You can close this tab.\n"
        : "pop2gmail: the authorisation failed; see the terminal.\n",
    );
    settle(
      ok
        ? { code }
        : new Error(url.searchParams.get("error") ?? "the redirect carried no code or a wrong state"),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`;
  const consent = new URL(authUrl);
  for (const [name, value] of Object.entries({
    client_id: clientId,
    redirect_uri: redirectUri,
    response_type: "code",
    scope: scopes.join(" "),
    access_type: "offline",
    prompt: "consent",
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  })) {
    consent.searchParams.set(name, value);
  }
  process.stdout.write(
    `Open this URL in a browser on this machine and allow access:\n\n  ${consent.href}\n\nwaiting for Google's redirect to ${redirectUri} ...\n`,
  );
  const timer = setTimeout(() => settle(new Error("no answer within 5 minutes")), WAIT_MS);
  try {
    const result = await received;
    if (result instanceof Error) {
      throw new CredentialsError("google", `the Google authorisation failed: ${result.message}`, {
        hint: "Run `pop2gmail auth google` again and accept every requested permission.",
      });
    }
    return { code: result.code, redirectUri, verifier };
  } finally {
    clearTimeout(timer);
    server.closeAllConnections();
    server.close();
  }
}
