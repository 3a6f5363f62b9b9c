import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { type AlarmedMetric, alarmedMetrics, type TemplateJson } from "../../infra/cloudwatch-budget";
import { TENANT_ALARM_NAMES } from "../../infra/constructs/tenant-alarms";
import { createLambdaDeps } from "../../shared/adapters/lambda/lambda-deps";
import { ENV_NAMES } from "../../shared/config/env";
import { METRIC_NAMESPACE, METRIC_SERVICE_NAME } from "../../shared/config/metrics";
import type { TenantConfig } from "../../shared/config/tenant-config";
import { type Emf, MAILBOX_A, mailboxJson, tenantEnv } from "../integration/handler-harness";
import { exampleConfig, synthTenants } from "./synth-tenants";

/*
 * Both sides of the metric contract at once: every metric a tenant's alarms read (the synthesized
 * template) must be a datapoint the handlers' production telemetry prints (Powertools EMF), with
 * the same namespace, name and dimension names and values. CloudWatch matches a metric on all of
 * them, so an alarm reading anything else would wait for data that never comes (docs/deploy.md
 * section 6).
 */

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

let example: TenantConfig;
let alarmed: AlarmedMetric[];

beforeAll(() => {
  example = exampleConfig("example");
  const [synthesized] = synthTenants([example]);
  alarmed = alarmedMetrics(synthesized!.template.toJSON() as TemplateJson);
});

/** A metric as CloudWatch identifies it: namespace, name and each dimension's name and value. */
function identity(namespace: string, name: string, dimensions: Record<string, unknown>): string {
  const sorted = Object.entries(dimensions).sort(([a], [b]) => a.localeCompare(b));
  return JSON.stringify([namespace, name, sorted]);
}

/** The metrics the production telemetry of `tenant` prints for a keeper tick and one import. */
function emittedByHandlers(tenant: string): Set<string> {
  vi.stubEnv("POWERTOOLS_DEV", "true");
  vi.stubEnv("POWERTOOLS_METRICS_DISABLED", "false");
  vi.stubEnv("POWERTOOLS_SERVICE_NAME", METRIC_SERVICE_NAME);
  vi.stubEnv("POWERTOOLS_METRICS_NAMESPACE", METRIC_NAMESPACE);
  const lines: string[] = [];
  for (const method of ["log", "info", "warn", "error", "debug"] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      lines.push(args.map(String).join(" "));
    });
  }
  const env = {
    ...tenantEnv(),
    [ENV_NAMES.tenantConfig]: JSON.stringify({ tenant, mailboxes: [mailboxJson(MAILBOX_A)] }),
    POWERTOOLS_SERVICE_NAME: METRIC_SERVICE_NAME,
  };
  const { telemetry } = createLambdaDeps(env);
  const key = { tenant, mailboxId: MAILBOX_A, uidl: "u1" };
  // What the keeper's tick emits, then what an import emits (PipelineDelay: no alarm reads it
  // since the `pipeline-delay` alarm was dropped; kept so a new alarm on it is checked too).
  telemetry.tenantProblems(1);
  telemetry.record({
    type: "imported",
    ...key,
    archiveKey: "a.eml",
    gmailId: "g1",
    bytes: 10,
    pipelineDelayMs: 1_000,
    reusedEarlierImport: false,
  });
  telemetry.flush();
  const seen = new Set<string>();
  for (const doc of lines.map((l) => JSON.parse(l) as Emf).filter((d) => d._aws !== undefined)) {
    for (const block of doc._aws.CloudWatchMetrics) {
      for (const metric of block.Metrics) {
        for (const names of block.Dimensions) {
          seen.add(identity(block.Namespace, metric.Name, Object.fromEntries(names.map((n) => [n, doc[n]]))));
        }
      }
    }
  }
  return seen;
}

describe("the tenant's alarms read only what the handlers emit", () => {
  it("reads, in each of its alarms, a metric the keeper tick or an import prints with exactly that identity", () => {
    // Act
    const emitted = emittedByHandlers(example.tenant);

    // Assess
    expect(new Set(alarmed.map((m) => m.alarmName))).toEqual(
      new Set(TENANT_ALARM_NAMES.map((name) => `pop2gmail-${example.tenant}-${name}`)),
    );
    for (const metric of alarmed) {
      const dimensions = Object.fromEntries(metric.dimensions.map((d) => [d.Name, d.Value]));
      expect(emitted, metric.alarmName).toContain(identity(metric.namespace, metric.metricName, dimensions));
    }
  });
});
