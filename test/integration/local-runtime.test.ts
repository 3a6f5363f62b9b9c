import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeRun } from "../../cli/commands/run";
import { createLocalRuntime } from "../../cli/runtime/local-runtime";
import { runOnce } from "../../cli/runtime/run-local";
import { parseLocalConfig } from "../../shared/config/local-config";
import type { SecretStore } from "../../shared/ports/secret-store";
import { GmailApiStandIn } from "../fakes/gmail-api-stand-in";
import { TestClock } from "../fakes/in-memory-clock";
import { RawPop3Reader } from "../fakes/raw-pop3-reader";
import { ScriptedPop3Server } from "../fakes/scripted-pop3-server";
import { generateMailbox } from "../fixtures/awkward-messages";

/**
 * The local runtime in-process (no child process): how `runOnce` reports a mailbox it could not
 * work on. A busy or broken mailbox is never "done", and the operator is told what to do.
 */
const oauth = { clientId: "rt", clientSecret: "rt-secret", refreshToken: "rt-refresh" };

describe("local runtime runOnce", () => {
  let dir: string;
  let gmail: GmailApiStandIn;
  let google: { baseUrl: string; tokenUrl: string };
  const servers: ScriptedPop3Server[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pop2gmail-runtime-"));
    gmail = new GmailApiStandIn();
    google = await gmail.start();
    gmail.registerOAuthUser({ user: "owner@acme.example", ...oauth });
  });

  afterAll(async () => {
    for (const server of servers) await server.stop();
    await gmail?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function runtimeFor(name: string, password: string) {
    const server = new ScriptedPop3Server({
      users: { box: "right" },
      messages: generateMailbox(3, 81).map((m) => m.bytes),
    });
    servers.push(server);
    const { port } = await server.start();
    const config = parseLocalConfig(
      {
        tenant: "acme",
        google: { apiBaseUrl: google.baseUrl, tokenUrl: google.tokenUrl },
        local: { dataDir: join(dir, name), maxRetryWaitSeconds: 0 },
        mailboxes: [
          {
            id: `${name}@acme.example`,
            pop3: {
              host: "127.0.0.1",
              port,
              tls: "none",
              allowPlaintext: true,
              user: "box",
              passwordSecret: "pop3",
            },
            gmail: { user: "owner@acme.example", credentialsSecret: "google" },
          },
        ],
      },
      dir,
    );
    const secrets: SecretStore = { get: async (n) => (n === "pop3" ? password : JSON.stringify(oauth)) };
    return { runtime: createLocalRuntime(config, { secrets, clock: new TestClock() }), server, port };
  }

  it("reports a wrong POP3 password as the mailbox's failure with what to do, and is not ok", async () => {
    // Prepare
    const { runtime } = await runtimeFor("wrong", "not-the-password");
    // Act
    const summary = await runOnce(runtime).finally(() => runtime.close());
    // Assess
    expect(summary.ok).toBe(false);
    expect(summary.mailboxes[0]?.failure).toMatchObject({
      code: "CREDENTIALS_REJECTED",
      hint: expect.stringContaining("password"),
    });
    expect(describeRun(summary)).toMatch(/FAILED: .*\n {2}what to do: /);
    expect(describeRun(summary)).not.toContain("not-the-password");
  });

  it("treats a mailbox locked by another client as busy, then finishes once it is free", async () => {
    // Prepare
    const { runtime, server, port } = await runtimeFor("busy", "right");
    const otherClient = await RawPop3Reader.login("127.0.0.1", port, "box", "right");
    // Act
    const whileLocked = await runOnce(runtime);
    await otherClient.quit();
    const afterwards = await runOnce(runtime).finally(() => runtime.close());
    // Assess
    expect(whileLocked.ok).toBe(false);
    expect(whileLocked.mailboxes[0]?.busy).toBe("IN-USE");
    expect(describeRun(whileLocked)).toContain("try again later");
    expect(afterwards.ok).toBe(true);
    expect(afterwards.mailboxes[0]).toMatchObject({ copied: 3, deleted: 3, inFlight: 0 });
    expect(server.remainingMessages()).toHaveLength(0);
  });
});
