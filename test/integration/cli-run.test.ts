import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SqliteLedger } from "../../shared/adapters/local/sqlite-ledger";
import { archiveKeyFor } from "../../shared/core/archive-key";
import { type DovecotServer, startDovecot } from "../fakes/dovecot";
import { GmailApiStandIn } from "../fakes/gmail-api-stand-in";
import { awkwardMessages, generateMailbox } from "../fixtures/awkward-messages";
import { runCli, servedByUidl, sha256, startCli } from "./support/cli-process";
import { secretEnv, writeLocalConfig } from "./support/local-config-file";

/**
 * `pop2gmail run --once` as a child process against a real Dovecot (implicit TLS, test CA) and the
 * Gmail API stand-in: DESIGN.md invariants 1-3 seen from the outside (archive files, Gmail's
 * store, the maildrop), including a SIGKILL in the middle of a run.
 */
const USERS = { copy: "copy-password", kill: "kill-password", moving: "moving-password" };
const GMAIL_USER = "owner@acme.example";

describe("pop2gmail run --once against Dovecot and the Gmail API stand-in", () => {
  let dovecot: DovecotServer;
  let gmail: GmailApiStandIn;
  let google: { baseUrl: string; tokenUrl: string };
  let dir: string;
  let caFile: string;
  const oauth = { clientId: "cli-test", clientSecret: "cli-test-secret", refreshToken: "cli-test-refresh" };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pop2gmail-cli-run-"));
    [dovecot, gmail] = await Promise.all([
      startDovecot({ users: USERS }),
      Promise.resolve(new GmailApiStandIn()),
    ]);
    google = await gmail.start();
    gmail.registerOAuthUser({ user: GMAIL_USER, ...oauth });
    caFile = join(dir, "ca.pem");
    await writeFile(caFile, dovecot.caPem);
  });

  afterAll(async () => {
    await gmail?.stop();
    await dovecot?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function configFor(
    user: keyof typeof USERS,
    mailboxId: string,
  ): Promise<{ path: string; dataDir: string }> {
    const caseDir = await mkdtemp(join(dir, `${user}-`));
    const path = await writeLocalConfig({
      dir: caseDir,
      pop3: { host: dovecot.host, port: dovecot.tlsPort, tls: "implicit", user, caFile },
      google,
      gmailUser: GMAIL_USER,
      mailboxId,
    });
    return { path, dataDir: join(caseDir, "data") };
  }

  const inGmail = (bytes: Buffer) => gmail.messages(GMAIL_USER).filter((m) => m.raw.equals(bytes)).length;

  it("archives every message byte-exact, imports it once, empties the box; a second run does nothing", async () => {
    // Prepare
    const mail = [...awkwardMessages(), ...generateMailbox(20, 61)];
    for (const message of mail) await dovecot.deliver("copy", message.bytes);
    const served = await servedByUidl(dovecot.host, dovecot.plainPort, "copy", USERS.copy);
    const { path, dataDir } = await configFor("copy", "copy@acme.example");
    const env = secretEnv(USERS.copy, oauth);
    // Act
    const first = await runCli(["run", "--config", path, "--once", "--json"], env);
    const importsAfterFirst = gmail.rawImports().length;
    const second = await runCli(["run", "--config", path, "--once", "--json"], env);
    // Assess
    expect(first.code, first.stderr).toBe(0);
    expect(served.size).toBe(mail.length);
    for (const [uidl, bytes] of served) {
      const key = archiveKeyFor({ tenant: "acme", mailboxId: "copy@acme.example", uidl });
      expect(sha256(await readFile(join(dataDir, "archive", key))), uidl).toBe(sha256(bytes));
      expect(inGmail(bytes), uidl).toBe(1);
    }
    expect(await dovecot.storedMessageCount("copy")).toBe(0);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout).mailboxes[0]).toMatchObject({ newMessages: 0, copied: 0, inFlight: 0 });
    expect(gmail.rawImports().length).toBe(importsAfterFirst);
    const events = await readFile(join(dataDir, "events.jsonl"), "utf8");
    expect(events).toContain('"type":"imported"');
    expect(events).not.toContain(USERS.copy);
    expect(events).not.toContain(oauth.refreshToken);
  });

  it("loses and duplicates nothing when killed mid-run and run again", async () => {
    // Prepare
    const mail = generateMailbox(40, 62);
    for (const message of mail) await dovecot.deliver("kill", message.bytes);
    const served = await servedByUidl(dovecot.host, dovecot.plainPort, "kill", USERS.kill);
    const { path, dataDir } = await configFor("kill", "kill@acme.example");
    const env = secretEnv(USERS.kill, oauth);
    const before = gmail.messages(GMAIL_USER).length;
    // Act
    const killed = startCli(["run", "--config", path, "--once"], env);
    await until(() => gmail.messages(GMAIL_USER).length >= before + 3, killed.done);
    killed.child.kill("SIGKILL");
    const killedResult = await killed.done;
    const rerun = await runCli(["run", "--config", path, "--once", "--json"], env);
    // Assess
    expect(killedResult.signal).toBe("SIGKILL");
    expect(rerun.code, rerun.stderr + rerun.stdout).toBe(0);
    // The kill landed mid-run: the second run still had messages to copy.
    expect(JSON.parse(rerun.stdout).mailboxes[0].copied).toBeGreaterThan(0);
    const ledger = new SqliteLedger({ path: join(dataDir, "ledger.sqlite") });
    try {
      let remaining = 0;
      for (const [uidl, bytes] of served) {
        const entry = await ledger.get({ tenant: "acme", mailboxId: "kill@acme.example", uidl });
        // Never twice in Gmail; in Gmail once, or (without Message-ID, import outcome unknown)
        // quarantined for the operator and still on the server.
        expect(inGmail(bytes), uidl).toBeLessThanOrEqual(1);
        if (entry?.state === "quarantined") {
          expect(entry.quarantineCode).toBe("IMPORT_UNCERTAIN");
          remaining++;
        } else {
          expect(entry?.state, uidl).toBe("deleted");
          expect(inGmail(bytes), uidl).toBe(1);
        }
        const key = archiveKeyFor({ tenant: "acme", mailboxId: "kill@acme.example", uidl });
        expect(sha256(await readFile(join(dataDir, "archive", key))), uidl).toBe(sha256(bytes));
      }
      expect(await dovecot.storedMessageCount("kill")).toBe(remaining);
    } finally {
      ledger.close();
    }
  });

  it("init --mark-existing-delivered keeps the messages Gmail's fetcher already delivered out of Gmail and on the server", async () => {
    // Prepare
    const old = generateMailbox(3, 63);
    for (const message of old) await dovecot.deliver("moving", message.bytes);
    const caseDir = await mkdtemp(join(dir, "moving-"));
    const output = join(caseDir, "moving.local.json");
    const env = secretEnv(USERS.moving, oauth);
    const init = await runCli(
      [
        "init",
        "acme",
        "--no-input",
        "--output",
        output,
        "--mailbox-id",
        "moving@acme.example",
        "--pop3-host",
        dovecot.host,
        "--pop3-port",
        String(dovecot.tlsPort),
        "--pop3-user",
        "moving",
        "--pop3-password-secret",
        "acme/pop3",
        "--pop3-ca-file",
        caFile,
        "--gmail-user",
        GMAIL_USER,
        "--gmail-credentials-secret",
        "acme/google",
        "--mark-existing-delivered",
      ],
      env,
    );
    const config = JSON.parse(await readFile(output, "utf8"));
    config.google = { apiBaseUrl: google.baseUrl, tokenUrl: google.tokenUrl };
    await writeFile(output, JSON.stringify(config));
    const fresh = generateMailbox(2, 64);
    for (const message of fresh) await dovecot.deliver("moving", message.bytes);
    // Act
    const run = await runCli(["run", "--config", output, "--once", "--json"], env);
    const status = await runCli(["status", "--config", output, "--json"], env);
    // Assess
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain("marked 3 of the 3 messages");
    expect(run.code, run.stderr).toBe(0);
    for (const message of old) expect(inGmail(message.bytes)).toBe(0);
    for (const message of fresh) expect(inGmail(message.bytes)).toBe(1);
    expect(await dovecot.storedMessageCount("moving")).toBe(3);
    const box = JSON.parse(status.stdout).mailboxes[0];
    expect(box).toMatchObject({ preExisting: 3, quarantined: [], counts: { deleted: 2, quarantined: 3 } });
  });
});

/** Resolves once `condition` holds; fails if the process ends first (a condition, not a clock). */
async function until(condition: () => boolean, ended: Promise<unknown>): Promise<void> {
  let over = false;
  void ended.then(() => {
    over = true;
  });
  while (!condition()) {
    if (over) throw new Error("the process ended before the condition held");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
