import { parseArgs } from "node:util";
import { CloudFormationClient, DescribeStacksCommand, type Stack } from "@aws-sdk/client-cloudformation";
import {
  CloudWatchClient,
  DescribeAlarmsCommand,
  GetMetricDataCommand,
  type MetricDataQuery,
} from "@aws-sdk/client-cloudwatch";
import {
  FLEET_DASHBOARD_NAME,
  PROVIDER_STACK_ID,
  TENANT_ALARM_PREFIX,
  TENANT_TAG,
} from "../../infra/provider-names";
import { STACK_OUTPUT, tenantStackId } from "../../infra/stack-outputs";
import { METRIC, METRIC_DIMENSION, METRIC_NAMESPACE, METRIC_SERVICE_NAME } from "../../shared/config/metrics";
import { EXIT, table } from "../output";
import { AwsSetupError, explainAwsError } from "./aws-context";

/** The keeper sends TenantProblems every minute; this much silence means it is not running. */
export const TENANT_PROBLEMS_STALE_MINUTES = 10;

/**
 * The keeper checks each mailbox's mail at one tick in five (shared/core/tenant-problems.ts
 * `MAIL_CHECK_EVERY_TICKS`), so a stuck or quarantined mailbox is in one datapoint of five: the
 * status shows the most of the datapoints in the five minutes up to the newest.
 */
export const TENANT_PROBLEMS_WINDOW_MINUTES = 5;

/** GetMetricData takes at most 500 queries per call. */
const QUERIES_PER_CALL = 500;

/** Tenant names as tenant-config.ts allows them (a stack named otherwise is not a tenant's). */
const TENANT_NAME = /^[a-z0-9][a-z0-9-]{0,30}$/;

/** One alarm of a tenant that is in ALARM. */
export interface FleetAlarm {
  /** The name without `pop2gmail-<tenant>-`, e.g. `dead-letters`. */
  readonly name: string;
  readonly alarmName: string;
  readonly since: string | null;
  readonly reason: string | null;
}

/** One deployed tenant in `fleet status --json`. */
export interface TenantHealth {
  readonly tenant: string;
  readonly stack: string;
  readonly stackStatus: string;
  readonly healthy: boolean;
  /**
   * The most TenantProblems in the 5 minutes up to its newest datapoint (0 = healthy), null when
   * none in the last 10 minutes.
   */
  readonly tenantProblems: number | null;
  readonly tenantProblemsAt: string | null;
  /** Copy jobs waiting in the work queue (CloudWatch, AWS/SQS), null when no datapoint. */
  readonly backlog: number | null;
  readonly alarms: readonly FleetAlarm[];
  /** Why the tenant is not healthy, one line each; empty when healthy. */
  readonly reasons: readonly string[];
}

/** What `pop2gmail fleet status --json` prints (field order and names are stable). */
export interface FleetStatus {
  readonly region: string | null;
  readonly checkedAt: string;
  readonly tenants: readonly TenantHealth[];
  readonly unhealthy: number;
  /** `pop2gmail-*` alarms in ALARM whose tenant has no stack here (a stack being deleted?). */
  readonly otherAlarms: readonly string[];
  /** AWS requests made, by API: the cost of one `fleet status`. */
  readonly apiCalls: {
    readonly describeStacks: number;
    readonly describeAlarms: number;
    readonly getMetricData: number;
  };
}

/** The AWS clients `fleet status` needs (tests point them at a loopback stand-in). */
export interface FleetStatusClients {
  readonly cloudFormation: CloudFormationClient;
  readonly cloudWatch: CloudWatchClient;
}

interface TenantStack {
  readonly tenant: string;
  readonly stack: string;
  readonly status: string;
  readonly workQueueName: string | undefined;
}

/**
 * Every tenant stack of the account and region with its health, in few requests whatever the
 * fleet's size: DescribeStacks (all stacks, paged), DescribeAlarms (`pop2gmail-` alarms in
 * ALARM, 100 a page) and GetMetricData (two queries a tenant, 500 a call). At 500 tenants that is
 * the DescribeStacks pages (1 MB each) + 1 + 2 (docs/deploy.md section 10).
 */
export async function collectFleetStatus(
  clients: FleetStatusClients,
  now: Date,
  region: string | null,
): Promise<FleetStatus> {
  const apiCalls = { describeStacks: 0, describeAlarms: 0, getMetricData: 0 };
  const [stacks, alarms] = await Promise.all([
    tenantStacks(clients.cloudFormation, () => apiCalls.describeStacks++),
    alarmsInAlarm(clients.cloudWatch, () => apiCalls.describeAlarms++),
  ]);
  const latest = await latestValues(clients.cloudWatch, stacks, now, () => apiCalls.getMetricData++);

  // Longest tenant name first: `pop2gmail-acme-eu-…` belongs to acme-eu, not to acme.
  const byLength = [...stacks].sort((a, b) => b.tenant.length - a.tenant.length);
  const alarmsOf = new Map<string, FleetAlarm[]>();
  const otherAlarms: string[] = [];
  for (const alarm of alarms) {
    const name = alarm.AlarmName ?? "";
    const owner = byLength.find((s) => name.startsWith(`${TENANT_ALARM_PREFIX}${s.tenant}-`));
    if (owner === undefined) {
      otherAlarms.push(name);
      continue;
    }
    const list = alarmsOf.get(owner.tenant) ?? [];
    list.push({
      name: name.slice(`${TENANT_ALARM_PREFIX}${owner.tenant}-`.length),
      alarmName: name,
      since: alarm.StateUpdatedTimestamp?.toISOString() ?? null,
      reason: alarm.StateReason ?? null,
    });
    alarmsOf.set(owner.tenant, list);
  }

  const staleBefore = now.getTime() - TENANT_PROBLEMS_STALE_MINUTES * 60_000;
  const tenants = [...stacks]
    .sort((a, b) => a.tenant.localeCompare(b.tenant))
    .map((s): TenantHealth => {
      const problems = latest.get(`p:${s.tenant}`);
      const fresh = problems !== undefined && problems.at.getTime() >= staleBefore ? problems : undefined;
      const tenantAlarms = (alarmsOf.get(s.tenant) ?? []).sort((a, b) => a.name.localeCompare(b.name));
      const reasons = [
        ...stackProblem(s.status),
        ...tenantAlarms.map((a) => `alarm ${a.name}`),
        ...(fresh === undefined
          ? [
              `no TenantProblems datapoint in ${TENANT_PROBLEMS_STALE_MINUTES} minutes: the lister's keeper is not running`,
            ]
          : fresh.value > 0
            ? [
                `TenantProblems ${fresh.value} (the most in the last ${TENANT_PROBLEMS_WINDOW_MINUTES} minutes): the keeper's log names each mailbox and cause`,
              ]
            : []),
      ];
      return {
        tenant: s.tenant,
        stack: s.stack,
        stackStatus: s.status,
        healthy: reasons.length === 0,
        tenantProblems: fresh?.value ?? null,
        tenantProblemsAt: fresh?.at.toISOString() ?? null,
        backlog: latest.get(`b:${s.tenant}`)?.value ?? null,
        alarms: tenantAlarms,
        reasons,
      };
    });
  return {
    region,
    checkedAt: now.toISOString(),
    tenants,
    unhealthy: tenants.filter((t) => !t.healthy).length,
    otherAlarms: otherAlarms.sort(),
    apiCalls,
  };
}

/**
 * Runs one AWS request of the operator's; a failure says which call, and what to check, in the
 * operator's terms (the shared mapping speaks of a function's role).
 */
async function asOperator<T>(action: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const explained = explainAwsError(error, {
      action,
      resource: "the fleet",
      hint: `Check AWS credentials, region (--region or AWS_REGION) and network; fleet status needs ${FLEET_STATUS_ACTIONS}.`,
    });
    if (explained.code !== "ACCESS_DENIED") throw explained;
    throw new AwsSetupError(`${action} was denied to your AWS identity`, {
      cause: error,
      hint: `Allow ${FLEET_STATUS_ACTIONS} to the role or user you run pop2gmail as (aws sts get-caller-identity shows which).`,
    });
  }
}

/** Every IAM action `fleet status` uses. */
const FLEET_STATUS_ACTIONS =
  "cloudformation:DescribeStacks, cloudformation:ListStacks, cloudwatch:DescribeAlarms and cloudwatch:GetMetricData";

/** A stack that failed or rolled back is a problem; one being deployed is not. */
function stackProblem(status: string): string[] {
  if (status.endsWith("_FAILED") || status === "ROLLBACK_COMPLETE") return [`stack ${status}`];
  if (status === "UPDATE_ROLLBACK_COMPLETE")
    return ["stack UPDATE_ROLLBACK_COMPLETE: the last deploy failed"];
  return [];
}

/** The tenant stacks among all stacks of the region: the tenant tag, or the `Pop2Gmail-<tenant>` id. */
async function tenantStacks(client: CloudFormationClient, count: () => void): Promise<TenantStack[]> {
  const found: TenantStack[] = [];
  let nextToken: string | undefined;
  do {
    count();
    const page = await asOperator("cloudformation:DescribeStacks", () =>
      client.send(new DescribeStacksCommand(nextToken === undefined ? {} : { NextToken: nextToken })),
    );
    for (const stack of page.Stacks ?? []) {
      const tenant = tenantOf(stack);
      if (tenant === undefined) continue;
      const url = stack.Outputs?.find((o) => o.OutputKey === STACK_OUTPUT.workQueueUrl)?.OutputValue;
      found.push({
        tenant,
        stack: stack.StackName ?? tenantStackId(tenant),
        status: stack.StackStatus ?? "UNKNOWN",
        workQueueName: url?.split("/").pop(),
      });
    }
    nextToken = page.NextToken;
  } while (nextToken !== undefined);
  return found;
}

function tenantOf(stack: Stack): string | undefined {
  const tagged = stack.Tags?.find((t) => t.Key === TENANT_TAG)?.Value;
  if (tagged !== undefined && TENANT_NAME.test(tagged)) return tagged;
  const name = stack.StackName ?? "";
  const prefix = tenantStackId("");
  if (name === PROVIDER_STACK_ID || !name.startsWith(prefix)) return undefined;
  const tenant = name.slice(prefix.length);
  return TENANT_NAME.test(tenant) ? tenant : undefined;
}

/** Every `pop2gmail-*` metric and composite alarm in ALARM, all pages. */
async function alarmsInAlarm(client: CloudWatchClient, count: () => void) {
  const alarms: {
    AlarmName?: string | undefined;
    StateReason?: string | undefined;
    StateUpdatedTimestamp?: Date | undefined;
  }[] = [];
  let nextToken: string | undefined;
  do {
    count();
    const page = await asOperator("cloudwatch:DescribeAlarms", () =>
      client.send(
        new DescribeAlarmsCommand({
          AlarmNamePrefix: TENANT_ALARM_PREFIX,
          StateValue: "ALARM",
          AlarmTypes: ["MetricAlarm", "CompositeAlarm"],
          MaxRecords: 100,
          ...(nextToken === undefined ? {} : { NextToken: nextToken }),
        }),
      ),
    );
    alarms.push(...(page.MetricAlarms ?? []), ...(page.CompositeAlarms ?? []));
    nextToken = page.NextToken;
  } while (nextToken !== undefined);
  return alarms;
}

/**
 * The newest datapoint of each tenant's TenantProblems (`p:<tenant>`) and work-queue backlog
 * (`b:<tenant>`) in the last 15 minutes, keyed so; TenantProblems' value is the most of its
 * datapoints in the `TENANT_PROBLEMS_WINDOW_MINUTES` up to that newest one. Query ids are positional (`p0`, `b0`, …):
 * CloudWatch ids allow no hyphen.
 */
async function latestValues(
  client: CloudWatchClient,
  stacks: readonly TenantStack[],
  now: Date,
  count: () => void,
): Promise<Map<string, { value: number; at: Date }>> {
  const keyOf = new Map<string, string>();
  const queries: MetricDataQuery[] = [];
  stacks.forEach((s, i) => {
    keyOf.set(`p${i}`, `p:${s.tenant}`);
    queries.push({
      Id: `p${i}`,
      MetricStat: {
        Metric: {
          Namespace: METRIC_NAMESPACE,
          MetricName: METRIC.tenantProblems,
          Dimensions: [
            { Name: METRIC_DIMENSION.service, Value: METRIC_SERVICE_NAME },
            { Name: METRIC_DIMENSION.tenant, Value: s.tenant },
          ],
        },
        Period: 60,
        Stat: "Maximum",
      },
    });
    if (s.workQueueName === undefined) return;
    keyOf.set(`b${i}`, `b:${s.tenant}`);
    queries.push({
      Id: `b${i}`,
      MetricStat: {
        Metric: {
          Namespace: "AWS/SQS",
          MetricName: "ApproximateNumberOfMessagesVisible",
          Dimensions: [{ Name: "QueueName", Value: s.workQueueName }],
        },
        Period: 60,
        Stat: "Maximum",
      },
    });
  });
  const points = new Map<string, { value: number; at: Date }[]>();
  const chunks: MetricDataQuery[][] = [];
  for (let i = 0; i < queries.length; i += QUERIES_PER_CALL)
    chunks.push(queries.slice(i, i + QUERIES_PER_CALL));
  await Promise.all(
    chunks.map(async (chunk) => {
      let nextToken: string | undefined;
      do {
        count();
        const page = await asOperator("cloudwatch:GetMetricData", () =>
          client.send(
            new GetMetricDataCommand({
              MetricDataQueries: chunk,
              StartTime: new Date(now.getTime() - 15 * 60_000),
              EndTime: now,
              ScanBy: "TimestampDescending",
              ...(nextToken === undefined ? {} : { NextToken: nextToken }),
            }),
          ),
        );
        for (const result of page.MetricDataResults ?? []) {
          const key = keyOf.get(result.Id ?? "");
          if (key === undefined) continue;
          const list = points.get(key) ?? [];
          (result.Values ?? []).forEach((value, i) => {
            const at = result.Timestamps?.[i];
            if (at !== undefined) list.push({ value, at });
          });
          points.set(key, list);
        }
        nextToken = page.NextToken;
      } while (nextToken !== undefined);
    }),
  );
  const latest = new Map<string, { value: number; at: Date }>();
  for (const [key, list] of points) {
    const newest = list.reduce<{ value: number; at: Date } | undefined>(
      (a, p) => (a === undefined || p.at > a.at ? p : a),
      undefined,
    );
    if (newest === undefined) continue;
    const from = newest.at.getTime() - TENANT_PROBLEMS_WINDOW_MINUTES * 60_000;
    const value = key.startsWith("p:")
      ? Math.max(...list.filter((p) => p.at.getTime() > from).map((p) => p.value))
      : newest.value;
    latest.set(key, { value, at: newest.at });
  }
  return latest;
}

/** The text `fleet status` prints: one row a tenant, then why each unhealthy one is. */
export function renderFleetStatus(status: FleetStatus): string {
  const lines: string[] = [];
  if (status.tenants.length === 0) {
    lines.push(`no tenant stacks (${tenantStackId("<tenant>")}) in ${status.region ?? "the default region"}`);
  } else {
    lines.push(
      table(
        ["tenant", "health", "problems", "backlog", "stack", "alarms in ALARM"],
        status.tenants.map((t) => [
          t.tenant,
          t.healthy ? "ok" : "UNHEALTHY",
          t.tenantProblems === null ? "-" : String(t.tenantProblems),
          t.backlog === null ? "-" : String(t.backlog),
          t.stackStatus,
          t.alarms.map((a) => a.name).join(", ") || "-",
        ]),
      ),
    );
  }
  for (const t of status.tenants.filter((x) => !x.healthy)) {
    lines.push(`${t.tenant}:`);
    for (const reason of t.reasons) lines.push(`  ${reason}`);
    lines.push(
      `  what to do: pop2gmail status --aws --tenant ${t.tenant}; the alarm mails say what each one means`,
    );
  }
  if (status.otherAlarms.length > 0) {
    lines.push(`alarms in ALARM without a tenant stack here: ${status.otherAlarms.join(", ")}`);
  }
  const calls =
    status.apiCalls.describeStacks + status.apiCalls.describeAlarms + status.apiCalls.getMetricData;
  lines.push(
    `${status.tenants.length} tenant(s), ${status.unhealthy} unhealthy (${status.region ?? "default region"}, ${calls} AWS requests). Dashboard: ${FLEET_DASHBOARD_NAME}`,
  );
  return lines.join("\n");
}

/** Exit 0 when every tenant is healthy; 1 when one is not, an alarm has no tenant, or no tenant was found. */
export function fleetExitCode(status: FleetStatus): number {
  return status.unhealthy > 0 || status.otherAlarms.length > 0 || status.tenants.length === 0
    ? EXIT.failure
    : EXIT.ok;
}

/** What the command needs from outside: clients for a region, the clock, stdout. */
export interface FleetStatusDeps {
  clients(region: string | undefined): FleetStatusClients;
  now(): Date;
  write(text: string): void;
}

const DEFAULT_DEPS: FleetStatusDeps = {
  clients(region) {
    const config = region === undefined ? {} : { region };
    return { cloudFormation: new CloudFormationClient(config), cloudWatch: new CloudWatchClient(config) };
  },
  now: () => new Date(),
  write: (text) => process.stdout.write(text),
};

/** `pop2gmail fleet status [--region R] [--json]`. Read-only. */
export async function fleetStatusCommand(
  args: readonly string[],
  deps: FleetStatusDeps = DEFAULT_DEPS,
): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: { region: { type: "string" }, json: { type: "boolean" } },
    allowPositionals: false,
  });
  const clients = deps.clients(values.region);
  try {
    const region = values.region ?? (await clients.cloudWatch.config.region().catch(() => undefined)) ?? null;
    const status = await collectFleetStatus(clients, deps.now(), region);
    deps.write(values.json ? `${JSON.stringify(status, null, 2)}\n` : `${renderFleetStatus(status)}\n`);
    return fleetExitCode(status);
  } finally {
    clients.cloudFormation.destroy();
    clients.cloudWatch.destroy();
  }
}
