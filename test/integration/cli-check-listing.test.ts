import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GmailApiStandIn } from "../fakes/gmail-api-stand-in";
import { ScriptedPop3Server } from "../fakes/scripted-pop3-server";
import { runCli } from "./support/cli-process";
import { secretEnv, writeLocalConfig } from "./support/local-config-file";

/**
 * Issue 11 item 3: `pop2gmail check` runs UIDL and LIST, not only STAT, and says what it found:
 * a UIDL listed for two messages (popa3d) and an id that breaks RFC 1939 §7.
 */
const grant = { clientId: "chk", clientSecret: "chk-secret", refreshToken: "chk-listing" };

interface Step {
  readonly step: string;
  readonly ok: boolean;
  readonly detail?: string;
  readonly warning?: string;
}

function message(subject: string): Buffer {
  return Buffer.from(`From: a@sender.example\r\nSubject: ${subject}\r\n\r\nbody ${subject}\r\n`);
}

describe("pop2gmail check reads the server's listings", () => {
  let dir: string;
  let gmail: GmailApiStandIn;
  const servers: ScriptedPop3Server[] = [];
  const env = secretEnv("right-password", grant);

  async function configFor(uidls: readonly string[]): Promise<string> {
    const server = new ScriptedPop3Server({
      users: { box: "right-password" },
      messages: uidls.map((_, i) => message(`m${i}`)),
      uidls,
    });
    servers.push(server);
    const { port } = await server.start();
    return writeLocalConfig({
      dir: await mkdtemp(join(dir, "box-")),
      pop3: { host: "127.0.0.1", port, tls: "none", user: "box" },
      google: await googleUrl(),
      gmailUser: "owner@acme.example",
    });
  }

  let google: Awaited<ReturnType<GmailApiStandIn["start"]>> | undefined;
  async function googleUrl(): Promise<Awaited<ReturnType<GmailApiStandIn["start"]>>> {
    google ??= await gmail.start();
    return google;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pop2gmail-check-listing-"));
    gmail = new GmailApiStandIn();
    await googleUrl();
    gmail.registerOAuthUser({ user: "owner@acme.example", ...grant });
  });

  afterAll(async () => {
    for (const server of servers) await server.stop();
    await gmail?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function listingStep(
    uidls: readonly string[],
  ): Promise<{ exitCode: number; step: Step | undefined }> {
    const result = await runCli(["check", "--config", await configFor(uidls), "--json"], env);
    const steps = (JSON.parse(result.stdout) as { steps: Step[] }).steps;
    return { exitCode: result.code ?? -1, step: steps.find((s) => s.step === "pop3 listing") };
  }

  it("counts the UIDL and LIST entries of a well-behaved server and passes", async () => {
    // Act
    const { exitCode, step } = await listingStep(["a1", "a2", "a3"]);

    // Assess
    expect(exitCode).toBe(0);
    expect(step).toMatchObject({ ok: true });
    expect(step?.detail).toContain("3 messages in UIDL and LIST");
    expect(step?.warning).toBeUndefined();
  });

  it("warns about a UIDL listed for two messages and says both are still delivered", async () => {
    // Act
    const { exitCode, step } = await listingStep(["same", "same", "other"]);

    // Assess
    expect(exitCode).toBe(0);
    expect(step?.ok).toBe(true);
    expect(step?.warning).toContain("1 UIDL listed for 2 messages");
    expect(step?.warning).toContain("content");
  });

  it("warns about an id that breaks RFC 1939 and says what becomes of its message", async () => {
    // Act
    const { step } = await listingStep(["x".repeat(71), "fine"]);

    // Assess
    expect(step?.ok).toBe(true);
    expect(step?.warning).toContain("1 invalid UIDL");
    expect(step?.warning).toContain("quarantined");
  });
});
