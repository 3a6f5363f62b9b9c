// `npx tsx scripts/count-stack-resources.ts [--secrets=mailbox] [mailboxes...]` (default 1 5 50
// 200): synthesizes the tenant stack offline for a generated tenant with N mailboxes and prints
// what it creates, by CloudFormation type, plus what the tenant needs outside the stack (secrets),
// the custom metrics its alarms read, the template's size and the largest role policy.
// docs/deploy.md sections 2 and 9 quote its output.
//
// Every mailbox has its own Google OAuth credentials (each owner connects their own Gmail), so
// the onboarding function exists. By default all credentials live in one tenant secret
// (`pop2gmail/<tenant>/credentials#<key>`); `--secrets=mailbox` gives each mailbox its own two
// secrets, as tenants did before. A tenant that the stack refuses is reported with the refusal;
// its counts are then projected from the measured per-mailbox increment.
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { addTenantStacks } from "../infra/tenant-app";
import { onboardingSecretOf } from "../shared/adapters/web/onboarding-app";
import { parseTenantConfig } from "../shared/config/parse-tenant-config";
import { secretNamesOf } from "../shared/config/secret-reference";
import type { TenantConfig } from "../shared/config/tenant-config";
import { Pop2GmailError } from "../shared/core/errors";
import { rolePolicyCharacters } from "../test/infra/generated-tenant";

const TENANT = "fleet-sample";

/** The CloudFormation types the limits table needs, in print order, with a short label. */
const TYPES: [string, string][] = [
  ["AWS::IAM::Role", "IAM roles"],
  ["AWS::IAM::Policy", "IAM policies (inline)"],
  ["AWS::Lambda::Function", "Lambda functions"],
  ["AWS::Lambda::EventSourceMapping", "event source mappings"],
  ["AWS::Lambda::Permission", "Lambda permissions"],
  ["AWS::Lambda::EventInvokeConfig", "async invoke configs"],
  ["AWS::Lambda::Url", "function URLs"],
  ["AWS::Events::Rule", "EventBridge rules"],
  ["AWS::Scheduler::Schedule", "Scheduler schedules"],
  ["AWS::SQS::Queue", "SQS queues"],
  ["AWS::SQS::QueuePolicy", "SQS queue policies"],
  ["AWS::KMS::Key", "KMS keys"],
  ["AWS::KMS::Alias", "KMS aliases"],
  ["AWS::SNS::Topic", "SNS topics"],
  ["AWS::SNS::Subscription", "SNS subscriptions"],
  ["AWS::CloudWatch::Alarm", "CloudWatch alarms"],
  ["AWS::CloudWatch::Dashboard", "CloudWatch dashboards"],
  ["AWS::Logs::LogGroup", "log groups"],
  ["AWS::DynamoDB::Table", "DynamoDB tables"],
  ["AWS::DynamoDB::GlobalTable", "DynamoDB global tables"],
  ["AWS::S3::Bucket", "S3 buckets"],
];

const perMailboxSecrets = process.argv.includes("--secrets=mailbox");
const SHARED_SECRET = `pop2gmail/${TENANT}/credentials`;

function mailbox(i: number) {
  const id = `box${i}@${TENANT}.example`;
  return {
    id,
    pop3: {
      host: "pop.mail-host.example",
      user: id,
      passwordSecret: perMailboxSecrets ? `pop2gmail/${TENANT}/box${i}-pop3` : `${SHARED_SECRET}#${id}`,
    },
    gmail: {
      user: `box${i}.${TENANT}@gmail.com`,
      auth: "oauth",
      credentialsSecret: perMailboxSecrets
        ? `pop2gmail/${TENANT}/box${i}-google`
        : `${SHARED_SECRET}#${id}/google`,
    },
  };
}

/** The onboarding pages' client and link key: a key of the tenant secret, or their own secret. */
const onboarding = perMailboxSecrets ? {} : { onboardingSecret: `${SHARED_SECRET}#onboarding` };

function tenantWith(mailboxes: number): TenantConfig {
  return parseTenantConfig(
    {
      tenant: TENANT,
      alarmEmail: `ops@${TENANT}.example`,
      ...onboarding,
      archive: { infrequentAccessAfterDays: 30 },
      mailboxes: Array.from({ length: mailboxes }, (_, i) => mailbox(i + 1)),
    },
    `generated ${TENANT} (${mailboxes} mailboxes)`,
  );
}

interface Count {
  readonly mailboxes: number;
  readonly byType: Map<string, number>;
  readonly total: number;
  readonly outputs: number;
  readonly secrets: number;
  readonly customMetrics: number;
  readonly templateBytes: number;
  readonly largestRolePolicy: number;
}

type Outcome = { count: Count } | { refused: string };

function count(mailboxes: number): Outcome {
  const config = tenantWith(mailboxes);
  const app = new App({ builtinCloudFormationValidation: false });
  let template: Template;
  try {
    const [stack] = addTenantStacks(app, [config]);
    if (stack === undefined) throw new Error("no stack synthesized");
    template = Template.fromStack(stack);
  } catch (error) {
    if (error instanceof Pop2GmailError) return { refused: error.message };
    throw error;
  }
  const json = template.toJSON() as {
    Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
    Outputs?: Record<string, unknown>;
  };
  const byType = new Map<string, number>();
  const metrics = new Set<string>();
  for (const resource of Object.values(json.Resources)) {
    byType.set(resource.Type, (byType.get(resource.Type) ?? 0) + 1);
    if (resource.Type === "AWS::CloudWatch::Alarm") {
      for (const metric of customMetricsOf(resource.Properties ?? {})) metrics.add(metric);
    }
  }
  // By secret name: the keys of the tenant secret are one secret.
  const oauth = config.mailboxes.some((m) => m.gmail.auth === "oauth");
  const secrets = new Set(
    secretNamesOf([
      ...config.mailboxes.flatMap((m) => [m.pop3.passwordSecret, m.gmail.credentialsSecret]),
      ...(oauth ? [onboardingSecretOf(config, "aws")] : []),
    ]),
  );
  return {
    count: {
      mailboxes,
      byType,
      total: Object.keys(json.Resources).length,
      outputs: Object.keys(json.Outputs ?? {}).length,
      secrets: secrets.size,
      customMetrics: metrics.size,
      templateBytes: Buffer.byteLength(JSON.stringify(json)),
      largestRolePolicy: Math.max(...Object.values(rolePolicyCharacters(template))),
    },
  };
}

/** Namespace/name/dimensions of each Pop2Gmail metric an alarm reads (plain or in metric math). */
function customMetricsOf(properties: Record<string, unknown>): string[] {
  const found: string[] = [];
  const visit = (metric: Record<string, unknown>) => {
    if (metric.Namespace !== "Pop2Gmail") return;
    found.push(JSON.stringify([metric.MetricName, metric.Dimensions]));
  };
  visit(properties);
  for (const query of (properties.Metrics ?? []) as { MetricStat?: { Metric?: Record<string, unknown> } }[]) {
    if (query.MetricStat?.Metric !== undefined) visit(query.MetricStat.Metric);
  }
  return found;
}

const sizes = process.argv
  .slice(2)
  .filter((arg) => !arg.startsWith("--"))
  .map(Number);
const requested = sizes.length > 0 ? sizes : [1, 5, 50, 200];
const outcomes = requested.map((n) => ({ n, outcome: count(n) }));
const measured = outcomes.flatMap(({ outcome }) => ("count" in outcome ? [outcome.count] : []));

const rows: [string, (c: Count) => number][] = [
  ...TYPES.map(([type, label]): [string, (c: Count) => number] => [
    `${label} (${type})`,
    (c) => c.byType.get(type) ?? 0,
  ]),
  ["CloudFormation resources in the stack (limit 500; 200 in the 2023 quota table)", (c) => c.total],
  ["stack outputs", (c) => c.outputs],
  ["secrets the tenant creates (outside the stack)", (c) => c.secrets],
  ["custom metrics the alarms read", (c) => c.customMetrics],
  ["largest role's inline policies, characters (limit 10,240)", (c) => c.largestRolePolicy],
  ["template size, bytes (minified JSON)", (c) => c.templateBytes],
];

// Per mailbox = the increment between the two smallest measured sizes; checked on every other one.
const [a, b] = measured;
const perMailbox = (f: (c: Count) => number) =>
  a !== undefined && b !== undefined ? (f(b) - f(a)) / (b.mailboxes - a.mailboxes) : Number.NaN;
const base = (f: (c: Count) => number) => (a === undefined ? Number.NaN : f(a) - perMailbox(f) * a.mailboxes);

const header = ["item", "fixed", "per mailbox", ...outcomes.map(({ n }) => `${n} mbx`)];
const table = rows.map(([label, f]) => [
  label,
  fmt(base(f)),
  fmt(perMailbox(f)),
  ...outcomes.map(({ n, outcome }) =>
    "count" in outcome ? fmt(f(outcome.count)) : `(${fmt(base(f) + perMailbox(f) * n)})`,
  ),
]);
console.log(`| ${header.join(" | ")} |`);
console.log(`| ${header.map(() => "---").join(" | ")} |`);
for (const row of table) console.log(`| ${row.join(" | ")} |`);

for (const c of measured.slice(2)) {
  for (const [label, f] of rows.slice(0, -2)) {
    const projected = base(f) + perMailbox(f) * c.mailboxes;
    if (projected !== f(c))
      console.log(`note: ${label} at ${c.mailboxes} is ${f(c)}, not linear (${projected})`);
  }
}
for (const { n, outcome } of outcomes) {
  if ("refused" in outcome) {
    console.log(`\n${n} mailboxes: the stack refuses to synthesize: ${outcome.refused}`);
    console.log("  (figures in parentheses are projected from the per-mailbox increment)");
  }
}

function fmt(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}
