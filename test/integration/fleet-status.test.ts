import { CloudFormationClient } from "@aws-sdk/client-cloudformation";
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type FleetStatus, fleetStatusCommand } from "../../cli/commands/fleet-status";
import { PROVIDER_STACK_ID } from "../../infra/provider-names";
import { FleetAwsStandIn } from "../fakes/fleet-aws-stand-in";
import { runCli } from "./support/cli-process";

const NOW = new Date("2026-12-01T12:00:00Z");
const minutesAgo = (m: number) => new Date(NOW.getTime() - m * 60_000);
const REGION = "eu-west-1";

/**
 * `pop2gmail fleet status` against a CloudFormation + CloudWatch stand-in on 127.0.0.1 that
 * speaks the clients' wire protocols (query/XML and JSON 1.0), with small page sizes so paging
 * is exercised. In-process with the clock injected; one run as a child process for the wiring.
 */
describe("pop2gmail fleet status", () => {
  let aws: FleetAwsStandIn;

  beforeAll(async () => {
    aws = await new FleetAwsStandIn().start();
  });

  afterAll(async () => {
    await aws?.stop();
  });

  beforeEach(() => {
    aws.reset();
  });

  /** A tenant stack as TenantStack deploys it: tag, id and the work-queue output. */
  function tenantStack(tenant: string, status = "UPDATE_COMPLETE") {
    return {
      name: `Pop2Gmail-${tenant}`,
      status,
      tags: { "pop2gmail:tenant": tenant },
      outputs: {
        WorkQueueUrl: `https://sqs.${REGION}.amazonaws.com/000000000000/Pop2Gmail-${tenant}-QueuesWork1A2B-xyz.fifo`,
      },
    };
  }

  function problems(tenant: string, value: number, at: Date) {
    aws.putMetric("Pop2Gmail", "TenantProblems", { service: "pop2gmail", Tenant: tenant }, [{ at, value }]);
  }

  function backlog(tenant: string, value: number) {
    aws.putMetric(
      "AWS/SQS",
      "ApproximateNumberOfMessagesVisible",
      { QueueName: `Pop2Gmail-${tenant}-QueuesWork1A2B-xyz.fifo` },
      [{ at: minutesAgo(2), value }],
    );
  }

  /** A clean environment for the child process: dummy credentials, the stand-in as both endpoints. */
  function cliEnv(): Record<string, string> {
    return {
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
      AWS_ENDPOINT_URL_CLOUDFORMATION: aws.endpoint,
      AWS_ENDPOINT_URL_CLOUDWATCH: aws.endpoint,
      AWS_CONFIG_FILE: "/nonexistent/aws-config",
      AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/aws-credentials",
      AWS_EC2_METADATA_DISABLED: "true",
    };
  }

  async function fleetStatus(args: readonly string[]) {
    let out = "";
    const code = await fleetStatusCommand(args, {
      clients: () => {
        const config = {
          region: REGION,
          endpoint: aws.endpoint,
          credentials: { accessKeyId: "test", secretAccessKey: "test" },
          maxAttempts: 1,
        };
        return { cloudFormation: new CloudFormationClient(config), cloudWatch: new CloudWatchClient(config) };
      },
      now: () => NOW,
      write: (text) => {
        out += text;
      },
    });
    return { code, out };
  }

  it("lists every tenant stack with its alarms in ALARM, last TenantProblems and backlog, and exits 1 when one is unhealthy", async () => {
    // Prepare: 5 tenants (one whose name extends another's), the provider stack, a stranger's
    // stack; 2 stacks a page, 1 alarm a page.
    aws.stacksPerPage = 2;
    aws.alarmsPerPage = 1;
    aws.stacks = [
      tenantStack("acme"),
      tenantStack("acme-eu"),
      tenantStack("beta"),
      tenantStack("quiet"),
      tenantStack("broken", "UPDATE_ROLLBACK_COMPLETE"),
      { name: PROVIDER_STACK_ID, status: "CREATE_COMPLETE", tags: { "pop2gmail:provider": "true" } },
      { name: "someone-elses-stack", status: "CREATE_COMPLETE" },
    ];
    for (const tenant of ["acme", "acme-eu", "broken"]) problems(tenant, 0, minutesAgo(1));
    problems("beta", 5, minutesAgo(30));
    problems("beta", 2, minutesAgo(1));
    problems("quiet", 0, minutesAgo(11));
    backlog("acme", 0);
    backlog("beta", 14);
    aws.alarms = [
      {
        name: "pop2gmail-acme-eu-dead-letters",
        state: "ALARM",
        reason: "Threshold Crossed: 1 datapoint",
        updatedAt: minutesAgo(5),
      },
      { name: "pop2gmail-acme-eu-queue-stuck", state: "ALARM" },
      { name: "pop2gmail-acme-pipeline-delay", state: "OK" },
      { name: "other-team-alarm", state: "ALARM" },
    ];

    // Act
    const { code, out } = await fleetStatus(["--json"]);
    const status = JSON.parse(out) as FleetStatus;

    // Assess
    expect(code).toBe(1);
    const byTenant = Object.fromEntries(status.tenants.map((t) => [t.tenant, t]));
    expect(Object.keys(byTenant)).toEqual(["acme", "acme-eu", "beta", "broken", "quiet"]);
    expect(byTenant.acme).toMatchObject({
      healthy: true,
      tenantProblems: 0,
      backlog: 0,
      alarms: [],
      reasons: [],
    });
    expect(byTenant["acme-eu"]?.healthy).toBe(false);
    expect(byTenant["acme-eu"]?.alarms.map((a) => a.name)).toEqual(["dead-letters", "queue-stuck"]);
    expect(byTenant["acme-eu"]?.alarms[0]).toMatchObject({
      alarmName: "pop2gmail-acme-eu-dead-letters",
      since: minutesAgo(5).toISOString(),
      reason: "Threshold Crossed: 1 datapoint",
    });
    expect(byTenant.beta).toMatchObject({ healthy: false, tenantProblems: 2, backlog: 14 });
    expect(byTenant.broken?.reasons).toEqual(["stack UPDATE_ROLLBACK_COMPLETE: the last deploy failed"]);
    expect(byTenant.quiet).toMatchObject({ healthy: false, tenantProblems: null });
    expect(byTenant.quiet?.reasons[0]).toMatch(/no TenantProblems datapoint in 10 minutes/);
    expect(status.unhealthy).toBe(4);
    expect(status.otherAlarms).toEqual([]);
    // Few requests: 4 pages of stacks, 2 of alarms, 1 GetMetricData for 10 queries.
    expect(status.apiCalls).toEqual({ describeStacks: 4, describeAlarms: 2, getMetricData: 1 });
    expect(aws.count("DescribeAlarms")).toBe(2);
    expect(aws.calls.find((c) => c.api === "DescribeAlarms")?.input).toMatchObject({
      AlarmNamePrefix: "pop2gmail-",
      StateValue: "ALARM",
    });
  });

  it("exits 0 and prints one row a tenant when every tenant is healthy", async () => {
    // Prepare
    aws.stacks = [tenantStack("acme"), tenantStack("beta")];
    aws.alarms = [{ name: "pop2gmail-acme-dead-letters", state: "OK" }];
    problems("acme", 0, minutesAgo(1));
    problems("beta", 2, minutesAgo(5.5));
    problems("beta", 0, minutesAgo(0.5));
    backlog("acme", 0);
    backlog("beta", 14);

    // Act
    const { code, out } = await fleetStatus([]);

    // Assess
    expect(code, out).toBe(0);
    expect(out).toMatch(/^acme\s+ok\s+0\s+0\s+UPDATE_COMPLETE\s+-$/m);
    expect(out).toMatch(/^beta\s+ok\s+0\s+14\s+UPDATE_COMPLETE\s+-$/m);
    expect(out).toMatch(/2 tenant\(s\), 0 unhealthy \(eu-west-1, 3 AWS requests\)/);
  });

  it("shows the highest TenantProblems of the last five datapoints: the keeper checks each mailbox's mail at one tick in five", async () => {
    // Prepare: gamma's stuck mailbox counted 4 minutes ago, at its check; 7 older than the window
    aws.stacks = [tenantStack("gamma")];
    problems("gamma", 7, minutesAgo(6));
    problems("gamma", 3, minutesAgo(4));
    for (const m of [3, 2, 1]) problems("gamma", 0, minutesAgo(m));

    // Act
    const { code, out } = await fleetStatus(["--json"]);
    const status = JSON.parse(out) as FleetStatus;

    // Assess
    expect(code).toBe(1);
    expect(status.tenants[0]).toMatchObject({
      healthy: false,
      tenantProblems: 3,
      tenantProblemsAt: minutesAgo(1).toISOString(),
    });
    expect(status.tenants[0]?.reasons).toEqual([
      "TenantProblems 3 (the most in the last 5 minutes): the keeper's log names each mailbox and cause",
    ]);
  });

  it("asks GetMetricData 500 queries at a time: 500 tenants cost 1 + 1 + 2 requests", async () => {
    // Prepare
    aws.stacksPerPage = 500;
    aws.stacks = Array.from({ length: 500 }, (_, i) => tenantStack(`t${i}`));

    // Act
    const { out } = await fleetStatus(["--json"]);
    const status = JSON.parse(out) as FleetStatus;

    // Assess
    expect(status.tenants).toHaveLength(500);
    expect(status.apiCalls).toEqual({ describeStacks: 1, describeAlarms: 1, getMetricData: 2 });
    const queries = aws.calls
      .filter((c) => c.api === "GetMetricData")
      .map((c) => (c.input.MetricDataQueries as unknown[]).length);
    expect(queries).toEqual([500, 500]);
  });

  it("says which permission is missing when CloudWatch refuses, and exits 1", async () => {
    // Prepare
    aws.stacks = [tenantStack("acme")];
    aws.cloudWatchError = {
      status: 400,
      type: "AccessDenied",
      message:
        "User: arn:aws:iam::000000000000:user/ops is not authorized to perform: cloudwatch:DescribeAlarms",
    };

    // Act
    const result = await runCli(["fleet", "status"], cliEnv());

    // Assess
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/cloudwatch:DescribeAlarms was denied to your AWS identity/);
    expect(result.stderr).toMatch(/what to do: Allow .*cloudwatch:GetMetricData to the role or user/);
  });

  it("runs as `pop2gmail fleet status --json` with the SDK's endpoint variables (child process)", async () => {
    // Prepare
    aws.stacks = [tenantStack("acme")];
    aws.alarms = [{ name: "pop2gmail-acme-credentials-pop3", state: "ALARM" }];

    // Act
    const result = await runCli(["fleet", "status", "--json"], cliEnv());

    // Assess
    expect(result.code, result.stderr).toBe(1);
    const status = JSON.parse(result.stdout) as FleetStatus;
    expect(status.region).toBe(REGION);
    expect(status.tenants.map((t) => [t.tenant, t.healthy, t.alarms.map((a) => a.name)])).toEqual([
      ["acme", false, ["credentials-pop3"]],
    ]);
  });
});
