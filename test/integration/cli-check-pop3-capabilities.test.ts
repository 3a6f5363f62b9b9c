import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GmailApiStandIn } from "../fakes/gmail-api-stand-in";
import { ScriptedPop3Server } from "../fakes/scripted-pop3-server";
import { runCli } from "./support/cli-process";
import { secretEnv, writeLocalConfig } from "./support/local-config-file";

/**
 * Issue 11 items 1 and 2: `pop2gmail check` reports a server's UTF8 (Courier) and its login delay
 * (Cyrus), and calls a login refused for the delay a login delay, not a lock by another client.
 */
const grant = { clientId: "chk", clientSecret: "chk-secret", refreshToken: "chk-capabilities" };

interface Step {
  readonly step: string;
  readonly ok: boolean;
  readonly detail?: string;
  readonly cause?: string;
}

describe("pop2gmail check and what the POP3 server announces", () => {
  let dir: string;
  let gmail: GmailApiStandIn;
  let pop3: ScriptedPop3Server;
  let config: string;
  const env = secretEnv("right-password", grant);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pop2gmail-check-capabilities-"));
    gmail = new GmailApiStandIn();
    const google = await gmail.start();
    gmail.registerOAuthUser({ user: "owner@acme.example", ...grant });
    // The child process logs in on the real clock, so the server counts the delay on it too.
    pop3 = new ScriptedPop3Server({
      users: { box: "right-password" },
      messages: [],
      utf8: true,
      loginDelay: { seconds: 60, now: () => Date.now() },
    });
    const { port } = await pop3.start();
    config = await writeLocalConfig({
      dir,
      pop3: { host: "127.0.0.1", port, tls: "none", user: "box" },
      google,
      gmailUser: "owner@acme.example",
    });
  });

  afterAll(async () => {
    await pop3?.stop();
    await gmail?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("reports UTF8 and the login delay with the poll interval it allows, then names a refused login a login delay", async () => {
    // Act
    const first = await runCli(["check", "--config", config, "--json"], env);
    const second = await runCli(["check", "--config", config, "--json"], env);

    // Assess
    const stepsOf = (stdout: string) => (JSON.parse(stdout) as { steps: Step[] }).steps;
    const firstSteps = stepsOf(first.stdout);
    expect(firstSteps.find((s) => s.step === "pop3 utf8")).toMatchObject({
      ok: true,
      detail: expect.stringContaining("UTF8 accepted"),
    });
    expect(firstSteps.find((s) => s.step === "pop3 login delay")?.detail).toMatch(
      /LOGIN-DELAY 60 s .*one session.*every 60 s/,
    );
    const refused = stepsOf(second.stdout).find((s) => s.step === "pop3 login");
    expect(refused).toMatchObject({ ok: false, cause: expect.stringContaining("login delay") });
    expect(refused?.cause).not.toContain("locked by another client");
  });
});
