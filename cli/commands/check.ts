import { readFile } from "node:fs/promises";
import { GMAIL_READ_SCOPES, GoogleAccessTokens } from "../../shared/adapters/gmail/google-access-tokens";
import { LocalSecretStore } from "../../shared/adapters/local/local-secret-store";
import { Pop3Client } from "../../shared/adapters/pop3/pop3-client";
import { systemClock } from "../../shared/adapters/system-clock";
import type { LocalConfig } from "../../shared/config/local-config";
import type { MailboxConfig } from "../../shared/config/tenant-config";
import {
  ConfigError,
  CredentialsError,
  MailboxBusyError,
  Pop2GmailError,
  TlsError,
} from "../../shared/core/errors";
import type { SecretStore } from "../../shared/ports/secret-store";
import { CONFIG_ERROR_CODE, EXIT } from "../output";
import { localPaths } from "../runtime/local-runtime";
import { configAndFlags } from "./local-context";

/** One step of `check`, as printed and in `--json`. */
export interface CheckStep {
  readonly mailboxId: string;
  readonly step: string;
  readonly ok: boolean;
  readonly detail: string;
  /** On failure: what is wrong, in words, and what to do. */
  readonly cause?: string;
  readonly fix?: string;
  readonly code?: string;
  /** A step that passed but found something the operator should look at. */
  readonly warning?: string;
}

const INSERT_SCOPES = [
  "https://www.googleapis.com/auth/gmail.insert",
  "https://www.googleapis.com/auth/gmail.modify",
  "https://mail.google.com/",
];

/**
 * `pop2gmail check --config FILE [--json]`: for every mailbox, POP3 (TLS and certificate, CAPA,
 * login, STAT, UIDL and LIST) and Google (token refresh, profile, granted scopes). Every failed step names the
 * cause and the fix. Exit 0 only when every step passed; 2 when a step failed on the config (a
 * missing secret, a credentials file others can read). Warnings do not change the exit code.
 */
export async function checkCommand(args: readonly string[]): Promise<number> {
  const { config, values } = await configAndFlags("check", args, {});
  const secrets = new LocalSecretStore(localPaths(config.local.dataDir).credentials);
  const steps: CheckStep[] = [];
  for (const mailbox of config.mailboxes) {
    steps.push(...(await checkPop3(mailbox, secrets)));
    steps.push(...(await checkGoogle(config, mailbox, secrets)));
  }
  const ok = steps.every((s) => s.ok);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ ok, steps }, null, 2)}\n`);
  } else {
    for (const s of steps) {
      process.stdout.write(`${s.ok ? "ok  " : "FAIL"} ${s.mailboxId} ${s.step}: ${s.detail}\n`);
      if (s.warning) process.stdout.write(`     WARNING: ${s.warning}\n`);
      if (s.cause) process.stdout.write(`     cause: ${s.cause}\n`);
      if (s.fix) process.stdout.write(`     fix: ${s.fix}\n`);
    }
    process.stdout.write(ok ? "all checks passed\n" : "some checks failed: see the causes and fixes above\n");
  }
  if (ok) return EXIT.ok;
  return steps.some((s) => !s.ok && s.code === CONFIG_ERROR_CODE) ? EXIT.usage : EXIT.failure;
}

async function checkPop3(mailbox: MailboxConfig, secrets: SecretStore): Promise<CheckStep[]> {
  const steps: CheckStep[] = [];
  const pop3 = mailbox.pop3;
  const port = pop3.port ?? (pop3.tls === "implicit" ? 995 : 110);
  const pass = (step: string, detail: string) =>
    steps.push({ mailboxId: mailbox.id, step, ok: true, detail });
  const fail = (step: string, error: unknown) => steps.push(failure(mailbox.id, step, error));
  let client: Pop3Client | undefined;
  try {
    const ca = pop3.caFile === undefined ? undefined : await readCa(pop3.caFile);
    client = await Pop3Client.connect({
      host: pop3.host,
      port,
      tls: pop3.tls,
      allowPlaintext: pop3.allowPlaintext,
      ...(ca === undefined ? {} : { ca }),
      ...(pop3.certificateSha256 === undefined ? {} : { certificateSha256: pop3.certificateSha256 }),
      connectionDeadlineMs: 60_000,
      commandTimeoutMs: 15_000,
    });
    pass(
      "pop3 connection",
      pop3.tls === "none"
        ? `${pop3.host}:${port} plaintext (allowPlaintext is set: the password crosses the network unencrypted)`
        : `${pop3.host}:${port} ${pop3.tls} TLS, certificate ${pop3.certificateSha256 ? "matches the pinned SHA-256" : "verified"}`,
    );
  } catch (error) {
    fail("pop3 connection", error);
    return steps;
  }
  try {
    const capabilities = await client.capabilities().catch(() => [] as string[]);
    pass(
      "pop3 capabilities",
      capabilities.length > 0 ? capabilities.join(" ") : "none announced (RFC 1939 server)",
    );
    // RFC 6856: without UTF8 Courier serves a notice in place of a raw UTF-8 header message.
    const announces = (name: string) =>
      capabilities.some((line) => line.toUpperCase().split(" ")[0] === name);
    const utf8 = announces("UTF8") && (await client.utf8());
    const password = await secrets.get(pop3.passwordSecret);
    await client.login(pop3.user, password);
    pass("pop3 login", `logged in as ${pop3.user}`);
    if (announces("UTF8")) {
      pass(
        "pop3 utf8",
        utf8
          ? "UTF8 accepted (RFC 6856): messages with raw UTF-8 headers are served as stored"
          : "UTF8 announced but refused: messages with raw UTF-8 headers may be served altered",
      );
    }
    const delay = capabilities.map((line) => /^LOGIN-DELAY (\d{1,9})/i.exec(line)?.[1]).find(Boolean);
    if (delay !== undefined) {
      pass(
        "pop3 login delay",
        `LOGIN-DELAY ${delay} s (RFC 2449): the server refuses a new login within ${delay} s, so each poll lists, copies and deletes in one session, and polls start at most every ${Math.max(Number(delay), mailbox.pollSeconds)} s`,
      );
    }
    const { count, size } = await client.stat();
    pass("pop3 mailbox", `${count} messages, ${size} bytes`);
    steps.push({ mailboxId: mailbox.id, ...(await checkListings(client)) });
    await client.quit();
  } catch (error) {
    fail(steps.some((s) => s.step === "pop3 login") ? "pop3 mailbox" : "pop3 login", error);
    client.destroy();
  }
  return steps;
}

/**
 * UIDL and LIST, as every poll runs them: a server that repeats a UIDL (popa3d) or breaks RFC 1939
 * §7 passes STAT and still needs the fallbacks of docs/pipeline.md "Message identity".
 */
async function checkListings(client: Pop3Client): Promise<Omit<CheckStep, "mailboxId">> {
  const step = "pop3 listing";
  const ids = await client.uidl();
  const sizes = await client.list();
  const detail = `${ids.length} messages in UIDL and LIST`;
  if (ids.length !== sizes.length) {
    return {
      step,
      ok: false,
      detail: `UIDL lists ${ids.length} messages, LIST ${sizes.length}`,
      cause: "the server's UIDL and LIST disagree, so messages cannot be told apart safely",
      fix: "ask the provider to repair the maildrop (or its UIDL index), then run check again",
    };
  }
  const perUidl = new Map<string, number>();
  for (const entry of ids)
    if (entry.invalid === undefined) perUidl.set(entry.uidl, (perUidl.get(entry.uidl) ?? 0) + 1);
  const repeated = [...perUidl.values()].filter((n) => n > 1);
  const invalid = ids.filter((entry) => entry.invalid !== undefined).length;
  const warnings = [
    ...(repeated.length === 0
      ? []
      : [
          `${repeated.length} UIDL${repeated.length === 1 ? "" : "s"} listed for ${repeated.reduce((a, b) => a + b, 0)} messages: each is told apart by its size and content and delivered (one more read per message)`,
        ]),
    ...(invalid === 0
      ? []
      : [
          `${invalid} invalid UIDL${invalid === 1 ? "" : "s"} (RFC 1939 §7): ${invalid === 1 ? "its message is" : "those messages are"} archived, quarantined and left on the server; the rest flow`,
        ]),
  ];
  return { step, ok: true, detail, ...(warnings.length === 0 ? {} : { warning: warnings.join("; ") }) };
}

async function checkGoogle(
  config: LocalConfig,
  mailbox: MailboxConfig,
  secrets: SecretStore,
): Promise<CheckStep[]> {
  const steps: CheckStep[] = [];
  const gmail = mailbox.gmail;
  const tokens = new GoogleAccessTokens({
    tokenUrl: config.google.tokenUrl,
    secrets,
    clock: systemClock,
    timeoutMs: 15_000,
    serviceAccountScopes: [
      "https://www.googleapis.com/auth/gmail.insert",
      "https://www.googleapis.com/auth/gmail.labels",
    ],
  });
  let token: Awaited<ReturnType<GoogleAccessTokens["get"]>>;
  try {
    token = await tokens.get(gmail);
    steps.push({
      mailboxId: mailbox.id,
      step: "google token",
      ok: true,
      detail: `access token issued for ${gmail.user} (${gmail.auth})`,
    });
  } catch (error) {
    steps.push(failure(mailbox.id, "google token", error));
    return steps;
  }
  const scopes = [...token.scopes];
  const canImport = scopes.length === 0 || scopes.some((s) => INSERT_SCOPES.includes(s));
  const canLookUp = scopes.length === 0 || scopes.some((s) => GMAIL_READ_SCOPES.some((r) => r === s));
  steps.push(
    canImport
      ? {
          mailboxId: mailbox.id,
          step: "google scopes",
          ok: true,
          detail: scopes.length > 0 ? scopes.join(" ") : "not reported by the token endpoint",
          ...(canLookUp ? {} : { warning: noReadScopeWarning(config, gmail.auth) }),
        }
      : {
          mailboxId: mailbox.id,
          step: "google scopes",
          ok: false,
          detail: scopes.join(" "),
          cause: "the grant cannot import mail: it lacks https://www.googleapis.com/auth/gmail.insert",
          fix: "Authorise again and accept the Gmail insert permission (pop2gmail needs gmail.insert and gmail.labels).",
        },
  );
  try {
    // `me`: the account the credentials belong to, so a grant for another account is named below.
    const url = new URL("gmail/v1/users/me/profile", config.google.apiBaseUrl);
    const response = await fetch(url, {
      headers: { authorization: `Bearer ${token.value}` },
      signal: AbortSignal.timeout(15_000),
    });
    const body = (await response.json().catch(() => ({}))) as {
      emailAddress?: string;
      messagesTotal?: number;
    };
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const address = body.emailAddress;
    const differs = address !== undefined && address.toLowerCase() !== gmail.user.toLowerCase();
    steps.push({
      mailboxId: mailbox.id,
      step: "google profile",
      ok: true,
      detail: `${address ?? gmail.user}, ${body.messagesTotal ?? "?"} messages`,
      ...(differs
        ? {
            warning: `the Google credentials belong to ${address}, not to gmail.user ${gmail.user}: Gmail refuses imports into ${gmail.user} with them unless it is the same account (an alias). Set gmail.user to ${address}, or authorise as ${gmail.user} (pop2gmail auth google).`,
          }
        : {}),
    });
  } catch (error) {
    steps.push({
      mailboxId: mailbox.id,
      step: "google profile",
      ok: false,
      detail: `cannot read the Gmail profile of ${gmail.user} (${error instanceof Error ? error.message : "error"})`,
      cause: "the Gmail API did not answer for this user",
      fix: `Check google.apiBaseUrl (${config.google.apiBaseUrl}) and that ${gmail.user} is the account that granted access.`,
    });
  }
  return steps;
}

/** A failed step with the cause in words (from the typed error) and the error's own fix. */
function failure(mailboxId: string, step: string, error: unknown): CheckStep {
  if (!(error instanceof Pop2GmailError)) throw error;
  return {
    mailboxId,
    step,
    ok: false,
    detail: error.message,
    cause: causeOf(step, error),
    ...(error.hint === undefined ? {} : { fix: error.hint }),
    code: error.code,
  };
}

/**
 * What a grant without a read scope means (docs/pipeline.md, "The import claim"): an uncertain
 * import cannot be looked up, so the same copy is imported again and Gmail merges it.
 */
function noReadScopeWarning(config: LocalConfig, auth: MailboxConfig["gmail"]["auth"]): string {
  const grant =
    auth === "oauth"
      ? `run \`pop2gmail auth google ${config.tenant} --read-scope\``
      : "add https://www.googleapis.com/auth/gmail.readonly to the service account's domain-wide delegation";
  return (
    "no read scope (gmail.readonly, gmail.modify or mail.google.com): after an import whose answer was lost " +
    "pop2gmail cannot look the message up in Gmail; it imports the same copy again and relies on Gmail merging " +
    "it by its Message-ID (every copy carries one). Nothing is lost; to have it checked instead of re-sent, " +
    `${grant}.`
  );
}

function causeOf(step: string, error: Pop2GmailError): string {
  if (error instanceof TlsError) return "bad certificate: the server's TLS certificate could not be verified";
  if (error instanceof CredentialsError && error.service === "pop3")
    return "wrong password: the POP3 server refused the user name or password";
  if (error instanceof CredentialsError && error.service === "google")
    return "expired token: Google refused the stored credentials (refresh token expired or revoked)";
  if (error instanceof ConfigError) return `missing or invalid setting: ${error.field}`;
  if (error instanceof MailboxBusyError && error.responseCode === "LOGIN-DELAY")
    return "login delay: the server refuses logins closer together than its LOGIN-DELAY; run check again after that many seconds";
  if (error.code === "MAILBOX_BUSY") return "the mailbox is locked by another client";
  return `${step} failed (${error.code})`;
}

async function readCa(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (cause) {
    throw new ConfigError("pop3.caFile", `cannot read the CA file ${path}`, {
      cause,
      hint: "Point pop3.caFile at a readable PEM file.",
    });
  }
}
