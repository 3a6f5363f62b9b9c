import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import type * as z from "zod";
import { LocalSecretStore } from "../../shared/adapters/local/local-secret-store";
import { localConfigSchema, parseLocalConfig } from "../../shared/config/local-config";
import { describeIssues } from "../../shared/config/parse-tenant-config";
import { describeSecretReference } from "../../shared/config/secret-reference";
import { deleteAfterSchema, gmailSchema, mailboxSchema, pop3Schema } from "../../shared/config/tenant-config";
import { ConfigError } from "../../shared/core/errors";
import { EXIT, UsageError } from "../output";
import { localPaths } from "../runtime/local-runtime";
import { acquireRunLock } from "../runtime/run-lock";
import { checkCommand } from "./check";
import { createInviteLink } from "./invite";
import { openLocalRuntime } from "./local-context";
import { markExistingDelivered } from "./mark-existing";
import { askUntilValid, type Prompter, terminalPrompter } from "./prompt";
import { DEFAULT_ONBOARDING_PORT } from "./serve";

const FLAGS = {
  "mailbox-id": { type: "string" },
  "pop3-host": { type: "string" },
  "pop3-port": { type: "string" },
  "pop3-tls": { type: "string" },
  "pop3-user": { type: "string" },
  "pop3-password-secret": { type: "string" },
  "pop3-ca-file": { type: "string" },
  "pop3-certificate-sha256": { type: "string" },
  "allow-plaintext": { type: "boolean" },
  "gmail-user": { type: "string" },
  "gmail-auth": { type: "string" },
  "gmail-credentials-secret": { type: "string" },
  "gmail-label": { type: "string" },
  "delete-after": { type: "string" },
  "poll-seconds": { type: "string" },
  "alarm-email": { type: "string" },
  "data-dir": { type: "string" },
  output: { type: "string", short: "o" },
  force: { type: "boolean" },
  "mark-existing-delivered": { type: "boolean" },
  "no-input": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** `init --help`: every flag, with `=VALUE` for those that take one. */
function initHelp(): string {
  const flags = Object.entries(FLAGS).map(
    ([name, spec]) => `  --${name}${spec.type === "string" ? "=VALUE" : ""}`,
  );
  return `Usage: pop2gmail init <tenant> [flags]\n\nWrites <tenant>.local.json (or --output FILE), asking on a terminal for what the flags leave out.\n\n${flags.join("\n")}\n`;
}

/**
 * `pop2gmail init <tenant> [flags]`: writes a local config for one mailbox from flags, asking on
 * a terminal for what is missing, and validates it with the tenant schema (errors name the field,
 * exit 2). `--mark-existing-delivered` then records the messages now on the POP3 server as
 * delivered, for mailboxes moving from Gmail's fetcher with "leave a copy on the server".
 */
export async function initCommand(args: readonly string[], prompter?: Prompter): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...args], options: FLAGS, allowPositionals: true });
  if (values.help === true) {
    process.stdout.write(initHelp());
    return EXIT.ok;
  }
  const tenant = positionals[0];
  if (tenant === undefined) throw new UsageError("init needs a tenant name: pop2gmail init <tenant>");
  const interactive = prompter !== undefined || (process.stdin.isTTY === true && values["no-input"] !== true);
  const io = prompter ?? terminalPrompter;
  // Each answer is checked when given, against the same schema the whole config is checked with,
  // and asked again with the reason: one bad answer never costs the others.
  const pick = async (
    flag: keyof typeof FLAGS,
    question: string,
    check: (answer: string) => string | undefined,
    fallback?: string,
  ): Promise<string | undefined> => {
    const given = values[flag];
    if (typeof given === "string") {
      const problem = interactive ? check(given) : undefined;
      if (problem === undefined) return given;
      io.say(`  --${flag} ${given}: ${problem}`);
    }
    if (!interactive) return fallback;
    const answer = await askUntilValid(io, question, check, fallback);
    return answer === "" ? undefined : answer;
  };
  const mailboxId = await pick(
    "mailbox-id",
    "Mailbox id (e.g. info@acme.it)",
    reasonOf(mailboxSchema.shape.id),
  );
  const host = await pick("pop3-host", "POP3 server host", reasonOf(pop3Schema.shape.host));
  const tls = await pick(
    "pop3-tls",
    "POP3 TLS (implicit, starttls, none)",
    reasonOf(pop3Schema.shape.tls, "use implicit, starttls or none"),
    "implicit",
  );
  const port = await pick(
    "pop3-port",
    "POP3 port",
    (answer) =>
      /^\d{1,5}$/.test(answer) && Number(answer) >= 1 && Number(answer) <= 65535
        ? undefined
        : "give a port number from 1 to 65535",
    tls === "implicit" ? "995" : "110",
  );
  const user = await pick("pop3-user", "POP3 user name", reasonOf(pop3Schema.shape.user), mailboxId);
  const gmailUser = await pick(
    "gmail-user",
    "Gmail address to import into",
    reasonOf(gmailSchema.shape.user),
  );
  const deleteAfter = await pick(
    "delete-after",
    "Delete from POP3 after import (immediately, never, 30d)",
    reasonOf(deleteAfterSchema, "use 'immediately', 'never' or a number of days such as '30d'"),
    "immediately",
  );
  // tls "none" needs its own yes (invariant 6): asked here, not refused after every other answer.
  const allowPlaintext =
    values["allow-plaintext"] === true ||
    (interactive &&
      tls === "none" &&
      /^y/i.test(await io.ask("tls none sends the POP3 password in clear text. Allow that? (y/n)", "n")));
  const raw = {
    tenant,
    ...(values["alarm-email"] === undefined ? {} : { alarmEmail: values["alarm-email"] }),
    local: { dataDir: values["data-dir"] ?? `./.data/${tenant}` },
    mailboxes: [
      {
        id: mailboxId,
        pop3: {
          host,
          ...(port === undefined ? {} : { port: Number(port) }),
          tls,
          ...(allowPlaintext ? { allowPlaintext: true } : {}),
          user,
          passwordSecret:
            values["pop3-password-secret"] ?? `${tenant}/${mailboxId ?? "mailbox"}/pop3-password`,
          ...(values["pop3-ca-file"] === undefined ? {} : { caFile: values["pop3-ca-file"] }),
          ...(values["pop3-certificate-sha256"] === undefined
            ? {}
            : { certificateSha256: values["pop3-certificate-sha256"] }),
        },
        gmail: {
          user: gmailUser,
          auth: values["gmail-auth"] ?? "oauth",
          credentialsSecret: values["gmail-credentials-secret"] ?? `${tenant}/google`,
          ...(values["gmail-label"] === undefined ? {} : { mailboxLabel: values["gmail-label"] }),
        },
        deleteAfter,
        ...(values["poll-seconds"] === undefined ? {} : { pollSeconds: Number(values["poll-seconds"]) }),
      },
    ],
  };
  const checked = localConfigSchema.safeParse(raw);
  if (!checked.success) {
    process.stderr.write(
      `pop2gmail: the config for ${tenant} is invalid:\n${describeIssues(checked.error.issues).replace(/^/gm, "  ")}\n`,
    );
    process.stderr.write(
      "  what to do: fix the flags for the fields named above (pop2gmail help lists them), or run init on a terminal to be asked.\n",
    );
    return EXIT.usage;
  }
  const output = resolve(values.output ?? `${tenant}.local.json`);
  if (existsSync(output) && !values.force) {
    throw new ConfigError("--output", `${output} exists already`, {
      hint: "Pass --force to overwrite it, or --output to write elsewhere.",
    });
  }
  await mkdir(dirname(output), { recursive: true });
  await writeFile(output, `${JSON.stringify(raw, null, 2)}\n`);
  process.stdout.write(`wrote ${output}\n`);
  const config = parseLocalConfig(raw, dirname(output), output);
  const mailbox = config.mailboxes[0];
  if (mailbox === undefined) return EXIT.ok;
  const secrets = new LocalSecretStore(localPaths(config.local.dataDir).credentials);
  if (interactive) {
    const password = await io.askHidden(
      `POP3 password for ${mailbox.pop3.user} (stored in ${localPaths(config.local.dataDir).credentials}, empty: keep)`,
    );
    if (password !== "") await secrets.set(mailbox.pop3.passwordSecret, password);
  }
  process.stdout.write(
    `secrets: the POP3 password goes in ${describeSecretReference(mailbox.pop3.passwordSecret)} and the Google credentials JSON ({clientId, clientSecret, refreshToken}) in ${describeSecretReference(mailbox.gmail.credentialsSecret)}, in ${localPaths(config.local.dataDir).credentials} (mode 0600) or POP2GMAIL_SECRET_* variables\n`,
  );
  if (values["mark-existing-delivered"]) {
    const lock = await acquireRunLock(config.local.dataDir);
    const runtime = await openLocalRuntime(config, { secrets });
    try {
      const marked = await markExistingDelivered(runtime, mailbox);
      if (marked.busy !== undefined) {
        process.stderr.write(
          `pop2gmail: the mailbox is busy (${marked.busy}); nothing was marked\n  what to do: close the other POP3 client and run init again with --force --mark-existing-delivered\n`,
        );
        return EXIT.failure;
      }
      process.stdout.write(
        `marked ${marked.marked} of the ${marked.onServer} messages on the server as already delivered: they are neither imported nor deleted\n`,
      );
    } finally {
      await runtime.close();
      await lock.release();
    }
  }
  if (!interactive) {
    process.stdout.write(`next: pop2gmail check --config ${output}, then pop2gmail run --config ${output}\n`);
    if (mailbox.gmail.auth === "oauth")
      process.stdout.write(`for the Gmail owner: ${inviteCommandLine(tenant, output, mailbox.id)}\n`);
    return EXIT.ok;
  }
  return offerNextSteps(io, config, output, tenant, mailbox);
}

/** `init`'s last questions: run `check` now; for consumer Gmail, make the invite link now. */
async function offerNextSteps(
  io: Prompter,
  config: ReturnType<typeof parseLocalConfig>,
  output: string,
  tenant: string,
  mailbox: ReturnType<typeof parseLocalConfig>["mailboxes"][number],
): Promise<number> {
  if (/^y/i.test(await io.ask("Run pop2gmail check now? (y/n)", "y")))
    await checkCommand(["--config", output]);
  if (mailbox.gmail.auth !== "oauth") {
    io.say(`next: pop2gmail run --config ${output}`);
    return EXIT.ok;
  }
  const clientFile = await io.ask(
    `Make the link that lets ${mailbox.gmail.user} connect Gmail? Path of the OAuth "Web application" client JSON (empty: later)`,
  );
  if (clientFile === "") {
    io.say(`later: ${inviteCommandLine(tenant, output, mailbox.id)}, then pop2gmail serve ${output}`);
    return EXIT.ok;
  }
  const json = JSON.parse(await readFile(clientFile, "utf8")) as {
    web?: { client_id?: string; client_secret?: string };
  };
  const web = json.web;
  if (!web?.client_id || !web.client_secret) {
    io.say(
      `  ${clientFile} is not a "Web application" client file; later: ${inviteCommandLine(tenant, output, mailbox.id)}`,
    );
    return EXIT.ok;
  }
  const link = await createInviteLink(config, {
    mailboxId: mailbox.id,
    expires: "7d",
    url: `http://127.0.0.1:${DEFAULT_ONBOARDING_PORT}`,
    client: { clientId: web.client_id, clientSecret: web.client_secret },
  });
  process.stdout.write(
    `send this link to ${mailbox.gmail.user} (valid 7 days; it opens while \`pop2gmail serve ${output}\` runs):\n\n  ${link.url}\n\n`,
  );
  return EXIT.ok;
}

function inviteCommandLine(tenant: string, output: string, mailboxId: string): string {
  const config = output.endsWith(`${tenant}.local.json`) ? tenant : `--config ${output}`;
  return `pop2gmail invite ${config} --mailbox ${mailboxId} --client-file web_client.json`;
}

/** The first complaint of `schema` about an answer, or undefined when it accepts it. */
function reasonOf(schema: z.ZodType, fallbackReason?: string): (answer: string) => string | undefined {
  return (answer) => {
    const result = schema.safeParse(answer);
    if (result.success) return undefined;
    return fallbackReason ?? result.error.issues[0]?.message ?? "not accepted";
  };
}
