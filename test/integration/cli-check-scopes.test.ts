import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GMAIL_SCOPES, GmailApiStandIn } from "../fakes/gmail-api-stand-in";
import { ScriptedPop3Server } from "../fakes/scripted-pop3-server";
import { runCli } from "./support/cli-process";

/**
 * Issue 10 item 2: `pop2gmail check` says when the Google grant lacks the read scope a look-up of
 * an uncertain import needs, and what pop2gmail does instead (re-import the same copy; Gmail
 * merges it by its Message-ID). A warning, not a failure.
 */
const grants = {
  insertOnly: { clientId: "chk", clientSecret: "chk-secret", refreshToken: "chk-insert-only" },
  withRead: { clientId: "chk", clientSecret: "chk-secret", refreshToken: "chk-with-read" },
};

describe("pop2gmail check and the Gmail read scope", () => {
  let dir: string;
  let gmail: GmailApiStandIn;
  let pop3: ScriptedPop3Server;
  let config: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pop2gmail-check-scopes-"));
    gmail = new GmailApiStandIn();
    const google = await gmail.start();
    gmail.registerOAuthUser({
      user: "insert-only@acme.example",
      ...grants.insertOnly,
      scopes: [GMAIL_SCOPES.insert, GMAIL_SCOPES.labels],
    });
    gmail.registerOAuthUser({
      user: "with-read@acme.example",
      ...grants.withRead,
      scopes: [GMAIL_SCOPES.insert, GMAIL_SCOPES.labels, GMAIL_SCOPES.readonly],
    });
    pop3 = new ScriptedPop3Server({ users: { box: "right-password" }, messages: [] });
    const { port } = await pop3.start();
    const mailbox = (id: string, secret: string) => ({
      id,
      pop3: {
        host: "127.0.0.1",
        port,
        tls: "none",
        allowPlaintext: true,
        user: "box",
        passwordSecret: "pop3",
      },
      gmail: { user: id, credentialsSecret: secret },
    });
    config = join(dir, "check.json");
    await writeFile(
      config,
      JSON.stringify({
        tenant: "acme",
        google: { apiBaseUrl: google.baseUrl, tokenUrl: google.tokenUrl },
        local: { dataDir: "./check-data" },
        mailboxes: [
          mailbox("insert-only@acme.example", "google-insert-only"),
          mailbox("with-read@acme.example", "google-with-read"),
        ],
      }),
    );
  });

  afterAll(async () => {
    await pop3?.stop();
    await gmail?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("warns about a grant without read scope and names the fallback and the fix, and passes", async () => {
    // Act
    const result = await runCli(["check", "--config", config, "--json"], {
      POP2GMAIL_SECRET_POP3: "right-password",
      POP2GMAIL_SECRET_GOOGLE_INSERT_ONLY: JSON.stringify(grants.insertOnly),
      POP2GMAIL_SECRET_GOOGLE_WITH_READ: JSON.stringify(grants.withRead),
    });

    // Assess
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const steps = JSON.parse(result.stdout).steps as { mailboxId: string; step: string; warning?: string }[];
    const scopes = (id: string) => steps.find((s) => s.mailboxId === id && s.step === "google scopes");
    expect(scopes("insert-only@acme.example")?.warning).toMatch(/no read scope/);
    expect(scopes("insert-only@acme.example")?.warning).toMatch(/imports the same copy again/);
    expect(scopes("insert-only@acme.example")?.warning).toContain("pop2gmail auth google acme --read-scope");
    expect(scopes("with-read@acme.example")?.warning).toBeUndefined();
  });
});
