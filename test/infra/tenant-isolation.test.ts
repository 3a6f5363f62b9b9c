import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TenantConfig } from "../../shared/config/tenant-config";
import { exampleConfig, resourcesOfType, synthTenants, TENANTS_DIR } from "./synth-tenants";

/**
 * Issue 12: one tenant can never be granted another's secrets, whichever way `cdk synth` runs,
 * and reordering a tenant's mailboxes renames nothing that is deployed.
 */

const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** A tenant file with one mailbox whose POP3 password secret is `passwordSecret`. */
function tenantFile(tenant: string, passwordSecret: string): Record<string, unknown> {
  return {
    tenant,
    alarmEmail: `ops@${tenant}.example`,
    mailboxes: [
      {
        id: `info@${tenant}.example`,
        pop3: { host: `pop.${tenant}.example`, user: `info@${tenant}.example`, passwordSecret },
        gmail: { user: `${tenant}@gmail.com`, credentialsSecret: `pop2gmail/${tenant}/google-oauth` },
      },
    ],
  };
}

/** Runs the CDK app entry point (what `npx cdk synth` runs) with the given context. */
function runApp(context: Record<string, string>): { status: number | null; output: string } {
  const outdir = mkdtempSync(join(tmpdir(), "pop2gmail-cdkout-"));
  try {
    const result = spawnSync(process.execPath, ["--import", "tsx", "infra/app.ts"], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify(context), CDK_OUTDIR: outdir },
      encoding: "utf8",
      timeout: 120_000,
    });
    return { status: result.status, output: `${result.stdout}\n${result.stderr}` };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

describe("cdk synth refuses a secret another tenant could be reached through", () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "pop2gmail-tenants-"));
    copyFileSync(join(TENANTS_DIR, "example.json"), join(dir, "example.json"));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const cases = [
    { tenant: "evil", secret: "pop2gmail/exampl?/info-pop3-password", message: /'\*' or '\?'/ },
    { tenant: "evil", secret: "pop2gmail/*/info-pop3-password", message: /'\*' or '\?'/ },
    {
      tenant: "intruder",
      secret: "pop2gmail/example/info-pop3-password",
      message: /must start with "pop2gmail\/intruder\/"/,
    },
  ];
  for (const { tenant, secret, message } of cases) {
    for (const selected of [true, false]) {
      it(`fails for ${tenant} naming ${secret} ${selected ? "with" : "without"} -c tenant=${tenant}`, () => {
        // Prepare
        writeFileSync(join(dir, `${tenant}.json`), JSON.stringify(tenantFile(tenant, secret)));

        // Act
        const result = runApp({ tenantsDir: dir, ...(selected ? { tenant } : {}) });
        rmSync(join(dir, `${tenant}.json`));

        // Assess
        expect(result.status).toBe(1);
        expect(result.output).toMatch(/^pop2gmail: /m);
        expect(result.output).toContain(tenant);
        expect(result.output).toMatch(message);
        expect(result.output).not.toMatch(/\n\s+at /);
      }, 120_000);
    }
  }

  it("fails when only another tenant's file is broken that way, even with -c tenant=example", () => {
    // Prepare: the check must see every tenant file, not only the one being deployed.
    writeFileSync(join(dir, "intruder.json"), JSON.stringify(tenantFile("intruder", "pop2gmail/example/x")));

    // Act
    const result = runApp({ tenantsDir: dir, tenant: "example" });
    rmSync(join(dir, "intruder.json"));

    // Assess
    expect(result.status).toBe(1);
    expect(result.output).toMatch(/intruder/);
  }, 120_000);
});

describe("per-mailbox resources", () => {
  /** Every resource that carries a deployed name or a mailbox, by logical id. */
  function namedResources(config: TenantConfig): Record<string, string> {
    const { template } = synthTenants([config])[0]!;
    const named: Record<string, string> = {};
    for (const type of [
      "AWS::CloudWatch::Alarm",
      "AWS::Events::Rule",
      "AWS::CloudWatch::Dashboard",
      "AWS::KMS::Alias",
    ]) {
      for (const [logicalId, resource] of Object.entries(resourcesOfType(template, type))) {
        const p = resource.Properties;
        named[logicalId] = JSON.stringify(
          p.AlarmName ??
            p.DashboardName ??
            p.AliasName ??
            (p.Targets as { Input?: string }[] | undefined)?.[0]?.Input,
        );
      }
    }
    return named;
  }

  it("keep their logical ids and names when the mailboxes are reordered", () => {
    // Prepare
    const config = exampleConfig("example");
    const reordered = { ...config, mailboxes: [...config.mailboxes].reverse() };

    // Act
    const before = namedResources(config);
    const after = namedResources(reordered);

    // Assess: alarms, the keeper rule and the key alias, none of them per mailbox any more.
    expect(Object.keys(before).length).toBeGreaterThanOrEqual(3);
    expect(after).toEqual(before);
  });

  it("are none: one mailbox more adds no resource to the stack", () => {
    // Prepare
    const config = exampleConfig("example");
    const [first] = config.mailboxes;
    const more = { ...config, mailboxes: [...config.mailboxes, { ...first!, id: "extra@example.com" }] };

    // Act
    const logicalIds = (c: TenantConfig) =>
      Object.keys(synthTenants([c])[0]!.template.toJSON().Resources as object).sort();

    // Assess
    expect(logicalIds(more)).toEqual(logicalIds(config));
  });
});
