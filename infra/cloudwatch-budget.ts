import {
  METRIC,
  METRIC_EMISSION,
  METRIC_NAMESPACE,
  METRIC_SERIES_PER_TENANT,
  type MetricName,
} from "../shared/config/metrics";
import { AWS_PRICE } from "./aws-prices";

/**
 * The fixed monthly CloudWatch cost of one tenant, counted from its synthesized template (alarms,
 * the metrics each reads, dashboards) and from the metric contract (the custom metrics emitted
 * whatever happens), so a new alarm or an always-on metric shows up as dollars in
 * `test/infra/cloudwatch-budget.test.ts` and in `bench/cost.ts`. docs/deploy.md section 7.
 */

/** Issue 14: fixed cost per tenant-month, without a dashboard. */
export const FIXED_TARGET_PER_TENANT_MONTH = 2.5;

/**
 * What the rest of the fixed cost is allowed, before CloudWatch: the tenant's KMS key, its one
 * Secrets Manager secret, and the idle work of a tenant as bench/cost.ts measured it
 * (`npx tsx bench/cost.ts 40 12 10 50`, 2026-12-01 18:23 and 18:24 UTC, bench/README.md "Cost
 * after the keeper-run polls"): $0.438 and $0.444 a month for a tenant whose mailboxes poll
 * every minute or slower — the copy queue's event source mapping's empty long polls $0.324, the
 * keeper's invocation a minute with its requests and logs $0.07, KMS requests $0.037 (the
 * lister's table key, the work queue's hourly data keys), cold starts $0.011. A tenant with a
 * mailbox below a minute adds its poll queue's mapping, $0.26 more: it fits because CloudWatch
 * costs $0.40 of its $0.65 (one alarm reading one metric, and TenantProblems sent every minute;
 * the `pipeline-delay` alarm was dropped for it, infra/constructs/tenant-alarms.ts), so $0.25
 * of the budget is left (docs/deploy.md section 7).
 */
export const OTHER_FIXED_PER_TENANT_MONTH = {
  kmsKey: AWS_PRICE.kms.keyMonth,
  oneSecret: AWS_PRICE.secretsManager.secretMonth,
  idleWorkAllowance: 0.45,
} as const;

/** What CloudWatch may cost a tenant per month, fixed, without a dashboard: $0.65. */
export const CLOUDWATCH_FIXED_BUDGET_PER_TENANT_MONTH = round(
  FIXED_TARGET_PER_TENANT_MONTH - Object.values(OTHER_FIXED_PER_TENANT_MONTH).reduce((a, b) => a + b, 0),
);

/** The part of a CloudFormation template this counts (`Template.toJSON()` or a cdk.out file). */
export interface TemplateJson {
  readonly Resources?: Readonly<Record<string, { readonly Type: string; readonly Properties?: unknown }>>;
}

/** One metric an alarm reads. */
export interface AlarmedMetric {
  readonly alarmName: string;
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: readonly { readonly Name: string; readonly Value: unknown }[];
}

export interface CloudWatchFixedCost {
  readonly alarms: number;
  /** Every metric every alarm reads (a metric-math alarm counts each metric in its expression). */
  readonly alarmMetrics: readonly AlarmedMetric[];
  readonly dashboards: number;
  /** Custom metrics that receive data every hour, healthy and idle included (the contract's `every-minute`). */
  readonly alwaysEmittedMetrics: readonly MetricName[];
  readonly dollars: {
    readonly alarms: number;
    readonly alwaysEmittedMetrics: number;
    readonly dashboards: number;
    readonly total: number;
  };
}

/** The custom metrics one tenant emits every hour, with the number of series each makes. */
export function alwaysEmittedMetrics(): MetricName[] {
  return Object.values(METRIC).filter((name) => METRIC_EMISSION[name] === "every-minute");
}

/** The metrics the template's alarms read, one entry per metric (math alarms: each `MetricStat`). */
export function alarmedMetrics(template: TemplateJson): AlarmedMetric[] {
  const metrics: AlarmedMetric[] = [];
  for (const resource of Object.values(template.Resources ?? {})) {
    if (resource.Type !== "AWS::CloudWatch::Alarm") continue;
    const p = (resource.Properties ?? {}) as Record<string, unknown>;
    const alarmName = String(p.AlarmName);
    if (typeof p.MetricName === "string") {
      metrics.push({
        alarmName,
        namespace: String(p.Namespace),
        metricName: p.MetricName,
        dimensions: (p.Dimensions as AlarmedMetric["dimensions"] | undefined) ?? [],
      });
    }
    for (const query of (p.Metrics as { MetricStat?: { Metric: Record<string, unknown> } }[] | undefined) ??
      []) {
      const metric = query.MetricStat?.Metric;
      if (metric === undefined) continue;
      metrics.push({
        alarmName,
        namespace: String(metric.Namespace),
        metricName: String(metric.MetricName),
        dimensions: (metric.Dimensions as AlarmedMetric["dimensions"] | undefined) ?? [],
      });
    }
  }
  return metrics;
}

/** The fixed monthly CloudWatch cost of the tenant this template deploys. */
export function cloudWatchFixedCost(template: TemplateJson): CloudWatchFixedCost {
  const resources = Object.values(template.Resources ?? {});
  const alarms = resources.filter((r) => r.Type === "AWS::CloudWatch::Alarm").length;
  const dashboards = resources.filter((r) => r.Type === "AWS::CloudWatch::Dashboard").length;
  const alarmMetrics = alarmedMetrics(template);
  const always = alwaysEmittedMetrics();
  const series = always.reduce((sum, name) => sum + METRIC_SERIES_PER_TENANT[name], 0);
  const dollars = {
    alarms: round(alarmMetrics.length * AWS_PRICE.cloudWatch.alarmMetricMonth),
    alwaysEmittedMetrics: round(series * AWS_PRICE.cloudWatch.customMetricMonth),
    dashboards: round(dashboards * AWS_PRICE.cloudWatch.dashboardMonth),
  };
  return {
    alarms,
    alarmMetrics,
    dashboards,
    alwaysEmittedMetrics: always,
    dollars: { ...dollars, total: round(dollars.alarms + dollars.alwaysEmittedMetrics + dollars.dashboards) },
  };
}

/** Whether an alarmed metric is one of ours (a custom metric) rather than a free AWS one. */
export function isCustomMetric(metric: AlarmedMetric): boolean {
  return metric.namespace === METRIC_NAMESPACE;
}

/** Cents are the precision of a bill; this keeps 0.1 + 0.2 from printing as 0.30000000000000004. */
function round(dollars: number): number {
  return Math.round(dollars * 10_000) / 10_000;
}
