#!/usr/bin/env -S npx tsx

import { existsSync } from "node:fs";
import { demoCommand } from "./commands/demo";
import { runCommand } from "./commands/run";
import { EXIT, reportError, UsageError } from "./output";

const HELP = `pop2gmail: moves mail from POP3 mailboxes into Gmail, with a byte-exact archive.

Usage: pop2gmail <verb> [flags]

  demo [--keep] [--json]                 run the whole pipeline against a local POP3 server and a
                                         Gmail API stand-in (no account needed)
  run --config FILE [--once] [--json]    the local runtime: poll every pollSeconds until Ctrl-C, or
                                         drain every mailbox once with --once
  init <tenant> [flags]                  write a config (asks on a terminal; see init --help)
  check --config FILE [--json]           test POP3 (TLS, login, STAT) and Google (token, profile, scopes)
  status --config FILE [--json]          counts per ledger state, last poll, delays, quarantined messages
  replay --config FILE --since DATE      re-import archived messages newer than DATE into Gmail
  quarantine list|retry --config FILE    show quarantined messages, or release them for another copy

A deployed tenant (stack Pop2Gmail-<tenant>; AWS credentials and region as for the AWS CLI):
  status --aws --tenant T [--json]       counts per ledger state, queue and DLQ depth, quarantined
  quarantine list|retry --aws --tenant T [--uidl U] [--json]
                                         retry also sends the released messages' copy jobs
  redrive --aws --tenant T [--max N] [--json]
                                         move the dead-letter queue's jobs back to the work queue
  with --region R, --stack NAME (default Pop2Gmail-<tenant>), --tenants-dir DIR (default
  tenants/), or the resources given directly instead of read from the stack's outputs:
  --table NAME --queue-url URL --dlq-url URL
  auth google --config FILE [--client-file client_secret.json] [--read-scope]
                                         OAuth consent on a loopback redirect; stores the refresh token
                                         in <dataDir>/credentials.json
  help                                   this text

The config may also be given as the first argument after the verb: a file, or a tenant whose
config init wrote as <tenant>.local.json (pop2gmail status acme).
Exit codes: 0 ok, 1 failure (a check failed; a run quarantined, failed, was busy or left messages
in flight), 2 usage or config error (unknown key, missing secret, credentials file others can read).
Secrets: POP2GMAIL_SECRET_<NAME> environment variables, or <dataDir>/credentials.json (mode 0600).`;

type Command = (args: readonly string[]) => Promise<number>;

async function lazy(load: () => Promise<Command>, args: readonly string[]): Promise<number> {
  return (await load())(args);
}

/** Maps a verb to its command; commands load on demand so `demo` does not pay for `check`'s imports. */
export async function main(argv: readonly string[]): Promise<number> {
  const [verb, ...rest] = argv;
  const args = withConfigShorthand(rest);
  // `--aws` verbs name a deployed tenant, not a local config: no config shorthand for them.
  const aws = rest.includes("--aws");
  try {
    switch (verb) {
      case "demo":
        return await demoCommand(args);
      case "run":
        return await runCommand(args);
      case "init":
        return await lazy(async () => (await import("./commands/init")).initCommand, rest);
      case "check":
        return await lazy(async () => (await import("./commands/check")).checkCommand, args);
      case "status":
        if (aws)
          return await lazy(async () => (await import("./commands/aws-status")).awsStatusCommand, rest);
        return await lazy(async () => (await import("./commands/status")).statusCommand, args);
      case "redrive":
        return await lazy(async () => (await import("./commands/redrive")).redriveCommand, rest);
      case "replay":
        return await lazy(async () => (await import("./commands/replay")).replayCommand, args);
      case "auth":
        if (rest[0] !== "google")
          throw new UsageError('auth needs "google": pop2gmail auth google --config FILE');
        return await lazy(
          async () => (await import("./commands/auth-google")).authGoogleCommand,
          withConfigShorthand(rest.slice(1)),
        );
      case "quarantine":
        if (aws) {
          return await lazy(
            async () => (await import("./commands/aws-quarantine")).awsQuarantineCommand,
            rest,
          );
        }
        return await lazy(
          async () => (await import("./commands/quarantine")).quarantineCommand,
          withConfigShorthand(rest.slice(1), rest[0]),
        );
      case undefined:
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(`${HELP}\n`);
        return verb === undefined ? EXIT.usage : EXIT.ok;
      default:
        throw new UsageError(`unknown verb "${verb}"`);
    }
  } catch (error) {
    if (error instanceof TypeError && "code" in error && String(error.code).startsWith("ERR_PARSE_ARGS")) {
      return reportError(new UsageError(error.message));
    }
    return reportError(error);
  }
}

/** `status local.json` means `status --config local.json`. */
function withConfigShorthand(args: readonly string[], first?: string): string[] {
  const [head, ...tail] = args;
  const prefix = first === undefined ? [] : [first];
  if (head !== undefined && !head.startsWith("-"))
    return [...prefix, "--config", configPathFor(head), ...tail];
  return [...prefix, ...args];
}

/** A config file, or a tenant whose config `init` wrote here as `<tenant>.local.json`. */
function configPathFor(tenantOrFile: string): string {
  return existsSync(tenantOrFile) || /\.jsonc?$/.test(tenantOrFile)
    ? tenantOrFile
    : `${tenantOrFile}.local.json`;
}

const exitCode = await main(process.argv.slice(2));
process.exitCode = exitCode;
