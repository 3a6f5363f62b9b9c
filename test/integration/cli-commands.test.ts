import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SqliteLedger } from "../../shared/adapters/local/sqlite-ledger";
import { GmailApiStandIn } from "../fakes/gmail-api-stand-in";
import { ScriptedPop3Server } from "../fakes/scripted-pop3-server";
import { createTestCertificates } from "../fakes/test-certificates";
import {
  generateMailbox,
  messageWithAttachment,
  messageWithoutMessageId,
} from "../fixtures/awkward-messages";
import { runCli, servedForm, startCli } from "./support/cli-process";

/**
 * The operator's verbs as child processes: init's validation, check's causes and fixes, status,
 * quarantine and replay after a run, against the scripted POP3 server and the Gmail API stand-in.
 */
const GMAIL_USER = "owner@acme.example";
const oauth = { clientId: "cmd-test", clientSecret: "cmd-test-secret", refreshToken: "cmd-test-refresh" };
const expired = { clientId: "cmd-test", clientSecret: "cmd-test-secret", refreshToken: "cmd-test-expired" };

describe("pop2gmail operator commands", () => {
  let dir: string;
  let gmail: GmailApiStandIn;
  let google: { baseUrl: string; tokenUrl: string };
  const servers: ScriptedPop3Server[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pop2gmail-cli-cmd-"));
    gmail = new GmailApiStandIn();
    google = await gmail.start();
    gmail.registerOAuthUser({ user: GMAIL_USER, ...oauth });
    gmail.registerOAuthUser({ user: "expired@acme.example", ...expired });
    gmail.revokeRefreshToken(expired.refreshToken);
  });

  afterAll(async () => {
    for (const server of servers) await server.stop();
    await gmail?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function pop3Server(messages: Buffer[], tls?: { key: string; cert: string }): Promise<number> {
    const server = new ScriptedPop3Server({
      users: { box: "right-password" },
      messages,
      ...(tls === undefined ? {} : { tls: { ...tls, mode: "implicit" as const } }),
    });
    servers.push(server);
    return (await server.start()).port;
  }

  function mailbox(
    id: string,
    port: number,
    extra: { tls?: "implicit"; gmailUser?: string; secret?: string; maxMessageBytes?: number } = {},
  ) {
    return {
      id,
      pop3: {
        host: "127.0.0.1",
        port,
        ...(extra.tls === "implicit" ? { tls: "implicit" } : { tls: "none", allowPlaintext: true }),
        user: "box",
        passwordSecret: extra.secret ?? "pop3-right",
      },
      gmail: {
        user: extra.gmailUser ?? GMAIL_USER,
        credentialsSecret: extra.gmailUser ? "google-expired" : "google",
      },
      ...(extra.maxMessageBytes === undefined ? {} : { maxMessageBytes: extra.maxMessageBytes }),
    };
  }

  async function writeConfig(name: string, mailboxes: unknown[]): Promise<string> {
    const path = join(dir, `${name}.json`);
    const config = {
      tenant: "acme",
      google: { apiBaseUrl: google.baseUrl, tokenUrl: google.tokenUrl, quotaUnitsPerMinute: 1_000_000 },
      local: { dataDir: `./${name}-data`, maxRetryWaitSeconds: 0 },
      mailboxes,
    };
    await writeFile(path, JSON.stringify(config));
    return path;
  }

  const env = {
    POP2GMAIL_SECRET_POP3_RIGHT: "right-password",
    POP2GMAIL_SECRET_POP3_WRONG: "s3cret-not-this-one",
    POP2GMAIL_SECRET_GOOGLE: JSON.stringify(oauth),
    POP2GMAIL_SECRET_GOOGLE_EXPIRED: JSON.stringify(expired),
  };

  it("init rejects invalid flags with exit 2, naming every bad field", async () => {
    // Prepare
    const output = join(dir, "invalid.local.json");
    // Act
    const result = await runCli([
      "init",
      "acme",
      "--no-input",
      "--output",
      output,
      "--mailbox-id",
      "info@acme.example",
      "--pop3-host",
      "pop.acme.example",
      "--pop3-tls",
      "none",
      "--gmail-user",
      "not-an-address",
      "--poll-seconds",
      "5",
    ]);
    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("mailboxes[0].gmail.user");
    expect(result.stderr).toContain("mailboxes[0].pop3.allowPlaintext");
    expect(result.stderr).toContain("mailboxes[0].pollSeconds");
    expect(result.stderr).toContain("what to do");
    await expect(readFile(output)).rejects.toThrow();
  });

  it("init writes a config that validates, and names the secrets to set", async () => {
    // Prepare
    const output = join(dir, "good.local.json");
    // Act
    const result = await runCli([
      "init",
      "acme",
      "--no-input",
      "--output",
      output,
      "--mailbox-id",
      "info@acme.example",
      "--pop3-host",
      "pop.acme.example",
      "--gmail-user",
      "owner@acme.example",
      "--delete-after",
      "30d",
    ]);
    const written = JSON.parse(await readFile(output, "utf8"));
    // Assess
    expect(result.code, result.stderr).toBe(0);
    expect(written.mailboxes[0]).toMatchObject({
      id: "info@acme.example",
      deleteAfter: "30d",
      pop3: { tls: "implicit", port: 995 },
    });
    expect(result.stdout).toContain("acme/info@acme.example/pop3-password");
  });

  it("check names the cause and the fix for a wrong password, a bad certificate and an expired token", async () => {
    // Prepare
    const certificates = await createTestCertificates(await mkdtemp(join(dir, "certs-")));
    const tlsPort = await pop3Server([], {
      key: await readFile(certificates.serverKeyPath, "utf8"),
      cert: await readFile(certificates.serverCertPath, "utf8"),
    });
    const plainPort = await pop3Server([Buffer.from("Subject: x\r\n\r\nx\r\n")]);
    const bad = await writeConfig("check-bad", [
      mailbox("wrong-password", plainPort, { secret: "pop3-wrong" }),
      mailbox("bad-certificate", tlsPort, { tls: "implicit" }),
      mailbox("expired-token", plainPort, { gmailUser: "expired@acme.example" }),
    ]);
    const good = await writeConfig("check-good", [mailbox("good", plainPort)]);
    // Act
    const failed = await runCli(["check", "--config", bad, "--json"], env);
    const passed = await runCli(["check", good], env);
    // Assess
    expect(failed.code).toBe(1);
    const steps = JSON.parse(failed.stdout).steps as {
      mailboxId: string;
      step: string;
      ok: boolean;
      cause?: string;
      fix?: string;
    }[];
    const failure = (id: string) => steps.find((s) => s.mailboxId === id && !s.ok);
    expect(failure("wrong-password")).toMatchObject({
      step: "pop3 login",
      cause: expect.stringContaining("wrong password"),
      fix: expect.stringContaining("password"),
    });
    expect(failure("bad-certificate")).toMatchObject({
      step: "pop3 connection",
      cause: expect.stringContaining("bad certificate"),
      fix: expect.stringContaining("caFile"),
    });
    expect(failure("expired-token")).toMatchObject({
      step: "google token",
      cause: expect.stringContaining("expired token"),
      fix: expect.stringContaining("auth google"),
    });
    expect(failed.stdout + failed.stderr).not.toContain("s3cret-not-this-one");
    expect(failed.stdout + failed.stderr).not.toContain(expired.refreshToken);
    expect(passed.code, passed.stdout + passed.stderr).toBe(0);
    expect(passed.stdout).toContain("all checks passed");
  });

  it("status --json, quarantine and replay report and act on what a run did", async () => {
    // Prepare
    const big = messageWithAttachment(8 * 1024, 5);
    const noId = messageWithoutMessageId();
    const mail = [...generateMailbox(6, 71).filter((m) => m.messageId !== undefined), noId, big];
    const port = await pop3Server(mail.map((m) => m.bytes));
    const config = await writeConfig("ops", [
      mailbox("ops@acme.example", port, { maxMessageBytes: 8 * 1024 }),
    ]);
    const run = await runCli(["run", "--config", config, "--once"], env);
    const storedBefore = gmail.messages(GMAIL_USER).length;
    const importsBefore = gmail.rawImports().length;
    // Act
    const status = await runCli(["status", "--config", config, "--json"], env);
    const listed = await runCli(["quarantine", "list", "--config", config, "--json"], env);
    const replay = await runCli(["replay", "--config", config, "--since", "2000-01-01", "--json"], env);
    const retried = await runCli(["quarantine", "retry", "--config", config, "--json"], env);
    const after = await runCli(["status", config, "--json"], env);
    // Assess
    // A run that quarantined a message is not a success (issue 10 item 11): exit 1, and it says why.
    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(run.stdout).toMatch(/ops@acme\.example: \d+ message\(s\) quarantined/);
    const box = JSON.parse(status.stdout).mailboxes[0];
    const copiedCount = mail.filter((m) => m.bytes.length <= 8 * 1024).length;
    expect(box.counts).toMatchObject({
      deleted: copiedCount,
      quarantined: mail.length - copiedCount,
      listed: 0,
    });
    expect(box.lastPoll).toMatchObject({ ok: true, lastSuccessAt: box.lastPoll.at });
    expect(box.pipelineDelayMs.samples).toBe(copiedCount);
    expect(box.quarantined[0]).toMatchObject({
      code: "MESSAGE_TOO_LARGE",
      reason: expect.stringContaining("maxMessageBytes"),
    });
    expect(JSON.parse(listed.stdout).messages).toHaveLength(mail.length - copiedCount);
    // Replay: every archived message goes again; Gmail merges those with a Message-ID, and the one
    // without a Message-ID that Gmail already holds is skipped rather than duplicated.
    const replayed = JSON.parse(replay.stdout);
    expect(replay.code, replay.stderr).toBe(0);
    expect(replayed.found).toBe(mail.length);
    expect(replayed.skipped.map((s: { why: string }) => s.why)).toEqual([
      expect.stringContaining("no Message-ID"),
    ]);
    expect(gmail.rawImports().length - importsBefore).toBe(replayed.imported);
    expect(gmail.messages(GMAIL_USER).length - storedBefore).toBe(mail.length - copiedCount);
    expect(JSON.parse(retried.stdout).messages[0]).toMatchObject({ released: true });
    expect(JSON.parse(after.stdout).mailboxes[0].counts).toMatchObject({
      quarantined: 0,
      archived: mail.length - copiedCount,
    });
  });

  it("run without --once stops cleanly on SIGTERM, finishing the message in hand", async () => {
    // Prepare
    const mail = generateMailbox(40, 72).filter((m) => m.messageId !== undefined);
    const port = await pop3Server(mail.map((m) => m.bytes));
    const config = await writeConfig("forever", [mailbox("forever@acme.example", port)]);
    const inGmail = (bytes: Buffer) => gmail.messages(GMAIL_USER).filter((m) => m.raw.equals(bytes)).length;
    const before = gmail.messages(GMAIL_USER).length;
    // Act
    const running = startCli(["run", "--config", config], env);
    while (gmail.messages(GMAIL_USER).length < before + 3) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    running.child.kill("SIGTERM");
    const stopped = await running.done;
    const ledger = new SqliteLedger({ path: join(dir, "forever-data", "ledger.sqlite") });
    const states = (
      await ledger.listByState({ tenant: "acme", mailboxId: "forever@acme.example" }, [
        "listed",
        "archived",
        "importing",
        "imported",
        "deleted",
      ])
    ).map((e) => e.state);
    ledger.close();
    const finish = await runCli(["run", "--config", config, "--once"], env);
    // Assess
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stderr).toContain("SIGTERM: finishing the message in hand");
    expect(states).not.toContain("importing");
    expect(states).not.toContain("imported");
    expect(states.filter((s) => s !== "deleted").length).toBeGreaterThan(0);
    expect(finish.code, finish.stdout + finish.stderr).toBe(0);
    for (const message of mail) expect(inGmail(servedForm(message.bytes)), message.name).toBe(1);
  });

  it("auth google runs the loopback OAuth flow with PKCE and stores the refresh token (mode 0600, never printed)", async () => {
    // Prepare
    const refreshToken = `refresh-${createHash("sha256").update("auth-test").digest("hex")}`;
    let challenge = "";
    const exchanges: URLSearchParams[] = [];
    const oauthServer = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const form = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
        exchanges.push(form);
        const verified =
          createHash("sha256")
            .update(form.get("code_verifier") ?? "")
            .digest("base64url") === challenge;
        const answer =
          form.get("grant_type") === "authorization_code" && form.get("code") === "the-code" && verified
            ? {
                refresh_token: refreshToken,
                access_token: "a1",
                expires_in: 3600,
                scope: "https://www.googleapis.com/auth/gmail.insert",
              }
            : form.get("grant_type") === "refresh_token" && form.get("refresh_token") === refreshToken
              ? {
                  access_token: "a2",
                  expires_in: 3600,
                  scope: "https://www.googleapis.com/auth/gmail.insert",
                }
              : { error: "invalid_grant" };
        res
          .writeHead("error" in answer ? 400 : 200, { "content-type": "application/json" })
          .end(JSON.stringify(answer));
      });
    });
    await new Promise<void>((resolve) => oauthServer.listen(0, "127.0.0.1", resolve));
    const tokenUrl = `http://127.0.0.1:${(oauthServer.address() as AddressInfo).port}/token`;
    const path = join(dir, "auth.json");
    await writeFile(
      path,
      JSON.stringify({
        tenant: "acme",
        google: { tokenUrl },
        local: { dataDir: "./auth-data" },
        mailboxes: [mailbox("auth@acme.example", 1)],
      }),
    );
    // Act
    const auth = startCli([
      "auth",
      "google",
      "--config",
      path,
      "--client-id",
      "cid",
      "--client-secret",
      "csecret",
      "--auth-url",
      "https://consent.example/auth",
    ]);
    let printed = "";
    const consent = await new Promise<URL>((resolve) => {
      auth.child.stdout?.on("data", (chunk: Buffer) => {
        printed += chunk.toString("utf8");
        const match = /https:\/\/consent\.example\/auth\S+/.exec(printed);
        if (match) resolve(new URL(match[0]));
      });
    });
    challenge = consent.searchParams.get("code_challenge") ?? "";
    const redirect = new URL(consent.searchParams.get("redirect_uri") ?? "");
    redirect.searchParams.set("code", "the-code");
    redirect.searchParams.set("state", consent.searchParams.get("state") ?? "");
    const browser = await fetch(redirect);
    const result = await auth.done;
    oauthServer.close();
    const credentialsPath = join(dir, "auth-data", "credentials.json");
    const stored = JSON.parse(await readFile(credentialsPath, "utf8"));
    // Assess
    expect(browser.status).toBe(200);
    expect(result.code, result.stderr).toBe(0);
    expect(redirect.hostname).toBe("127.0.0.1");
    expect(consent.searchParams.get("code_challenge_method")).toBe("S256");
    expect(consent.searchParams.get("scope")).toContain("gmail.insert");
    expect(stored.google).toEqual({ clientId: "cid", clientSecret: "csecret", refreshToken });
    expect((await stat(credentialsPath)).mode & 0o777).toBe(0o600);
    expect(result.stdout + result.stderr).not.toContain(refreshToken);
    expect(exchanges.map((e) => e.get("grant_type"))).toEqual(["authorization_code", "refresh_token"]);
  });
});
