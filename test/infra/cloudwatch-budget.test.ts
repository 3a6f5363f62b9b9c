import { beforeAll, describe, expect, it } from "vitest";
import { AWS_PRICE } from "../../infra/aws-prices";
import {
  alarmedMetrics,
  CLOUDWATCH_FIXED_BUDGET_PER_TENANT_MONTH,
  type CloudWatchFixedCost,
  cloudWatchFixedCost,
  FIXED_TARGET_PER_TENANT_MONTH,
  isCustomMetric,
  OTHER_FIXED_PER_TENANT_MONTH,
  type TemplateJson,
} from "../../infra/cloudwatch-budget";
import {
  METRIC,
  METRIC_DIMENSION,
  METRIC_DIMENSIONS,
  METRIC_EMISSION,
  METRIC_SERIES_PER_TENANT,
  METRIC_SERVICE_NAME,
  type MetricName,
} from "../../shared/config/metrics";
import type { TenantConfig } from "../../shared/config/tenant-config";
import { exampleConfig, synthTenants } from "./synth-tenants";

/** The example tenant under another name (its secrets renamed with it, as deploys require). */
function renamed(config: TenantConfig, tenant: string, changes: Partial<TenantConfig> = {}): TenantConfig {
  const json = JSON.stringify({ ...config, ...changes }).replaceAll(
    `"pop2gmail/${config.tenant}/`,
    `"pop2gmail/${tenant}/`,
  );
  return { ...(JSON.parse(json) as TenantConfig), tenant };
}

let example: TenantConfig;
let cost: CloudWatchFixedCost;
let oneMailbox: CloudWatchFixedCost;
let withDashboard: CloudWatchFixedCost;
let exampleTemplate: TemplateJson;

beforeAll(() => {
  example = exampleConfig("example");
  // One app, one synth: the example tenant, the same with one mailbox, the same with a dashboard.
  const [a, b, c] = synthTenants([
    example,
    renamed(example, "budget-one", { mailboxes: [example.mailboxes[0]!] }),
    renamed(example, "budget-dash", { dashboard: true }),
  ]);
  exampleTemplate = a!.template.toJSON() as TemplateJson;
  cost = cloudWatchFixedCost(exampleTemplate);
  oneMailbox = cloudWatchFixedCost(b!.template.toJSON() as TemplateJson);
  withDashboard = cloudWatchFixedCost(c!.template.toJSON() as TemplateJson);
});

describe("the fixed CloudWatch cost of a tenant (docs/deploy.md section 7)", () => {
  it("leaves $0.65 for CloudWatch of the $2.50 fixed target, after the key, one secret and the measured idle work", () => {
    // Act
    const others = Object.values(OTHER_FIXED_PER_TENANT_MONTH).reduce((a, b) => a + b, 0);

    // Assess
    expect(FIXED_TARGET_PER_TENANT_MONTH).toBe(2.5);
    expect(OTHER_FIXED_PER_TENANT_MONTH.kmsKey).toBe(1);
    expect(OTHER_FIXED_PER_TENANT_MONTH.oneSecret).toBe(0.4);
    expect(CLOUDWATCH_FIXED_BUDGET_PER_TENANT_MONTH).toBeCloseTo(FIXED_TARGET_PER_TENANT_MONTH - others, 6);
    // bench/cost.ts measured the idle work of a tenant without a sub-minute mailbox at $0.438 and
    // $0.444 (two runs, 18:23 and 18:24 UTC): allowed $0.45.
    expect(OTHER_FIXED_PER_TENANT_MONTH.idleWorkAllowance).toBe(0.45);
    expect(CLOUDWATCH_FIXED_BUDGET_PER_TENANT_MONTH).toBeCloseTo(0.65, 6);
  });

  it("stays within the budget without a dashboard: 1 alarm of one metric and one metric sent every minute", () => {
    // Assess: $0.25 of the $0.65 left, which a mailbox below 60 s (its poll queue's mapping, $0.26
    // idle) about takes up
    expect(cost.dashboards).toBe(0);
    expect(cost.alarms).toBe(1);
    expect(cost.alarmMetrics).toHaveLength(1);
    expect(cost.alwaysEmittedMetrics).toEqual([METRIC.tenantProblems]);
    expect(cost.dollars).toEqual({ alarms: 0.1, alwaysEmittedMetrics: 0.3, dashboards: 0, total: 0.4 });
    expect(cost.dollars.total).toBeLessThanOrEqual(CLOUDWATCH_FIXED_BUDGET_PER_TENANT_MONTH);
  });

  it("costs the same with one mailbox as with several: nothing CloudWatch bills is per mailbox", () => {
    // Assess
    expect(example.mailboxes.length).toBeGreaterThan(1);
    expect(oneMailbox.dollars).toEqual(cost.dollars);
  });

  it("adds the dashboard's $3 only when the tenant config asks for it", () => {
    // Assess
    expect(withDashboard.dashboards).toBe(1);
    expect(withDashboard.dollars.total).toBeCloseTo(
      cost.dollars.total + AWS_PRICE.cloudWatch.dashboardMonth,
      6,
    );
  });

  it("emits nothing every hour but TenantProblems: every other metric only when something happened", () => {
    // Act
    const everyMinute = Object.values(METRIC).filter((name) => METRIC_EMISSION[name] === "every-minute");

    // Assess
    expect(everyMinute).toEqual([METRIC.tenantProblems]);
  });

  it("creates at most 7 custom metrics per tenant at all, none per mailbox", () => {
    // Act
    const series = Object.values(METRIC).reduce((sum, name) => sum + METRIC_SERIES_PER_TENANT[name], 0);

    // Assess: 6 names, CredentialsBroken once per remote service; no dimension names a mailbox.
    expect(series).toBe(7);
    for (const name of Object.values(METRIC)) expect(METRIC_DIMENSIONS[name], name).not.toContain("Mailbox");
  });
});

describe("the alarms read what the handlers emit", () => {
  it("reads each custom metric with exactly the dimension set of shared/config/metrics.ts and the tenant's values", () => {
    // Act
    const custom = alarmedMetrics(exampleTemplate).filter(isCustomMetric);

    // Assess
    expect(custom.map((m) => m.metricName)).toEqual([METRIC.tenantProblems]);
    for (const metric of custom) {
      const name = metric.metricName as MetricName;
      expect(Object.values(METRIC), metric.metricName).toContain(name);
      expect(metric.dimensions.map((d) => d.Name).sort(), name).toEqual([...METRIC_DIMENSIONS[name]].sort());
      expect(metric.dimensions).toEqual(
        expect.arrayContaining([
          { Name: METRIC_DIMENSION.service, Value: METRIC_SERVICE_NAME },
          { Name: METRIC_DIMENSION.tenant, Value: example.tenant },
        ]),
      );
    }
  });

  it("reads no other metric: the keeper's TenantProblems counts what queue-stuck, quarantined and gmail-rate-limited watched", () => {
    // Act
    const free = alarmedMetrics(exampleTemplate).filter((m) => !isCustomMetric(m));

    // Assess
    expect(free).toEqual([]);
  });
});
