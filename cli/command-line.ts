import { existsSync } from "node:fs";
import { asksForHelp, HELP, VERB_HELP } from "./help";
import { EXIT, reportError, UsageError } from "./output";

type Command = (args: readonly string[]) => Promise<number>;

async function lazy(load: () => Promise<Command>, args: readonly string[]): Promise<number> {
  return (await load())(args);
}

/**
 * Maps a verb to its command. Every command loads on demand, so `help` loads none and `demo` does
 * not pay for `check`'s imports (in the built command each is its own chunk).
 */
export async function main(argv: readonly string[]): Promise<number> {
  const [verb, ...rest] = argv;
  // `<verb> --help` and `help <verb>` answer before any flag parsing: no config, no side effect.
  // init prints its own help (every flag it takes).
  const helpFor = verb === "help" ? rest[0] : verb !== "init" && asksForHelp(rest) ? verb : undefined;
  if (helpFor !== undefined && helpFor !== "init") {
    const text = VERB_HELP[helpFor];
    if (text !== undefined) {
      process.stdout.write(`${text}\n`);
      return EXIT.ok;
    }
    if (verb === "help") return reportError(new UsageError(`unknown verb "${helpFor}"`));
  }
  if (verb === "help" && rest[0] === "init") return main(["init", "--help"]);
  const args = withConfigShorthand(rest);
  // `--aws` verbs name a deployed tenant, not a local config: no config shorthand for them.
  const aws = rest.includes("--aws");
  try {
    switch (verb) {
      case "demo":
        return await lazy(async () => (await import("./commands/demo")).demoCommand, args);
      case "run":
        return await lazy(async () => (await import("./commands/run")).runCommand, args);
      case "init":
        return await lazy(async () => (await import("./commands/init")).initCommand, rest);
      case "check":
        return await lazy(async () => (await import("./commands/check")).checkCommand, args);
      case "status":
        if (aws)
          return await lazy(async () => (await import("./commands/aws-status")).awsStatusCommand, rest);
        return await lazy(async () => (await import("./commands/status")).statusCommand, args);
      case "invite":
        if (aws) return await lazy(async () => (await import("./commands/invite")).inviteAwsCommand, rest);
        return await lazy(async () => (await import("./commands/invite")).inviteCommand, args);
      case "serve":
        return await lazy(async () => (await import("./commands/serve")).serveCommand, args);
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
      case "fleet":
        return await lazy(async () => (await import("./commands/fleet")).fleetCommand, rest);
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
