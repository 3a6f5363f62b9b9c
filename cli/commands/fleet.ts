import { UsageError } from "../output";

/**
 * `pop2gmail fleet status|deploy`: the provider's view of every tenant in one account and
 * region (docs/deploy.md section 10). Each sub-verb loads on demand.
 */
export async function fleetCommand(args: readonly string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "status":
      return (await import("./fleet-status")).fleetStatusCommand(rest);
    case "deploy":
      return (await import("./fleet-deploy")).fleetDeployCommand(rest);
    default:
      throw new UsageError(
        sub === undefined ? "fleet needs status or deploy" : `unknown fleet verb "${sub}"`,
        "Run `pop2gmail fleet status [--json]` or `pop2gmail fleet deploy --dry-run`; `pop2gmail fleet --help` explains both.",
      );
  }
}
