import { existsSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { serve as serveNode } from "@hono/node-server";
import type { Hono } from "hono";
import { LocalSecretStore } from "../../shared/adapters/local/local-secret-store";
import { SqliteLedger } from "../../shared/adapters/local/sqlite-ledger";
import { systemClock } from "../../shared/adapters/system-clock";
import { checkGoogleConnection, googleEndpoints } from "../../shared/adapters/web/google-oauth";
import { ledgerMailboxStatus } from "../../shared/adapters/web/ledger-status";
import { createOnboardingApp, onboardingSecretOf } from "../../shared/adapters/web/onboarding-app";
import type { MailboxStatusView } from "../../shared/adapters/web/onboarding-pages";
import type { LocalConfig } from "../../shared/config/local-config";
import type { Clock } from "../../shared/ports/clock";
import { EXIT, UsageError } from "../output";
import { localPaths } from "../runtime/local-runtime";
import { configAndFlags } from "./local-context";
import { PRE_EXISTING_CODE } from "./mark-existing";

/** The port `serve` listens on and `invite` links to unless told otherwise. */
export const DEFAULT_ONBOARDING_PORT = 8470;

/** A running onboarding server. */
export interface OnboardingServer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves the onboarding pages (docs/onboarding.md) for a local config on 127.0.0.1 only: the
 * same handler as the Lambda, with the credentials file as its secret store and the SQLite ledger
 * for the status view. `publicUrl` is what the browser and Google's redirect see.
 */
export async function startOnboardingServer(
  config: LocalConfig,
  options: { port: number; publicUrl?: string; clock?: Clock; log?: (line: string) => void },
): Promise<OnboardingServer> {
  const clock = options.clock ?? systemClock;
  const secrets = new LocalSecretStore(localPaths(config.local.dataDir).credentials);
  const endpoints = googleEndpoints(config.google);
  // Listen first: the redirect URI names the port, which is known only once listening.
  let app: Hono | undefined;
  const server = await new Promise<ReturnType<typeof serveNode>>((resolve, reject) => {
    const started = serveNode(
      {
        fetch: (request, env) =>
          app === undefined ? new Response(null, { status: 503 }) : app.fetch(request, env),
        port: options.port,
        hostname: "127.0.0.1",
      },
      () => resolve(started),
    );
    started.once("error", reject);
  });
  const publicUrl = options.publicUrl ?? `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  app = createOnboardingApp({
    tenant: config.tenant,
    mailboxes: config.mailboxes,
    google: endpoints,
    publicUrl,
    secrets,
    onboardingSecret: onboardingSecretOf(config, "local"),
    status: (mailboxId) => localMailboxStatus(config, mailboxId, clock.now()),
    checkGoogle: (mailbox) => checkGoogleConnection({ endpoints, secrets, clock }, mailbox),
    clock,
    clientKey: (c) => {
      const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)
        ?.incoming;
      return incoming?.socket?.remoteAddress ?? "local";
    },
    log: (event) => options.log?.(JSON.stringify(event)),
  });
  return {
    url: publicUrl,
    close: () =>
      new Promise<void>((resolve) => {
        if ("closeAllConnections" in server) server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The status view's figures from the local ledger, with the last poll it records. */
export async function localMailboxStatus(
  config: LocalConfig,
  mailboxId: string,
  now: number,
): Promise<MailboxStatusView> {
  const path = localPaths(config.local.dataDir).ledger;
  if (!existsSync(path))
    return { lastPoll: "never", deliveredToday: 0, delayP95Ms: undefined, quarantined: [] };
  const ledger = new SqliteLedger({ path });
  try {
    const poll = ledger.lastPolls().find((p) => p.tenant === config.tenant && p.mailboxId === mailboxId);
    return await ledgerMailboxStatus(
      ledger,
      { tenant: config.tenant, mailboxId },
      {
        midnight: new Date(now).setHours(0, 0, 0, 0),
        lastPoll:
          poll === undefined
            ? "never"
            : {
                at: poll.at,
                ok: poll.ok,
                ...(poll.errorCode === undefined ? {} : { errorCode: poll.errorCode }),
              },
        hiddenCodes: [PRE_EXISTING_CODE],
      },
    );
  } finally {
    ledger.close();
  }
}

/**
 * `pop2gmail serve <tenant> [--port 8470] [--public-url URL]`: the onboarding pages for the local
 * runtime, on 127.0.0.1. Runs until interrupted; logs one JSON line per event, never a token.
 */
export async function serveCommand(args: readonly string[]): Promise<number> {
  const { config, values } = await configAndFlags("serve", args, {
    port: { type: "string" },
    "public-url": { type: "string" },
  });
  const port = typeof values.port === "string" ? Number(values.port) : DEFAULT_ONBOARDING_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError("--port takes a port number");
  const server = await startOnboardingServer(config, {
    port,
    ...(typeof values["public-url"] === "string" ? { publicUrl: values["public-url"] } : {}),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`serving the onboarding pages of ${config.tenant} at ${server.url} (Ctrl-C stops)\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await server.close();
  return EXIT.ok;
}
