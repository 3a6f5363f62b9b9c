import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyInvite } from "../../shared/core/invite-link";
import { STAND_IN_REGION } from "../fakes/aws-stand-ins";
import { startSecretsManagerStandIn } from "../fakes/secrets-manager-stand-in";
import { runCli } from "./support/cli-process";

/**
 * `pop2gmail invite --aws` for a deployed tenant (docs/onboarding.md): the link key is made in the
 * tenant's onboarding secret in Secrets Manager on first use and signs the link; the link points
 * at the Function URL given.
 */
describe("pop2gmail invite --aws", () => {
  let secretsManager: Awaited<ReturnType<typeof startSecretsManagerStandIn>>;
  let tenantsDir: string;
  const env = () => ({
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsManager.endpoint,
    AWS_REGION: STAND_IN_REGION,
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
  });
  const url = "https://abcdefghij.lambda-url.eu-west-1.on.aws";

  beforeAll(async () => {
    secretsManager = await startSecretsManagerStandIn();
    tenantsDir = await mkdtemp(join(tmpdir(), "pop2gmail-tenants-"));
    const mailbox = (id: string, gmail: Record<string, string>) => ({
      id,
      pop3: { host: "pop.acme.example", user: id, passwordSecret: `pop2gmail/acme/${id}/pop3` },
      gmail,
    });
    await writeFile(
      join(tenantsDir, "acme.json"),
      JSON.stringify({
        tenant: "acme",
        alarmEmail: "ops@acme.example",
        mailboxes: [
          mailbox("info@acme.example", {
            user: "info.acme@gmail.com",
            credentialsSecret: "pop2gmail/acme/info/google",
          }),
          mailbox("office@acme.example", {
            user: "office@acme.example",
            auth: "service-account",
            credentialsSecret: "pop2gmail/acme/workspace",
          }),
        ],
      }),
    );
  });

  afterAll(async () => {
    await secretsManager?.stop();
    await rm(tenantsDir, { recursive: true, force: true });
  });

  it("makes the link key in the onboarding secret on first use and signs the link with it", async () => {
    // Prepare: the operator created the onboarding secret with the OAuth web client.
    secretsManager.secrets.set(
      "pop2gmail/acme/onboarding",
      JSON.stringify({ clientId: "web-client", clientSecret: "web-secret" }),
    );
    const args = [
      ...["invite", "--aws", "--tenant", "acme", "--tenants-dir", tenantsDir],
      ...["--mailbox", "info@acme.example", "--url", url, "--json"],
    ];
    // Act
    const first = await runCli(args, env());
    const second = await runCli(args, env());
    // Assess
    expect(first.code, first.stderr).toBe(0);
    expect(second.code, second.stderr).toBe(0);
    const stored = JSON.parse(secretsManager.secrets.get("pop2gmail/acme/onboarding") ?? "{}");
    expect(stored).toMatchObject({ clientId: "web-client", clientSecret: "web-secret" });
    const key = Buffer.from(String(stored.linkKey), "base64");
    expect(key.length).toBe(32);
    for (const result of [first, second]) {
      const link = new URL(JSON.parse(result.stdout).link);
      expect(link.origin).toBe(url);
      const verified = verifyInvite(key, "acme", link.pathname.slice("/o/".length), Date.now());
      expect(verified).toMatchObject({ ok: true, claims: { mailboxId: "info@acme.example" } });
    }
    expect(first.stdout + first.stderr).not.toContain(String(stored.linkKey));
  });

  it("refuses a Workspace mailbox: it needs no link", async () => {
    // Act
    const result = await runCli(
      [
        ...["invite", "--aws", "--tenant", "acme", "--tenants-dir", tenantsDir],
        ...["--mailbox", "office@acme.example", "--url", url],
      ],
      env(),
    );
    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("service account");
  });
});
