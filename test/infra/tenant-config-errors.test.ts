import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { archiveLifecycle } from "../../infra/constructs/archive-bucket";
import { assertEnvironmentFits } from "../../infra/function-environment";
import { loadAllTenantConfigs, loadTenantConfig } from "../../infra/load-tenant-configs";
import { addTenantStacks, assertNoSharedSecrets } from "../../infra/tenant-app";
import { tenantMetric } from "../../infra/tenant-metric";
import { ENV_NAMES } from "../../shared/config/env";
import { METRIC, METRIC_DIMENSION } from "../../shared/config/metrics";
import { ConfigError } from "../../shared/core/errors";
import { exampleConfig, TENANTS_DIR } from "./synth-tenants";

/** A folder with one tenant file holding `content`. */
function tenantsFolder(files: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), "pop2gmail-tenants-"));
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(dir, name), typeof content === "string" ? content : JSON.stringify(content));
  }
  return dir;
}

/** Runs `act` and returns the ConfigError it throws. */
function configErrorOf(act: () => unknown): ConfigError {
  try {
    act();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("tenant config errors name the field", () => {
  it("names a missing POP3 host by its path", () => {
    // Prepare
    const raw = structuredClone(exampleConfig("example")) as unknown as {
      mailboxes: { pop3: { host?: string } }[];
    };
    delete raw.mailboxes[1]!.pop3.host;
    const dir = tenantsFolder({ "example.json": raw });

    // Act
    const error = configErrorOf(() => loadTenantConfig(dir, "example"));

    // Assess
    expect(error.field).toBe("mailboxes[1].pop3.host");
    expect(error.message).toContain("example.json");
  });

  it("refuses a file whose tenant differs from its name", () => {
    // Prepare
    const dir = tenantsFolder({ "acme.json": exampleConfig("example") });

    // Act
    const error = configErrorOf(() => loadTenantConfig(dir, "acme"));

    // Assess
    expect(error.field).toBe("tenant");
    expect(error.message).toMatch(/tenant is "example" but the file is named acme\.json/);
  });

  it("lists the available tenants when -c tenant names a missing one", () => {
    // Act
    const error = configErrorOf(() => loadTenantConfig(TENANTS_DIR, "nobody"));

    // Assess
    expect(error.field).toBe("tenant");
    expect(error.message).toContain("example, example-b");
  });

  it("reports invalid JSON with the file name", () => {
    // Prepare
    const dir = tenantsFolder({ "broken.json": "{ not json" });

    // Act
    const error = configErrorOf(() => loadAllTenantConfigs(dir));

    // Assess
    expect(error.message).toContain("broken.json is not valid JSON");
  });

  it("refuses an expiry that is not after the infrequent-access transition", () => {
    // Act
    const error = configErrorOf(() =>
      archiveLifecycle({ infrequentAccessAfterDays: 90, expireAfterDays: 60 }),
    );

    // Assess
    expect(error.field).toBe("archive.expireAfterDays");
  });

  it("refuses two tenants that share a secret", () => {
    // Prepare
    const a = exampleConfig("example");
    const b = { ...exampleConfig("example-b"), mailboxes: a.mailboxes };

    // Act
    const error = configErrorOf(() => assertNoSharedSecrets([a, b]));

    // Assess
    expect(error.message).toMatch(/tenants example and example-b both use the secret/);
  });

  it("refuses a tenant whose alarms would reach nobody, unless an operations topic is given", () => {
    // Prepare
    const { alarmEmail: _ignored, ...silent } = exampleConfig("example");
    const opsTopicArn = "arn:aws:sns:eu-west-1:111122223333:provider-ops";

    // Act
    const error = configErrorOf(() => addTenantStacks(new App(), [silent]));
    const stacks = addTenantStacks(new App(), [silent], { opsTopicArn });
    const alarms = Object.values(Template.fromStack(stacks[0]!).findResources("AWS::CloudWatch::Alarm"));

    // Assess
    expect(error.field).toBe("alarmEmail");
    expect(error.message).toMatch(/tenant example: its alarms would reach nobody/);
    expect(error.hint).toMatch(/-c opsTopicArn=/);
    expect(alarms.length).toBeGreaterThan(0);
    for (const alarm of alarms) {
      expect((alarm as { Properties: { AlarmActions: unknown[] } }).Properties.AlarmActions).toContain(
        opsTopicArn,
      );
    }
  });

  it("fails synth when an environment would not fit Lambda's 4 KB (the config is bundled, not there)", () => {
    // Prepare: 12 mailboxes no longer reach it (test/infra/tenant-limits.test.ts synthesizes 200).
    const environment = { [ENV_NAMES.tenantConfigFile]: "x".repeat(4096) };

    // Act
    const error = configErrorOf(() => assertEnvironmentFits("example", environment));

    // Assess
    expect(error.field).toBe("environment");
    expect(error.message).toMatch(/over Lambda's 4096-byte limit/);
  });

  it("accepts an environment just under the limit", () => {
    // Prepare
    const environment = { [ENV_NAMES.tenantConfig]: "x".repeat(4096 - ENV_NAMES.tenantConfig.length) };

    // Act
    const act = () => assertEnvironmentFits("example", environment);

    // Assess
    expect(act).not.toThrow();
  });
});

describe("metric dimensions follow shared/config/metrics.ts", () => {
  it("refuses a metric with a dimension set the handlers do not emit", () => {
    // Act
    const act = () =>
      tenantMetric("example", METRIC.pipelineDelay, {
        extra: { [METRIC_DIMENSION.remoteService]: "pop3" },
      });

    // Assess
    expect(act).toThrow(/PipelineDelay is emitted with dimensions \[Tenant, service\]/);
  });
});
