import { chmod, mkdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ScriptedPop3Server } from "../fakes/scripted-pop3-server";
import { messageWithAttachment } from "../fixtures/awkward-messages";
import { runCli } from "./support/cli-process";
import { type LocalWorld, startLocalWorld } from "./support/local-world";

/**
 * Issue 10 items 4 and 11: the exit code and the summary of `run` and `check` tell the truth.
 * A config key we do not know, a missing secret and a credentials file others can read are
 * config errors (exit 2, nothing touched); a run that quarantined a message is not a success
 * (exit 1, and the summary says why); the data dir and the ledger are the owner's alone.
 */
const GMAIL_USER = "owner@acme.example";
const oauth = { clientId: "exit-test", clientSecret: "exit-test-secret", refreshToken: "exit-test-refresh" };

describe("pop2gmail exit codes and files", () => {
  let dir: string;
  let google: { baseUrl: string; tokenUrl: string };
  const servers: ScriptedPop3Server[] = [];

  let world: LocalWorld | undefined;

  beforeAll(async () => {
    world = await startLocalWorld("pop2gmail-cli-exit-", GMAIL_USER, oauth, servers);
    ({ dir, google } = world);
  });

  afterAll(() => world?.stop());

  async function pop3Server(messages: Buffer[]): Promise<{ server: ScriptedPop3Server; port: number }> {
    const server = new ScriptedPop3Server({ users: { box: "right-password" }, messages });
    servers.push(server);
    return { server, port: (await server.start()).port };
  }

  function mailbox(id: string, port: number, extra: Record<string, unknown> = {}) {
    return {
      id,
      pop3: {
        host: "127.0.0.1",
        port,
        tls: "none",
        allowPlaintext: true,
        user: "box",
        passwordSecret: "pop3",
      },
      gmail: { user: GMAIL_USER, credentialsSecret: "google" },
      ...extra,
    };
  }

  async function writeConfig(name: string, mailboxes: unknown[]): Promise<string> {
    const path = join(dir, `${name}.jsonc`);
    const config = {
      tenant: "acme",
      google: { apiBaseUrl: google.baseUrl, tokenUrl: google.tokenUrl, quotaUnitsPerMinute: 1_000_000 },
      local: { dataDir: `./${name}-data`, maxRetryWaitSeconds: 0 },
      mailboxes,
    };
    await writeFile(path, `// ${name}\n${JSON.stringify(config, null, 2)}\n`);
    return path;
  }

  const env = { POP2GMAIL_SECRET_POP3: "right-password", POP2GMAIL_SECRET_GOOGLE: JSON.stringify(oauth) };
  const keep = () => Buffer.from("Subject: keep me\r\nMessage-ID: <keep@acme.example>\r\n\r\nkeep\r\n");

  it("run --once with a config key typo (deleteAftr) exits 2 naming the key, and leaves the message on the server", async () => {
    // Prepare
    const { server, port } = await pop3Server([keep()]);
    const path = await writeConfig("typo", [mailbox("typo@acme.example", port, { deleteAftr: "never" })]);
    // Act
    const result = await runCli(["run", "--config", path, "--once"], env);
    // Assess
    expect(result.code, result.stdout + result.stderr).toBe(2);
    expect(result.stderr).toContain(
      'mailboxes[0].deleteAftr: unknown key "deleteAftr"; did you mean "deleteAfter"?',
    );
    expect(server.remainingMessages()).toEqual([keep()]);
    expect(server.connections).toBe(0);
  });

  it("run --once with a missing secret exits 2 and names the secret, deleting nothing", async () => {
    // Prepare
    const { server, port } = await pop3Server([keep()]);
    const path = await writeConfig("missing-secret", [mailbox("missing@acme.example", port)]);
    // Act
    const result = await runCli(["run", "--config", path, "--once"], {
      POP2GMAIL_SECRET_GOOGLE: JSON.stringify(oauth),
    });
    // Assess
    expect(result.code, result.stdout + result.stderr).toBe(2);
    expect(result.stdout + result.stderr).toContain('the secret "pop3" is not set');
    expect(result.stdout + result.stderr).toContain("POP2GMAIL_SECRET_POP3");
    expect(server.remainingMessages()).toEqual([keep()]);
  });

  it("run --once with a credentials file other users can read exits 2 and says to chmod it", async () => {
    // Prepare
    const { server, port } = await pop3Server([keep()]);
    const path = await writeConfig("loose-mode", [mailbox("loose@acme.example", port)]);
    const dataDir = join(dir, "loose-mode-data");
    await mkdir(dataDir, { recursive: true });
    const credentials = join(dataDir, "credentials.json");
    await writeFile(credentials, JSON.stringify({ pop3: "right-password", google: oauth }));
    await chmod(credentials, 0o644);
    // Act
    const result = await runCli(["run", "--config", path, "--once"]);
    // Assess
    expect(result.code, result.stdout + result.stderr).toBe(2);
    expect(result.stdout + result.stderr).toContain(`chmod 600 ${credentials}`);
    expect(result.stdout + result.stderr).not.toContain("right-password");
    expect(server.remainingMessages()).toEqual([keep()]);
  });

  it("run --once that quarantined a message exits 1 and its summary says why", async () => {
    // Prepare
    const big = messageWithAttachment(8 * 1024, 5).bytes;
    const { port } = await pop3Server([keep(), big]);
    const path = await writeConfig("quarantined", [
      mailbox("quarantined@acme.example", port, { maxMessageBytes: 8 * 1024 }),
    ]);
    // Act
    const result = await runCli(["run", "--config", path, "--once"], env);
    const json = await runCli(["run", "--config", path, "--once", "--json"], env);
    // Assess
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stdout).toContain("1 quarantined");
    expect(result.stdout).toMatch(/quarantined@acme\.example: 1 message\(s\) quarantined.*quarantine list/);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ exitCode: 0, reasons: [] });
  });

  it("keeps the data dir 0700 and ledger.sqlite 0600, tightening a data dir made too open", async () => {
    // Prepare
    const { port } = await pop3Server([keep()]);
    const path = await writeConfig("modes", [mailbox("modes@acme.example", port)]);
    const dataDir = join(dir, "modes-data");
    await mkdir(dataDir, { recursive: true });
    await chmod(dataDir, 0o755);
    // Act
    const result = await runCli(["run", "--config", path, "--once"], env);
    // Assess
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dataDir, "ledger.sqlite"))).mode & 0o777).toBe(0o600);
  });

  it("check with a missing secret exits 2 and names the secret", async () => {
    // Prepare
    const { port } = await pop3Server([]);
    const path = await writeConfig("check-missing", [mailbox("check-missing@acme.example", port)]);
    // Act
    const result = await runCli(["check", "--config", path], {
      POP2GMAIL_SECRET_GOOGLE: JSON.stringify(oauth),
    });
    // Assess
    expect(result.code, result.stdout + result.stderr).toBe(2);
    expect(result.stdout).toContain('the secret "pop3" is not set');
  });

  it("check warns when the Gmail profile address differs from gmail.user", async () => {
    // Prepare
    const { port } = await pop3Server([]);
    const path = await writeConfig("profile", [
      {
        ...mailbox("profile@acme.example", port),
        gmail: { user: "other@acme.example", credentialsSecret: "google" },
      },
    ]);
    // Act
    const result = await runCli(["check", "--config", path, "--json"], env);
    // Assess
    const steps = JSON.parse(result.stdout).steps as { step: string; warning?: string }[];
    const profile = steps.find((s) => s.step === "google profile");
    expect(profile?.warning).toContain(GMAIL_USER);
    expect(profile?.warning).toContain("other@acme.example");
  });
});
